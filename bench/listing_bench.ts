/**
 * Listing benchmark: a builds bucket of 1,000 / 10,000 / 100,000 objects (100 files per
 * `<build>/x86_64/` folder, as cosa lays builds out) listed page by page (ListObjectsV2,
 * 1,000 keys a page, npm:minio signing each request) through the relay started as the `relay`
 * task starts it, against the ceiling of walking the same tree and `lstat`-ing every file in
 * the same process as the benchmark (with node:fs and with Deno's calls; the ceiling is the
 * faster). Also the relay's peak RSS once it has listed 100,000
 * objects. About 100 pages are timed at each size (a small bucket is listed again and again),
 * after a warm-up on another bucket. Prints ratios measured in this run; never fails on speed.
 * Target: a page costs at most 3× the walk+stat of its 1,000 keys at 100,000 objects.
 *
 * @module
 */

import * as fs from "node:fs";
import type * as Minio from "minio";
import { minioFor } from "../tests/_helpers/minio.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

function hwmKiB(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1]);
  } catch {
    return NaN;
  }
}

/** Creates `n` small files, 100 per `b<i>/x86_64/` folder. */
function makeTree(dir: string, n: number): void {
  const body = new Uint8Array(16);
  for (let i = 0; i < n; i++) {
    const d = `${dir}/b${String(Math.floor(i / 100)).padStart(5, "0")}/x86_64`;
    if (i % 100 === 0) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(`${d}/f${String(i % 100).padStart(3, "0")}.qcow2`, body);
  }
}

/**
 * Walks the tree and lstat's every file: what a listing cannot avoid doing. Returns ms. Two
 * ways: node:fs (what the relay's walk uses for its stats) and Deno's own calls, about 2.5x
 * faster here; the ceiling is the faster one.
 */
function walkStat(dir: string, api: "node" | "deno"): { ms: number; files: number } {
  const t = performance.now();
  let files = 0;
  const visit = (d: string) => {
    if (api === "node") {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = `${d}/${e.name}`;
        if (e.isDirectory()) visit(p);
        else {
          fs.lstatSync(p);
          files++;
        }
      }
    } else {
      for (const e of Deno.readDirSync(d)) {
        const p = `${d}/${e.name}`;
        if (e.isDirectory) visit(p);
        else {
          Deno.lstatSync(p);
          files++;
        }
      }
    }
  };
  visit(dir);
  return { ms: performance.now() - t, files };
}

/** The arguments after `deno` of the `relay` task (its V8 flags matter for RSS). */
async function relayTaskArgs(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const words = String(cfg.tasks?.relay ?? "deno run -A scripts/relay.ts").split(/\s+/);
  return words.slice(1).map((w) => (w.endsWith(".ts") ? `${ROOT}/${w}` : w));
}

/**
 * Lists every page of the bucket through URLs npm:minio presigns, reading each page's XML only
 * for its continuation token (the client's own XML parsing is not the relay's cost). Returns
 * the time per page (ms) and the keys seen.
 */
async function listPages(mc: Minio.Client, bucket: string) {
  const pageMs: number[] = [];
  let token = "";
  let keys = 0;
  for (let i = 0; i < 10_000; i++) {
    const q: Record<string, string> = { "list-type": "2", "max-keys": "1000" };
    if (token) q["continuation-token"] = token;
    const url = await mc.presignedUrl("GET", bucket, "", 600, q);
    const t = performance.now();
    const res = await fetch(url);
    const xml = await res.text();
    pageMs.push(performance.now() - t);
    if (!res.ok) throw new Error(`listing ${bucket}: HTTP ${res.status}: ${xml.slice(0, 300)}`);
    keys += xml.split("<Key>").length - 1;
    const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
    if (!next) break;
    token = next;
  }
  return { pageMs, keys };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Runs the listing benchmark and prints its table. */
export async function listingBench(print: (line: string) => void = console.log): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "gp-listing-bench-" });
  let relay: Deno.ChildProcess | undefined;
  try {
    const sizes = [1_000, 10_000, 100_000];
    for (const n of sizes) makeTree(`${tmp}/root/k${n}`, n);
    makeTree(`${tmp}/root/warmup`, 1_000);
    const cfgPath = `${tmp}/minio.json`;
    relay = new Deno.Command(Deno.execPath(), {
      args: [...await relayTaskArgs(), "-d", `${tmp}/root`, "-m", cfgPath],
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(cfgPath) || fs.statSync(cfgPath).size === 0) {
      if (Date.now() > deadline) throw new Error("relay did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
    const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
    const mc = minioFor(cfg);
    const rssBefore = hwmKiB(relay.pid);
    // Warm-up, not measured: a relay that has answered listings before (its code compiled), as
    // a long-running one has. Each size's first page (its directories read for the first time)
    // is still in the measured run, shown as "first".
    for (let r = 0; r < 20; r++) await listPages(mc, "warmup");
    print(
      `listing (ListObjectsV2, 1,000 keys a page, presigned GETs) vs walk + lstat of the same tree; ` +
        `load average ${Deno.loadavg()[0].toFixed(1)} on ${navigator.hardwareConcurrency} CPUs`,
    );
    print(
      "objects  | pages | ms/page (median, first→last) | walk+stat ms/1000 keys (Deno; node) " +
        "| ratio to the faster walk (to node's)",
    );
    for (const n of sizes) {
      // Best of three walks each way (the page cache warm, as it is for the relay).
      const best = (api: "node" | "deno") => {
        const w = [0, 1, 2].map(() => walkStat(`${tmp}/root/k${n}`, api))
          .reduce((a, b) => (b.ms < a.ms ? b : a));
        return w.ms / (w.files / 1000);
      };
      const ceilNode = best("node");
      const ceilDeno = best("deno");
      const ceilPerPage = Math.min(ceilNode, ceilDeno);
      // About 100 pages at every size (the bucket listed again as often as that takes), so the
      // small sizes are not measured on a handful of requests.
      const pageMs: number[] = [];
      for (let r = 0; r < Math.max(1, Math.round(100_000 / n)); r++) {
        const run = await listPages(mc, `k${n}`);
        if (run.keys !== n) throw new Error(`listed ${run.keys} of ${n} keys`);
        pageMs.push(...run.pageMs);
      }
      const med = median(pageMs);
      const ratio = med / ceilPerPage;
      print(
        `${String(n).padStart(8)} | ${String(pageMs.length).padStart(5)} | ` +
          `${med.toFixed(1).padStart(6)} (${pageMs[0].toFixed(1)}→${
            pageMs[pageMs.length - 1].toFixed(1)
          })`.padEnd(29) +
          ` | ${`${ceilDeno.toFixed(1)}; ${ceilNode.toFixed(1)}`.padStart(36)} | ` +
          `${ratio.toFixed(2)}× (${(med / ceilNode).toFixed(2)}×)` +
          (n === 100_000 ? ` (target ≤ 3: ${ratio <= 3 ? "met" : "NOT met"})` : ""),
      );
    }
    print(
      `relay peak RSS: ${(rssBefore / 1024).toFixed(0)} MiB at start, ` +
        `${(hwmKiB(relay.pid) / 1024).toFixed(0)} MiB after listing 112,000 objects`,
    );
  } finally {
    if (relay) {
      try {
        relay.kill("SIGTERM");
      } catch { /* gone */ }
      await relay.status;
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await listingBench();
