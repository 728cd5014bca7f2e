/**
 * runPod's log streaming and ending on fake time against the in-memory cluster: cut log streams
 * resumed without a lost or repeated line and without delay, a server closing every log stream
 * asked with back-off (and Ctrl-C during it prompt), transient log errors retried, a vanished pod's 404
 * ending the stream, logs that never drain bounded, a success kept when someone deletes the
 * finished pod, and an abort before anything exists.
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { KubeApiError, runPod, type RunPodOptions } from "../../lib/kube/mod.ts";
import { FakeKube, finish, running } from "./_fake_kube.ts";
import { life, type Step } from "./_stage_on_fake.ts";

function pod(name: string): V1Pod {
  return {
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      initContainers: [{ name: "init", image: "x" }],
      containers: [{ name: "worker", image: "x" }],
    },
  };
}

/** Runs `pod` on `k`; checks no wait, stream or pod is left. */
async function run(k: FakeKube, over: Partial<RunPodOptions> = {}) {
  const lines: string[] = [];
  const logs: string[] = [];
  const p = runPod(k.ops, pod("p"), {
    signal: new AbortController().signal,
    onLine: (l, c) => lines.push(`${c}|${l}`),
    log: (m) => logs.push(m),
    timeoutMs: 600_000,
    clock: k.clock,
    ...over,
  });
  const out = await k.clock.run(p);
  assert.equal(k.clock.pendingDelays, 0, "no wait left pending");
  assert.equal(k.openStreams, 0, "no watch or log stream left open");
  assert.deepEqual([...k.pods.keys()], [], "no pod left");
  return { out, lines, logs, ms: k.clock.elapsed };
}

const initRuns = (k: FakeKube, n: string) => {
  k.container(n, "init", { running: {} }, true);
  k.write(n, "init", "i1\ni2\n");
  k.container(n, "init", { terminated: { exitCode: 0, reason: "Completed" } }, true);
};

Deno.test("runPod: cut log streams are resumed: every line once, in order, the unterminated tail last", async () => {
  // After a follow ends while the container runs, runPod follows again, skipping the lines
  // it has.
  const k = new FakeKube(life(
    [100, initRuns],
    [150, (k, n) => running(k, n)],
    [200, (k, n) => k.write(n, "worker", "l1\nl2\nl3-start")],
    [300, (k, n) => k.cutLog(n, "worker")], // mid-line
    [6000, (k, n) => k.write(n, "worker", "-end\nl4\n")],
    [7000, (k, n) => k.cutLog(n, "worker")],
    [13_000, (k, n) => k.write(n, "worker", "l5\ntail")],
    [14_000, (k, n) => finish(k, n, 4)],
  ));
  const { out, lines, ms } = await run(k);
  assert.deepEqual(out, { exitCode: 4 });
  assert.deepEqual(lines, [
    "init|i1",
    "init|i2",
    "worker|l1",
    "worker|l2",
    "worker|l3-start-end",
    "worker|l4",
    "worker|l5",
    "worker|tail",
  ]);
  assert.deepEqual(k.calls.filter((c) => c.startsWith("log p/worker")), [
    "log p/worker follow skip=0",
    "log p/worker follow skip=2",
    "log p/worker follow skip=4",
    "log p/worker skip=5",
  ]);
  assert.ok(ms >= 14_000 && ms < 15_000, `${ms}`);
});

/**
 * Runs `pod` on `k` until `abortAt` (or its end), recording each log line with the fake time
 * it reached `onLine` and the fake time of every log request of the worker.
 */
async function timed(k: FakeKube, abortAt?: number) {
  const lines: [string, number][] = [];
  const reads: number[] = [];
  const ops = {
    ...k.ops,
    streamLog: (...a: Parameters<typeof k.ops.streamLog>) => {
      if (a[1] === "worker") reads.push(k.clock.elapsed);
      return k.ops.streamLog(...a);
    },
  };
  const ctl = new AbortController();
  if (abortAt !== undefined) k.clock.after(abortAt, () => ctl.abort(new Error("interrupted")));
  const p = runPod(ops, pod("p"), {
    signal: ctl.signal,
    onLine: (l, c) => c === "worker" && lines.push([l, k.clock.elapsed]),
    timeoutMs: 600_000,
    clock: k.clock,
  });
  let out: unknown;
  try {
    out = await k.clock.run(p, { maxSteps: 2000 });
  } catch (e) {
    out = e;
  }
  assert.equal(k.clock.pendingDelays, 0, "no wait left pending");
  assert.equal(k.openStreams, 0, "no watch or log stream left open");
  assert.deepEqual([...k.pods.keys()], [], "no pod left");
  return { out, lines, reads, ms: k.clock.elapsed };
}

Deno.test("runPod: a dropped log stream is followed again at once: live output is not held back", async () => {
  // Pod created at 0; the lines written right after each drop must reach onLine when written,
  // not when a fixed wait has passed (it was 5 s).
  const k = new FakeKube(life(
    [100, initRuns],
    [150, (k, n) => running(k, n)],
    [200, (k, n) => k.write(n, "worker", "a\n")],
    [300, (k, n) => k.cutLog(n, "worker")],
    [301, (k, n) => k.write(n, "worker", "b\n")],
    [10_000, (k, n) => k.cutLog(n, "worker")], // after a healthy stretch: at once again
    [10_001, (k, n) => k.write(n, "worker", "c\n")],
    [12_000, (k, n) => k.write(n, "worker", "d\n")],
    [12_000, (k, n) => finish(k, n, 0)],
  ));
  const { out, lines, reads } = await timed(k);
  assert.deepEqual(out, { exitCode: 0 });
  assert.deepEqual(lines, [["a", 200], ["b", 301], ["c", 10_001], ["d", 12_000]]);
  assert.deepEqual(reads, [150, 300, 10_000, 12_000], "one follow per drop, then the drain");
});

