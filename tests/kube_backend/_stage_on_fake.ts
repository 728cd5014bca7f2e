/**
 * Runs one stage the way `submit --backend kube` does (schedule → KubeExecutor → runPod) against
 * a {@link FakeKube} on fake time, and checks what must hold on every path: no wait left
 * pending, no watch or log stream left open, no pod and no Secret left in the cluster.
 */
import assert from "node:assert/strict";
import type { V1PodStatus } from "@kubernetes/client-node";
import { schedule, type ScheduleResult } from "../../lib/coordinator/schedule.ts";
import { KubeExecutor } from "../../lib/executors/kube.ts";
import { type FakeKube, finish, type PodScript, running } from "./_fake_kube.ts";

/** One step of a pod's life: at `ms` after its creation, `fn` changes it. */
export type Step = [ms: number, fn: (k: FakeKube, name: string) => void];

/** A pod's life as a timeline of steps. */
export function life(...steps: Step[]): PodScript {
  return (k, name) => {
    for (const [ms, fn] of steps) k.clock.after(ms, () => fn(k, name));
  };
}

/** Every init container of the pod ran and exited 0, each printing `<name> ok`. */
export function initsDone(k: FakeKube, name: string): void {
  for (const c of k.pods.get(name)?.spec?.initContainers ?? []) {
    k.container(name, c.name, { running: {} }, true);
    k.write(name, c.name, `${c.name} ok\n`);
    k.container(name, c.name, { terminated: { exitCode: 0, reason: "Completed" } }, true);
  }
}

/** The usual start: init containers done at 100 ms, the worker running at 150 ms. */
export const START: Step[] = [[100, initsDone], [150, (k, n) => running(k, n)]];

/** A pod status edit as a step. */
export const status = (ms: number, edit: (s: V1PodStatus) => void): Step => [
  ms,
  (k, n) => k.status(n, edit),
];

/** The worker exits with `code` at `ms` (phase following at once unless `phase: false`). */
export const exits = (
  ms: number,
  code: number,
  opts: { reason?: string; message?: string; phase?: boolean } = {},
): Step => [ms, (k, n) => finish(k, n, code, opts)];

/** Options of {@link stageOn}. */
export interface StageOnOptions {
  timeoutSeconds?: number;
  unschedulableTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** Ctrl-C at this fake time (ms). */
  abortAt?: number;
  /** Skip the "nothing left in the cluster" check (a cluster that would not delete). */
  leftovers?: boolean;
}

/** What {@link stageOn} saw. */
export interface StageOnResult {
  result: ScheduleResult;
  /** The worker's output as the coordinator received it. */
  lines: string[];
  /** The executor's diagnostics. */
  logs: string[];
  /** Fake time the stage took (ms). */
  ms: number;
  /** The worker pod's name. */
  pod: string;
}

/** Runs stage `build` (index 0) of run `run-1` on `k`, on `k.clock`. */
export async function stageOn(k: FakeKube, opts: StageOnOptions = {}): Promise<StageOnResult> {
  const lines: string[] = [];
  const logs: string[] = [];
  const ctl = new AbortController();
  if (opts.abortAt !== undefined) {
    k.clock.after(opts.abortAt, () => ctl.abort(new Error("interrupted (SIGINT)")));
  }
  const exec = new KubeExecutor({
    client: k.ops,
    image: "img",
    clock: k.clock,
    timeoutSeconds: opts.timeoutSeconds ?? 600,
    unschedulableTimeoutMs: opts.unschedulableTimeoutMs,
    drainTimeoutMs: opts.drainTimeoutMs,
    ocp3: false,
    kvm: false,
    arch: "x86_64",
    fsGroup: 1000,
    mapSecrets: false,
    log: (m) => logs.push(m),
  });
  const start = k.clock.now();
  const result = await k.clock.run((async () => {
    try {
      await exec.prepare({ host: "10.0.0.1", port: 9000 }, { runId: "run-1", signal: ctl.signal });
      return await schedule({
        groups: [{ order: 1, stages: [{ id: "build", index: 0 }] }],
        check: () => Promise.resolve({ ready: true as const, inputs: undefined }),
        launch: (s, _i, { signal }) =>
          exec.runStage({
            runId: "run-1",
            stageId: s.id,
            stageIndex: s.index,
            env: { COSA_WORK_POD_JSON: "{}" },
            secretEnv: { COSA_RELAY_SECRET_KEY: "s3cr3t-value-1234567890" },
            onLine: (l) => lines.push(l),
            signal,
          }),
        dependencyTimeoutMs: 1000,
        pollIntervalMs: 100,
        signal: ctl.signal,
        now: k.clock.now,
        sleep: (ms, signal) => k.clock.delay(ms, { signal }).catch(() => {}),
      });
    } finally {
      await exec[Symbol.asyncDispose]();
    }
  })());
  const ms = k.clock.now() - start;
  assert.equal(k.clock.pendingDelays, 0, "no wait left pending");
  assert.equal(k.openStreams, 0, "no watch or log stream left open");
  const pod = k.createdPods[0]?.metadata?.name ?? "";
  if (!opts.leftovers) {
    assert.deepEqual([...k.pods.keys()], [], "no pod left");
    assert.deepEqual([...k.secrets.keys()], [], "no Secret left");
  }
  return { result, lines, logs, ms, pod };
}
