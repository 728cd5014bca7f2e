/**
 * Podman-backend benchmark: the per-stage overhead of {@link PodmanExecutor.runStage} (libpod
 * API: relay secret created and removed, ephemeral `/srv` volume, create, start, log follow +
 * drain, wait, remove) over a bare `podman run --rm` of the same command, measured in the same
 * run, interleaved, median of N. Both run `deno eval` of a one-line program in the worker test
 * image with host networking. Target: ≤ 1.5 s per stage. Prints figures; never fails on speed.
 *
 * @module
 */
import { PodmanExecutor } from "../lib/executors/podman.ts";
import { ensureTestImage, podmanMissing, startPodmanService } from "../tests/_helpers/podman.ts";

const ROUNDS = 5;
const PROGRAM = "console.log('bench-stage-ran')";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function bareRun(image: string): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command("podman", {
    args: [
      "run",
      "--rm",
      "--network",
      "host",
      "--privileged",
      "--user",
      "builder",
      "-e",
      "DENO_DIR=/tmp/deno",
      image,
      "/usr/local/bin/deno",
      "eval",
      PROGRAM,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success || !text.includes("bench-stage-ran")) {
    throw new Error(`bare podman run failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/** The bench section (registered in bench/main.ts). */
export async function podmanBench(print: (line: string) => void): Promise<void> {
  const missing = podmanMissing();
  if (missing) {
    print(`skipped: ${missing}`);
    return;
  }
  const image = await ensureTestImage();
  await using svc = await startPodmanService();
  await using exec = new PodmanExecutor({
    host: { kind: "unix", socketPath: svc.socketPath },
    image,
    // The same command as the bare run (instead of the worker, which needs a relay).
    extraSpec: { entrypoint: ["/usr/local/bin/deno"], command: ["eval", PROGRAM] },
    mountWorker: false,
  });
  const signal = AbortSignal.timeout(600_000);
  const runId = `bench-${crypto.randomUUID().slice(0, 8)}`;
  // The executor's one-time preparation (image check) is not per-stage work.
  const tp = performance.now();
  await exec.prepare({ host: "127.0.0.1", port: 9 }, { runId, signal });
  print(`prepare (connect, image check, devices): ${(performance.now() - tp).toFixed(0)} ms`);
  await bareRun(image); // warm caches
  const bare: number[] = [];
  const ours: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    bare.push(await bareRun(image));
    const lines: string[] = [];
    const t0 = performance.now();
    const r = await exec.runStage({
      runId,
      stageId: `s${i}`,
      stageIndex: i,
      env: {},
      secretEnv: { COSA_RELAY_SECRET_KEY: "bench-secret" },
      onLine: (l) => lines.push(l),
      signal,
    });
    ours.push(performance.now() - t0);
    if (r.exitCode !== 0 || !lines.includes("bench-stage-ran")) {
      throw new Error(`executor stage failed: ${r.exitCode} ${lines.join(" | ")}`);
    }
  }
  const mb = median(bare);
  const mo = median(ours);
  const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  print(`bare podman run --rm (median of ${ROUNDS}):      ${f(mb)}  [${bare.map(f).join(", ")}]`);
  print(`PodmanExecutor.runStage (median of ${ROUNDS}):   ${f(mo)}  [${ours.map(f).join(", ")}]`);
  print(
    `per-stage overhead of the podman backend: ${f(mo - mb)} (target <= 1.50 s: ` +
      `${mo - mb <= 1500 ? "met" : "NOT met"})`,
  );
}

if (import.meta.main) await podmanBench(console.log);