Deno.test("runPod: a server that closes every log follow at once is asked with back-off, not in a loop", async () => {
  // The worker prints a line a second for a minute; every follow ends right after sending.
  const steps: Step[] = [[100, initRuns], [150, (k, n) => running(k, n)]];
  for (let s = 1; s <= 59; s++) steps.push([s * 1000, (k, n) => k.write(n, "worker", `${s}\n`)]);
  steps.push([60_000, (k, n) => finish(k, n, 0)]);
  const k = new FakeKube(life(...steps));
  k.dropFollows = true;
  const { out, lines, reads } = await timed(k);
  assert.deepEqual(out, { exitCode: 0 });
  // Every line once, in order, none later than 5 s after it was written.
  assert.deepEqual(lines.map(([l]) => l), Array.from({ length: 59 }, (_, i) => `${i + 1}`));
  for (const [l, at] of lines) assert.ok(at - Number(l) * 1000 <= 5000, `${l} at ${at}`);
  // Follows: again at once after the first drop, then gaps growing to 5 s and staying there.
  const gaps = reads.slice(1, -1).map((t, i) => t - reads[i]);
  assert.equal(gaps[0], 0, `${reads.slice(0, 30)}`);
  for (let i = 1; i < gaps.length; i++) {
    assert.ok(gaps[i] >= gaps[i - 1] && gaps[i] > 0 && gaps[i] <= 5000, `${reads.slice(0, 30)}`);
  }
  assert.ok(reads.length <= 20, `${reads.length} log requests in 60 s: ${reads.slice(0, 30)}`);
});

Deno.test("runPod: Ctrl-C while backing off from dropped log streams ends the run at once", async () => {
  const k = new FakeKube(life([100, initRuns], [150, (k, n) => running(k, n)]));
  k.dropFollows = true;
  const { out, ms, reads } = await timed(k, 30_100);
  assert.ok(out instanceof Error && out.message === "interrupted", `${out}`);
  assert.equal(ms, 30_100);
  assert.ok(reads.at(-1)! < 30_100 - 1000, `${reads.slice(0, 30)}`); // it was in a wait, not a request
  assert.deepEqual(k.deletedPods, ["p"]);
});

Deno.test("runPod: transient log errors are retried; a vanished pod's 404 ends the stream, not the run", async () => {
  const logError = (status: number, reason: string, detail: string) =>
    new KubeApiError({ operation: "log p/worker", status, reason, detail });
  const notReady = () =>
    logError(400, "BadRequest", 'container "worker" in pod "p" is waiting to start');
  const k = new FakeKube(life(
    [100, initRuns],
    [150, (k, n) => running(k, n)],
    [200, (k, n) => k.write(n, "worker", "a\nb\n")],
    [300, (k, n) => finish(k, n, 0)],
  ));
  k.logFaults.set("p/worker", [notReady(), notReady()]);
  const a = await run(k);
  assert.deepEqual(a.out, { exitCode: 0 });
  assert.deepEqual(a.lines.filter((l) => l.startsWith("worker|")), ["worker|a", "worker|b"]);

  const gone = logError(404, "NotFound", 'pods "p" not found');
  const k2 = new FakeKube(life(
    [100, initRuns],
    [150, (k, n) => running(k, n)],
    [300, (k, n) => finish(k, n, 0)],
  ));
  k2.logFaults.set("p/worker", [gone]);
  const b = await run(k2);
  assert.deepEqual(b.out, { exitCode: 0 });
  assert.equal(k2.calls.filter((c) => c.startsWith("log p/worker")).length, 1, "not retried");
  assert.ok(b.logs.some((l) => l.startsWith("log p/worker: ")), b.logs.join("\n"));
});

Deno.test("runPod: logs that never drain after the pod ended are given up after drainTimeoutMs", async () => {
  const k = new FakeKube(life(
    [100, initRuns],
    [150, (k, n) => running(k, n)],
    [200, (k, n) => k.write(n, "worker", "seen\n")],
    [300, (k, n) => {
      k.hangLog(n, "worker");
      k.cutLog(n, "worker");
    }],
    [1000, (k, n) => finish(k, n, 0)],
  ));
  const { out, lines, logs, ms } = await run(k, { drainTimeoutMs: 5000 });
  assert.deepEqual(out, { exitCode: 0 });
  assert.ok(lines.includes("worker|seen"));
  assert.ok(logs.includes("pod p: logs did not drain in time"), logs.join("\n"));
  assert.ok(ms >= 6000 && ms <= 6500, `${ms}`);
});

Deno.test("runPod: a pod deleted by someone else after it succeeded keeps its success", async () => {
  const k = new FakeKube(life(
    [100, initRuns],
    [150, (k, n) => running(k, n)],
    [300, (k, n) => finish(k, n, 0)],
    [300, (k, n) => k.deleteBySomeoneElse(n, 0)],
  ));
  const { out } = await run(k);
  assert.deepEqual(out, { exitCode: 0 });
});

Deno.test("runPod: an abort before the create creates nothing; one during the run deletes the pod", async () => {
  const k = new FakeKube();
  await assert.rejects(
    run(k, { signal: AbortSignal.abort(new Error("early")) }),
    /early/,
  );
  assert.deepEqual(k.calls, []);

  const k2 = new FakeKube(life([100, initRuns], [150, (k, n) => running(k, n)]));
  const ctl = new AbortController();
  k2.clock.after(2000, () => ctl.abort(new Error("stop")));
  await assert.rejects(run(k2, { signal: ctl.signal }), /stop/);
  assert.equal(k2.clock.elapsed, 2000);
  assert.deepEqual(k2.deletedPods, ["p"]);
});
