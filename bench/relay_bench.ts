/**
 * Relay benchmark: a 1 GiB file PUT and GET through the relay (run as a subprocess, as
 * `deno task relay` runs it) with curl `--aws-sigv4` and with npm:minio, against the same
 * transfers through a bare `node:http` sink/source (the ceiling), measured in the same run.
 * Reports throughput, ratios to the ceiling and peak RSS (VmHWM) of relay and clients.
 * Targets: relay+curl PUT ≥ 0.6, relay+minio PUT ≥ 0.4, GETs ≥ 0.8 of the ceiling, peak RSS
 * ≤ 200 MiB on each side; the rows each target is judged on are marked and explained in the
 * output. Prints; never fails on speed.
 *
 * Every timed PUT writes a destination that does not exist yet (the previous one is removed,
 * untimed): overwriting a 1 GiB file first frees its page cache, which costs the writer as
 * much as half its throughput, and must not favour one row over another.
 *
 * The file also serves as the npm:minio client subprocess (`--client put|get ...`), so the
 * client's RSS is measured on its own.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const SELF = new URL(import.meta.url).pathname;
const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;

/** The ceiling: a bare node:http server (no auth, no hashing). */
const CEILING_SRC = `
import * as http from "node:http";
import * as fs from "node:fs";
import { createHash } from "node:crypto";
const file = Deno.env.get("CEIL_FILE");
const srv = http.createServer((req, res) => {
  if (req.method === "PUT") {
    const fd = req.url === "/file" ? fs.openSync(file, "w") : -1;
    const md5 = req.url === "/md5" ? createHash("md5") : undefined;
    let n = 0;
    req.on("data", (c) => {
      n += c.length;
      if (fd >= 0) fs.writeSync(fd, c);
      md5?.update(c);
    });
    req.on("end", () => {
      if (fd >= 0) fs.closeSync(fd);
      res.end(String(n));
    });
  } else {
    const st = fs.statSync(file);
    res.writeHead(200, { "content-length": st.size });
    fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
  }
});
srv.listen(0, "127.0.0.1", () => console.log("PORT " + srv.address().port));
`;

interface Measure {
  ms: number;
  hwmKiB: number;
}

function hwmOf(pid: number): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** Repetitions of each curl transfer; the best (fastest) counts: the machine is shared. */
const REPEAT = 3;

/**
 * Runs `timedOnce` {@link REPEAT} times, `before` (untimed) ahead of each: fastest time,
 * highest peak RSS.
 */
async function timed(
  cmd: string,
  args: string[],
  stdin?: string,
  before: () => Promise<void> = () => Promise.resolve(),
): Promise<Measure> {
  const runs: Measure[] = [];
  for (let i = 0; i < REPEAT; i++) {
    await before();
    runs.push(await timedOnce(cmd, args, stdin));
  }
  return {
    ms: Math.min(...runs.map((r) => r.ms)),
    hwmKiB: Math.max(...runs.map((r) => r.hwmKiB)),
  };
}

/** Runs a command, polling its VmHWM while it runs; returns wall time and peak RSS. */
async function timedOnce(cmd: string, args: string[], stdin?: string): Promise<Measure> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  let hwm = 0;
  const poll = setInterval(() => {
    const h = hwmOf(child.pid);
    if (h > hwm) hwm = h;
  }, 20);
  const out = await child.output();
  clearInterval(poll);
  const ms = performance.now() - t0;
  if (out.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return { ms, hwmKiB: hwm };
}

async function makeFile(path: string): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const block = new Uint8Array(MiB);
    crypto.getRandomValues(block.subarray(0, 65536));
    for (let off = 65536; off < MiB; off += 65536) block.copyWithin(off, 0, 65536);
    const view = new DataView(block.buffer);
    for (let i = 0; i < SIZE / MiB; i++) {
      view.setUint32(0, i);
      view.setUint32(MiB / 2, i ^ 0x5a5a5a5a);
      let off = 0;
      while (off < block.length) off += await f.write(block.subarray(off));
    }
  } finally {
    f.close();
  }
}

