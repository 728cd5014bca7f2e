/**
 * Relay benchmark: a 1 GiB file PUT and GET through the relay (run as a subprocess, as
 * `deno task relay` runs it) with curl `--aws-sigv4` and with npm:minio, against the same
 * transfers through a bare `node:http` sink/source (the ceiling), measured in the same run.
 * Reports throughput, ratios to the ceiling and peak RSS (VmHWM) of relay and clients.
 * Targets: relay+curl PUT ≥ 0.6, relay+minio PUT ≥ 0.4, GETs ≥ 0.8 of the ceiling, peak RSS
 * ≤ 200 MiB on each side. Prints; never fails on speed.
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

/** Runs `timedOnce` {@link REPEAT} times: fastest time, highest peak RSS. */
async function timed(cmd: string, args: string[], stdin?: string): Promise<Measure> {
  const runs: Measure[] = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await timedOnce(cmd, args, stdin));
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

const mbps = (ms: number) => SIZE / MiB / (ms / 1000);

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
    const ceilPutDiscard = await timed("curl", [...curlBase, "-T", src, `${C}/discard`]);
    const ceilPutFile = await timed("curl", [...curlBase, "-T", src, `${C}/file`]);
    const ceilPutMd5 = await timed("curl", [...curlBase, "-T", src, `${C}/md5`]);
    const ceilGet = await timed("curl", [...curlBase, `${C}/file`]);
    ceil.kill("SIGTERM");
    await ceil.status;
    procs.pop();
    await Deno.remove(`${tmp}/ceiling.bin`);

    // Relay, as `deno task relay` runs it.
    const cfgPath = `${tmp}/minio.json`;
    const relay = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/scripts/relay.ts`, "-d", `${tmp}/srv`, "-m", cfgPath],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    procs.push(relay);
    await readLine(relay.stdout, /(listening)/);
    const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
    const R = `http://${cfg.host}:${cfg.port}`;
    const auth = `user = "${cfg.accesskey}:${cfg.secretkey}"\n`;
    const sig = ["-K", "-", "--aws-sigv4", `aws:amz:${cfg.region}:s3`];
    const relayPutCurl = await timed("curl", [
      ...curlBase,
      ...sig,
      "-T",
      src,
      `${R}/bench/curl.bin`,
    ], auth);
    const relayGetCurl = await timed("curl", [...curlBase, ...sig, `${R}/bench/curl.bin`], auth);
    await Deno.remove(`${tmp}/srv/bench/curl.bin`);
    const client = (op: string, extra: string[] = []) =>
      timedClient(["--client", op, cfgPath, src, ...extra]);
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${(hwmOf(relay.pid) / 1024).toFixed(0)}`);
    phase("curl");
    const relayPutMinio = await client("put");
    phase("minio-put");
    const relayGetMinio = await client("get");
    phase("minio-get");
    const relayPutMinioUnsigned = await client("put", ["unsigned"]);
    phase("minio-put-unsigned");
    await Deno.remove(`${tmp}/srv/bench/minio.bin`);
    const relayPutStore = await client("store-put");
    phase("store-put");
    const relayGetStore = await client("store-get", [`${tmp}/fetched.bin`]);
    phase("store-get");
    const relayHwm = hwmOf(relay.pid);
    relay.kill("SIGTERM");
    await relay.status;
    procs.pop();

    const rows: [string, Measure, number, number][] = [
      ["ceiling PUT (curl → bare sink, discard)", ceilPutDiscard, NaN, NaN],
      ["ceiling PUT (curl → bare sink, to file)", ceilPutFile, NaN, NaN],
      ["ceiling GET (bare source → curl)", ceilGet, NaN, NaN],
      ["bare sink + MD5 of the body (ETag cost)", ceilPutMd5, NaN, NaN],
      ["relay PUT curl --aws-sigv4", relayPutCurl, ceilPutDiscard.ms, ceilPutFile.ms],
      ["relay GET curl --aws-sigv4", relayGetCurl, ceilGet.ms, NaN],
      ["relay PUT npm:minio fPutObject", relayPutMinio, ceilPutDiscard.ms, ceilPutFile.ms],
      ["relay GET npm:minio getObject", relayGetMinio, ceilGet.ms, NaN],
      [
        "relay PUT npm:minio, UNSIGNED-PAYLOAD",
        relayPutMinioUnsigned,
        ceilPutDiscard.ms,
        ceilPutFile.ms,
      ],
      ["relay PUT ArtifactStore.putFile", relayPutStore, ceilPutDiscard.ms, ceilPutFile.ms],
      ["relay GET ArtifactStore.fetchFile (to file)", relayGetStore, ceilGet.ms, NaN],
    ];
    const load = Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
    print(
      `file: 1 GiB random; machine: ${navigator.hardwareConcurrency} CPUs, load ${load}; ` +
        `curl rows: best of ${REPEAT}, npm:minio rows: one run each`,
    );
    print(
      `${"transfer".padEnd(42)} ${"time s".padStart(7)} ${"MiB/s".padStart(7)} ` +
        `${"ratio".padStart(6)} ${"ratio/f".padStart(7)} ${"client RSS MiB".padStart(14)}`,
    );
    for (const [name, m, ref, refFile] of rows) {
      const ratio = Number.isNaN(ref) ? "" : (ref / m.ms).toFixed(2);
      const ratioF = Number.isNaN(refFile) ? "" : (refFile / m.ms).toFixed(2);
      print(
        `${name.padEnd(42)} ${(m.ms / 1000).toFixed(2).padStart(7)} ` +
          `${mbps(m.ms).toFixed(0).padStart(7)} ${ratio.padStart(6)} ${ratioF.padStart(7)} ` +
          `${(m.hwmKiB / 1024).toFixed(0).padStart(14)}`,
      );
    }
    print(
      `relay peak RSS (VmHWM, whole run): ${(relayHwm / 1024).toFixed(0)} MiB; ` +
        `VmHWM MiB after each phase: ${phases.join(", ")}`,
    );
    print(
      "ratio = ceiling time / relay time against the discarding sink (PUT) or the bare source " +
        "(GET); ratio/f = against a sink that writes the body to a file like the relay must. " +
        "A PUT's ETag is the body's MD5: one core of MD5 bounds every PUT (see the MD5 row).",
    );
    const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
    print(
      `targets: curl PUT ≥ 0.6: ${verdict(ceilPutDiscard.ms / relayPutCurl.ms >= 0.6)} ` +
        `(vs file sink: ${verdict(ceilPutFile.ms / relayPutCurl.ms >= 0.6)}); ` +
        `minio PUT ≥ 0.4: ${verdict(ceilPutDiscard.ms / relayPutMinio.ms >= 0.4)} ` +
        `(vs file sink: ${verdict(ceilPutFile.ms / relayPutMinio.ms >= 0.4)}); ` +
        `GETs ≥ 0.8: curl ${verdict(ceilGet.ms / relayGetCurl.ms >= 0.8)}, minio ${
          verdict(ceilGet.ms / relayGetMinio.ms >= 0.8)
        }; RSS ≤ 200 MiB: relay ${verdict(relayHwm <= 200 * 1024)}, clients ${
          verdict(rows.every(([, m]) => m.hwmKiB <= 200 * 1024))
        }`,
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

async function clientMain(op: string, cfgPath: string, src: string, mode?: string) {
  const Minio = await import("minio");
  const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
  if (op.startsWith("store-")) {
    // The project's own client helpers (lib/relay/client.ts, over npm:minio).
    const { ArtifactStore } = await import(`${ROOT}/lib/relay/mod.ts`);
    const store = ArtifactStore.fromConfig(cfg);
    try {
      const t0 = performance.now();
      if (op === "store-put") await store.putFile("bench", "store.bin", src);
      else await store.fetchFile("bench", "store.bin", mode!);
      const ms = performance.now() - t0;
      console.log(JSON.stringify({ ms, hwmKiB: hwmOf(Deno.pid) }));
    } finally {
      await store.close();
    }
    return;
  }
  const mc = new Minio.Client({
    endPoint: cfg.host,
    port: cfg.port,
    useSSL: false,
    accessKey: cfg.accesskey,
    secretKey: cfg.secretkey,
    region: cfg.region,
  });
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
  const [flag, op, cfgPath, src, mode] = Deno.args;
  if (flag === "--client") await clientMain(op, cfgPath, src, mode);
  else await relayBench();
}
