/**
 * Local-backend benchmark: dispatch overhead per stage (a 10-stage plan of `true` commands,
 * one stage per group, median of worker wall time minus the command's own time), and relay
 * bytes per artifact for the demo JobSpec. Prints figures; never fails on speed.
 * Target: ≤ 0.3 s dispatch overhead per stage.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

interface Report {
  exitCode: number;
  relay: { bytesReceived?: number; bytesSent?: number };
  stages: { id: string; durationMs: number; waitMs: number; result: string }[];
  buildsLocation: string;
  latestBuild?: string;
  arch: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function submit(spec: string, dir: string): Promise<Report> {
  const report = `${dir}/report.json`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}/scripts/submit.ts`,
      "--spec",
      spec,
      "--work-dir",
      `${dir}/work`,
      "--report",
      report,
    ],
    env: { NO_COLOR: "1", PATH: `${ROOT}/examples/fake-cosa:${Deno.env.get("PATH") ?? ""}` },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `submit failed (${out.code}):\n${new TextDecoder().decode(out.stdout)}\n` +
        new TextDecoder().decode(out.stderr),
    );
  }
  return JSON.parse(await Deno.readTextFile(report));
}

/** Median time of `bash -xeu -o pipefail <script: true>`, ms. */
async function commandTimeMs(dir: string): Promise<number> {
  const f = `${dir}/true.sh`;
  await Deno.writeTextFile(f, "true\n");
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await new Deno.Command("bash", { args: ["-xeu", "-o", "pipefail", f], stderr: "null" })
      .output();
    times.push(performance.now() - t);
  }
  return median(times);
}

function* walk(dir: string): Generator<{ path: string; size: number }> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile) yield { path: p, size: Deno.statSync(p).size };
  }
}

/** Runs the benchmark and prints its figures. */
export async function localBench(print: (line: string) => void = console.log): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "gp-local-bench-" });
  try {
    // 1. Dispatch overhead.
    const stages = Array.from(
      { length: 10 },
      (_, i) => `  - id: s${i + 1}\n    execution_order: ${i + 1}\n    commands: ["true"]\n`,
    ).join("");
    const spec = `${tmp}/ten.yaml`;
    await Deno.writeTextFile(spec, `job:\n  strict: true\nstages:\n${stages}`);
    const cmdMs = await commandTimeMs(tmp);
    const r = await submit(spec, `${tmp}/ten`);
    const over = r.stages.map((s) => s.durationMs - s.waitMs - cmdMs);
    const med = median(over) / 1000;
    print(
      `local dispatch overhead: median ${med.toFixed(3)} s/stage over ${over.length} stages ` +
        `(min ${(Math.min(...over) / 1000).toFixed(3)}, max ${
          (Math.max(...over) / 1000).toFixed(3)
        }; command ${cmdMs.toFixed(1)} ms; load average ${
          Deno.loadavg()[0].toFixed(1)
        } on ${navigator.hardwareConcurrency} CPUs) — target ≤ 0.300 s: ${
          med <= 0.3 ? "met" : "NOT met"
        }`,
    );
    // 2. 50 stages in parallel (one execution group): what each stage adds to the run's wall
    //    time, against a run of one stage.
    const parallel = async (n: number) => {
      const st = Array.from(
        { length: n },
        (_, i) => `  - id: p${i + 1}\n    execution_order: 1\n    commands: ["true"]\n`,
      ).join("");
      const f = `${tmp}/par${n}.yaml`;
      await Deno.writeTextFile(f, `job:\n  strict: true\nstages:\n${st}`);
      const t = performance.now();
      const rep = await submit(f, `${tmp}/par${n}`);
      if (rep.stages.length !== n || rep.exitCode !== 0) {
        throw new Error(`parallel run ${n} failed`);
      }
      return performance.now() - t;
    };
    const one = await parallel(1);
    const fifty = await parallel(50);
    print(
      `local 50 parallel stages: run ${(fifty / 1000).toFixed(2)} s against ${
        (one / 1000).toFixed(2)
      } s for one stage: ${((fifty - one) / 49 / 1000).toFixed(3)} s of dispatch per added stage`,
    );
    // 3. Relay bytes per artifact for the demo.
    const d = await submit(`${ROOT}/examples/demo.jobspec.yaml`, `${tmp}/demo`);
    const buildDir = `${d.buildsLocation}/${d.latestBuild}/${d.arch}`;
    const meta = JSON.parse(await Deno.readTextFile(`${buildDir}/meta.json`));
    const images = Object.values(meta.images ?? {}) as { path: string; size: number }[];
    const artifactBytes = images.reduce((n, a) => n + (a.size ?? 0), 0);
    const treeBytes = [...walk(d.buildsLocation)].reduce((n, f) => n + f.size, 0);
    const rx = d.relay.bytesReceived ?? NaN;
    const tx = d.relay.bytesSent ?? NaN;
    print(
      `local demo relay bytes: received ${rx} (uploads), sent ${tx} (downloads) for ` +
        `${images.length} artifacts of ${artifactBytes} bytes (builds tree ${treeBytes} bytes); ` +
        `per artifact: ${(rx / images.length).toFixed(0)} up, ${(tx / images.length).toFixed(0)} ` +
        `down; uploads/artifact bytes = ${(rx / artifactBytes).toFixed(2)}`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await localBench();