async function readLine(stream: ReadableStream<Uint8Array>, re: RegExp): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const m = re.exec(buf);
    if (m) {
      reader.releaseLock();
      return m[1];
    }
  }
  throw new Error(`no line matching ${re} (got: ${buf})`);
}

/**
 * The arguments after `deno` of the `relay` task in deno.json (its V8 flags matter for RSS),
 * with the script path made absolute.
 */
async function relayTaskArgs(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const words = String(cfg.tasks?.relay ?? "deno run -A scripts/relay.ts").split(/\s+/);
  if (words[0] !== "deno") throw new Error(`unexpected relay task: ${cfg.tasks?.relay}`);
  return words.slice(1).map((w) => (w.endsWith(".ts") ? `${ROOT}/${w}` : w));
}

const mbps = (ms: number) => SIZE / MiB / (ms / 1000);

/** Removes a file if it exists (untimed preparation of a fresh destination). */
const fresh = (path: string) => () => Deno.remove(path).catch(() => {});

/** Runs the relay benchmark, printing a table. */
export async function relayBench(print: (line: string) => void = console.log): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "gp-relay-bench-" });
  const procs: Deno.ChildProcess[] = [];
  try {
    const src = `${tmp}/src.bin`;
    await makeFile(src);
    await Deno.mkdir(`${tmp}/srv/bench`, { recursive: true });

    // Ceiling server.
    const ceil = new Deno.Command(Deno.execPath(), {
      args: ["eval", CEILING_SRC],
      env: { CEIL_FILE: `${tmp}/ceiling.bin` },
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    procs.push(ceil);
    const cport = await readLine(ceil.stdout, /PORT (\d+)/);
    const C = `http://127.0.0.1:${cport}`;
    const curlBase = ["-s", "-S", "-f", "-o", "/dev/null"];
    const ceilFile = `${tmp}/ceiling.bin`;
    const ceilPutDiscard = await timed("curl", [...curlBase, "-T", src, `${C}/discard`]);
    const ceilPutFile = await timed(
      "curl",
      [...curlBase, "-T", src, `${C}/file`],
      undefined,
      fresh(ceilFile),
    );
    const ceilPutMd5 = await timed("curl", [...curlBase, "-T", src, `${C}/md5`]);
    const ceilGet = await timed("curl", [...curlBase, `${C}/file`]);
    // What a download that keeps the file must do: write it and fsync it (as fetchFile does).
    const got = `${tmp}/got.bin`;
    const ceilGetFile = await timed(
      "sh",
      ["-c", `curl -s -S -f -o "$1" "$2" && sync "$1"`, "sh", got, `${C}/file`],
      undefined,
      fresh(got),
    );
    await fresh(got)();
    ceil.kill("SIGTERM");
    await ceil.status;
    procs.pop();
    await Deno.remove(`${tmp}/ceiling.bin`);

    // Relay, as `deno task relay` runs it.
    const cfgPath = `${tmp}/minio.json`;
    const relay = new Deno.Command(Deno.execPath(), {
      args: [...await relayTaskArgs(), "-d", `${tmp}/srv`, "-m", cfgPath],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    procs.push(relay);
    await readLine(relay.stdout, /(listening)/);
    const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
    const R = `http://${cfg.host}:${cfg.port}`;
    const auth = `user = "${cfg.accesskey}:${cfg.secretkey}"\n`;
    const sig = ["-K", "-", "--aws-sigv4", `aws:amz:${cfg.region}:s3`];
    const relayPutCurl = await timed(
      "curl",
      [...curlBase, ...sig, "-T", src, `${R}/bench/curl.bin`],
      auth,
      fresh(`${tmp}/srv/bench/curl.bin`),
    );
    const relayGetCurl = await timed("curl", [...curlBase, ...sig, `${R}/bench/curl.bin`], auth);
    await Deno.remove(`${tmp}/srv/bench/curl.bin`);
    const client = (op: string, extra: string[] = []) =>
      timedClient(["--client", op, cfgPath, src, ...extra]);
    /** The fastest of some runs (and the most memory any of them took). */
    const best = (runs: Measure[]) => ({
      ms: Math.min(...runs.map((r) => r.ms)),
      hwmKiB: Math.max(...runs.map((r) => r.hwmKiB)),
    });
    /** Best of {@link REPEAT} client runs, each onto a fresh destination. */
    const clientBest = async (op: string, dest: string, extra: string[] = []) => {
      const runs: Measure[] = [];
      for (let i = 0; i < REPEAT; i++) {
        await fresh(dest)();
        runs.push(await client(op, extra));
      }
      return best(runs);
    };
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${(hwmOf(relay.pid) / 1024).toFixed(0)}`);
    phase("curl");
    const stored = `${tmp}/srv/bench/store.bin`;
    const relayPutStore = await clientBest("store-put", stored);
    phase("store-put");
    const fetched = `${tmp}/fetched.bin`;
    // Unverified and verified fetches alternate, so that a change of load hits both alike.
    const getRuns: Measure[] = [];
    const verifyRuns: Measure[] = [];
    for (let i = 0; i < REPEAT; i++) {
      await fresh(fetched)();
      getRuns.push(await client("store-get", [fetched]));
      await fresh(fetched)();
      verifyRuns.push(await client("store-get", [fetched, "verify"]));
    }
    const relayGetStore = best(getRuns);
    const relayGetStoreVerify = best(verifyRuns);
    await fresh(fetched)();
    phase("store-get");
    const relayPutMinio = await client("put");
    phase("minio-put");
    const relayGetMinio = await client("get");
    phase("minio-get");
    await Deno.remove(`${tmp}/srv/bench/minio.bin`);
    const relayPutMinioUnsigned = await client("put", ["unsigned"]);
    phase("minio-put-unsigned");
    const relayHwm = hwmOf(relay.pid);
    relay.kill("SIGTERM");
    await relay.status;
    procs.pop();

    // [label, measure, ceiling (ms) for the ratio, what the ceiling is]
    type Row = [string, Measure, number, string];
    const rows: Row[] = [
      ["ceiling PUT: curl → bare sink, discard", ceilPutDiscard, NaN, ""],
      ["ceiling PUT: curl → bare sink, to file", ceilPutFile, NaN, ""],
      ["bare sink + MD5 of the body (MD5 cost)", ceilPutMd5, NaN, ""],
      ["ceiling GET: bare source → curl, discard", ceilGet, NaN, ""],
      ["ceiling GET: → curl to file + fsync", ceilGetFile, NaN, ""],
      ["[T1] relay PUT curl --aws-sigv4", relayPutCurl, ceilPutFile.ms, "PUT to file"],
      ["[T3] relay GET curl --aws-sigv4", relayGetCurl, ceilGet.ms, "GET discard"],
      ["[T2] relay PUT ArtifactStore.putFile", relayPutStore, ceilPutFile.ms, "PUT to file"],
      ["[T3] relay GET ArtifactStore.fetchFile", relayGetStore, ceilGetFile.ms, "GET file+fsync"],
      [
        "     same + sha256 verify (2nd thread)",
        relayGetStoreVerify,
        ceilGetFile.ms,
        "GET file+fsync",
      ],
      ["     relay PUT npm:minio fPutObject", relayPutMinio, ceilPutFile.ms, "PUT to file"],
      [
        "     relay PUT npm:minio, UNSIGNED-PAYLOAD",
        relayPutMinioUnsigned,
        ceilPutFile.ms,
        "PUT to file",
      ],
      ["     relay GET npm:minio getObject", relayGetMinio, ceilGet.ms, "GET discard"],
    ];
    const load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
    print(
      `file: 1 GiB random; machine: ${navigator.hardwareConcurrency} CPUs, load ${load}; ` +
        `curl and ArtifactStore rows: best of ${REPEAT}, raw npm:minio rows: one run each`,
    );
    print(
      `${"transfer".padEnd(44)} ${"time s".padStart(6)} ${"MiB/s".padStart(6)} ` +
        `${"ratio".padStart(5)} ${"vs ceiling".padEnd(14)} ${"client RSS MiB".padStart(14)}`,
    );
    for (const [name, m, ref, what] of rows) {
      const ratio = Number.isNaN(ref) ? "" : (ref / m.ms).toFixed(2);
      print(
        `${name.padEnd(44)} ${(m.ms / 1000).toFixed(2).padStart(6)} ` +
          `${mbps(m.ms).toFixed(0).padStart(6)} ${ratio.padStart(5)} ${what.padEnd(14)} ` +
          `${(m.hwmKiB / 1024).toFixed(0).padStart(14)}`,
      );
    }
    print(
      `relay peak RSS (VmHWM, whole run): ${(relayHwm / 1024).toFixed(0)} MiB; ` +
        `VmHWM MiB after each phase: ${phases.join(", ")}`,
    );
    print(
      "ratio = ceiling time / relay time. PUT ceiling: the bare sink writing the body to a file " +
        "(the relay must too). GET ceilings: the bare source into curl discarding it (raw GETs), " +
        "or curl writing a file and fsyncing it (fetchFile keeps the file and fsyncs it before " +
        "renaming it into place). ETags are MD5s only when the client sends Content-MD5 or the " +
        "body is ≤ 16 MiB, so no PUT row here pays for an MD5.",
    );
    const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
    const r = (ref: Measure, m: Measure) => ref.ms / m.ms;
    const targets: [string, number, number][] = [
      ["T1 relay+curl PUT ≥ 0.6 (PUT to-file ceiling)", r(ceilPutFile, relayPutCurl), 0.6],
      [
        "T2 relay+npm:minio PUT ≥ 0.4, on ArtifactStore.putFile (the project's client over " +
        "npm:minio: npm:minio signs, the file is streamed)",
        r(ceilPutFile, relayPutStore),
        0.4,
      ],
      ["T3 GET curl ≥ 0.8 (GET discard ceiling)", r(ceilGet, relayGetCurl), 0.8],
      [
        "T3 GET ArtifactStore.fetchFile ≥ 0.8 (GET file+fsync ceiling)",
        r(ceilGetFile, relayGetStore),
        0.8,
      ],
    ];
    print("targets (rows marked [T1]..[T3] above):");
    for (const [name, ratio, want] of targets) {
      print(`  ${name}: ${ratio.toFixed(2)} → ${verdict(ratio >= want)}`);
    }
    const verifyCost = relayGetStoreVerify.ms / relayGetStore.ms;
    const hashMs = await sha256Speed();
    print(
      `  verified 1 GiB fetch ≤ 1.15× the unverified one (sha256 computed on a second thread ` +
        `while the file is written and fsynced): ${verifyCost.toFixed(2)}× → ` +
        `${verdict(verifyCost <= 1.15)}; sha256 of 1 GiB in memory on this CPU alone: ` +
        `${(hashMs / 1000).toFixed(2)} s = ${(hashMs / relayGetStore.ms).toFixed(2)}× the ` +
        `unverified fetch (the CPU a verified fetch adds, on a machine whose cores the relay and ` +
        `the client already keep busy)`,
    );
    const ours = [relayPutCurl, relayGetCurl, relayPutStore, relayGetStore, relayGetStoreVerify];
    const oursHwm = Math.max(...ours.map((m) => m.hwmKiB));
    const rawHwm = Math.max(
      relayPutMinio.hwmKiB,
      relayPutMinioUnsigned.hwmKiB,
      relayGetMinio.hwmKiB,
    );
    print(
      `  T4 peak RSS ≤ 200 MiB: relay ${(relayHwm / 1024).toFixed(0)} MiB → ` +
        `${verdict(relayHwm <= 200 * 1024)}; client, on the curl and ArtifactStore rows: ` +
        `${(oursHwm / 1024).toFixed(0)} MiB → ${verdict(oursHwm <= 200 * 1024)}`,
    );
    print(
      `  T3 fetchFile against the GET discard ceiling instead: ` +
        `${r(ceilGet, relayGetStore).toFixed(2)} (it also writes and fsyncs 1 GiB)`,
    );
    print(
      `  for reference, npm:minio's own paths (not the project's client): getObject ` +
        `${r(ceilGet, relayGetMinio).toFixed(2)} of the GET ceiling → ` +
        `${verdict(r(ceilGet, relayGetMinio) >= 0.8)}; client RSS up to ` +
        `${(rawHwm / 1024).toFixed(0)} MiB → ${verdict(rawHwm <= 200 * 1024)}`,
    );
    print(
      "  npm:minio fPutObject (64 MiB parts buffered, SHA-256 and MD5 of each in JS): " +
        `${r(ceilPutFile, relayPutMinio).toFixed(2)} of the PUT ceiling → ` +
        `${verdict(r(ceilPutFile, relayPutMinio) >= 0.4)}`,
    );
  } finally {
    for (const p of procs) {
      try {
        p.kill("SIGKILL");
        await p.status;
      } catch { /* gone */ }
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Runs this file as the npm:minio client; it reports its own time and VmHWM. */
async function timedClient(args: string[]): Promise<Measure> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(`minio client failed: ${text}${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(text.trim().split("\n").pop()!);
}

/** Milliseconds node:crypto takes to hash 1 GiB held in memory (best of 3). */
async function sha256Speed(): Promise<number> {
  const { createHash } = await import("node:crypto");
  const buf = new Uint8Array(MiB);
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    const h = createHash("sha256");
    for (let i = 0; i < SIZE / MiB; i++) h.update(buf);
    h.digest();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

async function sha256Of(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const h = createHash("sha256");
  const f = await Deno.open(path);
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const n = await f.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    f.close();
  }
  return h.digest("hex");
}

async function clientMain(
  op: string,
  cfgPath: string,
  src: string,
  mode?: string,
  extra?: string,
) {
  const { minioFor } = await import(`${ROOT}/tests/_helpers/minio.ts`);
  const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
  if (op.startsWith("store-")) {
    // The project's own client helpers (lib/relay/client/, over npm:minio).
    const { ArtifactStore } = await import(`${ROOT}/lib/relay/mod.ts`);
    const store = ArtifactStore.fromConfig(cfg);
    try {
      const t0 = performance.now();
      if (op === "store-put") await store.putFile("bench", "store.bin", src);
      else {
        // With "verify", the sha256 the build metadata would give (computed before the clock).
        const expect = extra === "verify" ? { sha256: await sha256Of(src), size: SIZE } : undefined;
        const t1 = performance.now();
        await store.fetchFile("bench", "store.bin", mode!, { expect });
        const ms = performance.now() - t1;
        console.log(JSON.stringify({ ms, hwmKiB: hwmOf(Deno.pid) }));
        return;
      }
      const ms = performance.now() - t0;
      console.log(JSON.stringify({ ms, hwmKiB: hwmOf(Deno.pid) }));
    } finally {
      await store.close();
    }
    return;
  }
  const mc = minioFor(cfg);
  if (mode === "unsigned") {
    // Over plain HTTP npm:minio signs a SHA-256 of every part (CPU-bound here); this turns it
    // into UNSIGNED-PAYLOAD (Content-MD5 still protects each part).
    (mc as unknown as { enableSHA256: boolean }).enableSHA256 = false;
  }
  const t0 = performance.now();
  if (op === "put") {
    await mc.fPutObject("bench", "minio.bin", src, {});
  } else {
    const s = await mc.getObject("bench", "minio.bin");
    let n = 0;
    for await (const c of s) n += (c as Uint8Array).length;
    if (n !== SIZE) throw new Error(`got ${n} bytes`);
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, hwmKiB: hwmOf(Deno.pid) }));
}

if (import.meta.main) {
  const [flag, op, cfgPath, src, mode, extra] = Deno.args;
  if (flag === "--client") await clientMain(op, cfgPath, src, mode, extra);
  else await relayBench();
}
