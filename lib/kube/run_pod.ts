/**
 * Runs one pod to completion: create it, watch it (resuming dropped watches), stream the logs
 * of its init and main containers in order without losing the tail, decide the outcome from
 * the pod's status, fail promptly with the cluster's reason (unschedulable after a bounded
 * time, image pull errors, eviction, OOM, deletion by someone else), and delete the pod
 * (grace 0) whatever happens.
 *
 * @module
 */

import type { V1Pod } from "@kubernetes/client-node";
import type { KubeClient } from "./client.ts";
import { KubeApiError } from "./retry.ts";
import { type Clock, SYSTEM_CLOCK, timeoutSignal } from "../toolkit/clock.ts";
import { containerTerminated, type PodVerdict, podVerdict } from "./verdict.ts";

/** The client operations {@link runPod} and the kube executor use (a fake implements these). */
export type KubeOps = Pick<
  KubeClient,
  | "namespace"
  | "createPod"
  | "readPod"
  | "deletePod"
  | "listPods"
  | "createSecret"
  | "deleteSecret"
  | "listSecretMetadata"
  | "listConfigMapMetadata"
  | "listNodes"
  | "serverVersion"
  | "watchPod"
  | "streamLog"
>;

/** How a pod ended. `exitCode` -1 means the main container never ran. */
export interface PodOutcome {
  exitCode: number;
  reason?: string;
}

/** Options of {@link runPod}. */
export interface RunPodOptions {
  signal: AbortSignal;
  /** Receives every log line; `container` tells init output from the main container's. */
  onLine: (line: string, container: string) => void;
  /** Diagnostics (waiting, retries). */
  log?: (msg: string) => void;
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** How long a pod may stay Unschedulable before the run fails (default 120 s). */
  unschedulableTimeoutMs?: number;
  /** How long to wait for the logs to drain after the pod ended (default 15 s). */
  drainTimeoutMs?: number;
  /** How long to wait for a terminal pod phase after the main container ended (default 3 s). */
  settleMs?: number;
  /** Delay between log stream attempts while a container is not ready (default 250 ms). */
  logRetryMs?: number;
  /** Time and waits (default: the real clock; tests pass a fake one). */
  clock?: Clock;
}

/** Wakes waiters when the pod state changes. */
class Notifier {
  #waiters: (() => void)[] = [];
  constructor(readonly clock: Clock) {}
  notify() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
  /** Resolves on the next {@link notify} or after `ms`, whichever comes first. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = new AbortController();
      const done = () => {
        timer.abort();
        this.#waiters = this.#waiters.filter((x) => x !== done);
        resolve();
      };
      this.#waiters.push(done);
      this.clock.delay(Math.max(0, ms), { signal: timer.signal }).then(done, () => {});
    });
  }
}

interface State {
  pod: V1Pod;
  deleted: boolean;
  watchError?: unknown;
  /** Set when the outcome is known: log streamers stop waiting for containers to start. */
  finished: boolean;
}

/**
 * Creates `pod` and runs it to completion. Resolves with the outcome (also for failures the
 * cluster reports); rejects on persistent API errors and with the signal's reason on abort.
 * The pod is deleted (grace 0) before this settles.
 */
export async function runPod(
  client: KubeOps,
  pod: V1Pod,
  opts: RunPodOptions,
): Promise<PodOutcome> {
  const log = opts.log ?? (() => {});
  const clock = opts.clock ?? SYSTEM_CLOCK;
  const name = pod.metadata!.name!;
  const mainName = pod.spec!.containers[0].name;
  const containers = [
    ...(pod.spec!.initContainers ?? []).map((c) => c.name),
    ...pod.spec!.containers.map((c) => c.name),
  ];
  opts.signal.throwIfAborted();
  /** Deletes the pod (grace 0) on a signal of its own: also after an abort. Never throws. */
  const deletePod = async () => {
    try {
      using t = timeoutSignal(clock, 30_000);
      await client.deletePod(name, { signal: t.signal });
    } catch (e) {
      log(`pod ${name}: delete failed: ${e instanceof Error ? e.message : e}`);
    }
  };
  let created: V1Pod;
  try {
    created = await createPod(client, pod, { signal: opts.signal, clock, log });
  } catch (e) {
    // A 5xx, a dropped connection or an abort may come after the server created the pod.
    if (mayHaveCreated(e)) await deletePod();
    throw e;
  }

  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(opts.signal.reason);
  opts.signal.addEventListener("abort", onOuterAbort, { once: true });
  const state: State = { pod: created, deleted: false, finished: false };
  const changed = new Notifier(clock);

  const watchTask = (async () => {
    try {
      for await (
        const ev of client.watchPod(name, {
          signal: inner.signal,
          resourceVersion: created.metadata?.resourceVersion,
        })
      ) {
        if (ev.type === "DELETED") state.deleted = true;
        else state.pod = ev.pod;
        changed.notify();
        if (state.deleted) return;
      }
    } catch (e) {
      if (!inner.signal.aborted) state.watchError = e;
    }
    changed.notify();
  })();

  const logTask = streamContainers(client, name, containers, state, changed, {
    signal: inner.signal,
    onLine: opts.onLine,
    log,
    retryMs: opts.logRetryMs ?? 250,
  });

  const started = clock.now();
  let unschedSince: number | undefined;
  const unschedLimit = opts.unschedulableTimeoutMs ?? 120_000;
  let outcome: PodOutcome | undefined;
  let lastNote = "";
  let settleSince: number | undefined;
  try {
    while (!outcome) {
      if (opts.signal.aborted) throw opts.signal.reason;
      if (state.watchError) throw state.watchError;
      const succeeded = state.pod.status?.phase === "Succeeded";
      if (!succeeded && (state.deleted || state.pod.metadata?.deletionTimestamp)) {
        // Deleted (or being deleted), and not by us: an operator, a controller, the eviction
        // API. A pod that already succeeded keeps its success.
        const v = podVerdict(state.pod, mainName);
        const code = v.kind === "done" || v.kind === "failed"
          ? (v.exitCode === 0 ? -1 : v.exitCode)
          : v.kind === "running"
          ? 143
          : -1;
        outcome = { exitCode: code, reason: `pod ${name} was deleted by someone else` };
        break;
      }
      const v = podVerdict(state.pod, mainName);
      if (v.kind === "done" || v.kind === "failed") {
        const phase = state.pod.status?.phase;
        if (
          phase !== "Succeeded" && phase !== "Failed" && containerTerminated(state.pod, mainName)
        ) {
          // The container ended before the pod's phase: give the pod-level reason (Evicted,
          // DeadlineExceeded, deletion) a moment to arrive before deciding.
          settleSince ??= clock.now();
          if (clock.now() - settleSince < (opts.settleMs ?? 3000)) {
            await changed.wait(Math.max(1, (opts.settleMs ?? 3000) - (clock.now() - settleSince)));
            continue;
          }
        }
        outcome = verdictOutcome(v);
        break;
      }
      const now = clock.now();
      if (v.kind === "pending" && v.unschedulable) {
        unschedSince ??= now;
        if (now - unschedSince >= unschedLimit) {
          outcome = { exitCode: -1, reason: v.unschedulable };
          break;
        }
      } else {
        unschedSince = undefined;
      }
      if (now - started >= opts.timeoutMs) {
        outcome = {
          exitCode: -1,
          reason: `pod ${name} did not complete work in time (${
            Math.round(opts.timeoutMs / 1000)
          } s)`,
        };
        break;
      }
      const note = v.kind === "pending"
        ? `pending${v.unschedulable ? ` (${v.unschedulable})` : ""}`
        : "";
      if (note && note !== lastNote) log(`pod ${name}: ${note}`);
      lastNote = note;
      let wait = opts.timeoutMs - (now - started);
      if (unschedSince !== undefined) wait = Math.min(wait, unschedLimit - (now - unschedSince));
      await changed.wait(Math.min(wait, 1000));
    }
    // The pod ended: let the log streams drain (bounded).
    state.finished = true;
    changed.notify();
    const ended = podVerdict(state.pod, mainName);
    if (ended.kind === "done" || ended.kind === "failed" || state.deleted) {
      const timer = new AbortController();
      const drained = await Promise.race([
        logTask.then(() => true),
        clock.delay(opts.drainTimeoutMs ?? 15_000, {
          signal: AbortSignal.any([opts.signal, timer.signal]),
        })
          .then(() => false, () => false),
      ]);
      timer.abort();
      if (!drained) log(`pod ${name}: logs did not drain in time`);
    }
    return outcome;
  } finally {
    state.finished = true;
    inner.abort();
    opts.signal.removeEventListener("abort", onOuterAbort);
    changed.notify();
    await deletePod();
    await Promise.allSettled([watchTask, logTask]);
  }
}

/** Creates `pod`, replacing a leftover of the same (deterministic) name: 409 AlreadyExists. */
async function createPod(
  client: KubeOps,
  pod: V1Pod,
  opts: { signal: AbortSignal; clock: Clock; log: (msg: string) => void },
): Promise<V1Pod> {
  const { signal, clock } = opts;
  const name = pod.metadata!.name!;
  try {
    return await client.createPod(pod, { signal });
  } catch (e) {
    if (!(e instanceof KubeApiError && e.status === 409)) throw e;
    // A leftover from an interrupted attempt.
    opts.log(`pod ${name} already exists; replacing it`);
    await client.deletePod(name, { signal });
    const gone = clock.now() + 30_000;
    while (await client.readPod(name, { signal })) {
      if (clock.now() > gone) throw e;
      await clock.delay(200, { signal });
    }
    return await client.createPod(pod, { signal });
  }
}

/**
 * Whether a failed create may still have created the pod: anything but an answer of the
 * server refusing it (4xx other than 409, whose leftover is not ours to delete).
 */
function mayHaveCreated(e: unknown): boolean {
  if (!(e instanceof KubeApiError) || e.status === undefined) return true;
  return e.status >= 500;
}

function verdictOutcome(v: PodVerdict): PodOutcome {
  if (v.kind === "failed") return { exitCode: v.exitCode, reason: v.reason };
  if (v.kind === "done") {
    return v.reason ? { exitCode: v.exitCode, reason: v.reason } : { exitCode: v.exitCode };
  }
  return { exitCode: -1 };
}

/** A log follow open at least this long (ms) was healthy: its end resets the back-off. */
const HEALTHY_STREAM_MS = 5000;

/**
 * How long to wait (ms) before following a container's log again after the `drops`-th
 * follow in a row ended while the container still ran: at once for the first, then 250 ms
 * doubling up to 5 s (the interval at which a server that closes every stream is asked).
 */
function refollowDelay(drops: number): number {
  return drops <= 1 ? 0 : Math.min(HEALTHY_STREAM_MS, 250 * 2 ** (drops - 2));
}

/**
 * Streams each container's log in order (init containers run one after another, then the
 * main one). Each stream follows from the start; when it ends before the container has
 * terminated (a dropped connection) it follows again at once (backing off per
 * {@link refollowDelay} when drops come in a row), skipping the complete lines already
 * seen; once the container has terminated a last non-follow read drains what the follow
 * missed.
 */
async function streamContainers(
  client: KubeOps,
  pod: string,
  containers: string[],
  state: State,
  changed: Notifier,
  opts: {
    signal: AbortSignal;
    onLine: (line: string, container: string) => void;
    log: (msg: string) => void;
    retryMs: number;
  },
): Promise<void> {
  const clock = changed.clock;
  const started = (c: string) =>
    [
      ...(state.pod.status?.initContainerStatuses ?? []),
      ...(state.pod.status?.containerStatuses ?? []),
    ]
      .some((s) => s.name === c && (s.state?.running || s.state?.terminated));
  for (const c of containers) {
    // Wait for the container to start (or the pod to be over without it).
    while (!started(c)) {
      if (opts.signal.aborted || state.deleted || state.finished) break;
      await changed.wait(1000);
    }
    if (opts.signal.aborted) return;
    if (!started(c)) continue;
    let seen = 0;
    let partial = "";
    let failures = 0;
    let drops = 0; // follows in a row that ended early while the container ran
    while (!opts.signal.aborted) {
      // Once the outcome is known (the pod is over), one last read drains what is left.
      const terminated = containerTerminated(state.pod, c) || state.deleted || state.finished;
      const opened = clock.now();
      try {
        const r = await client.streamLog(pod, c, (line) => opts.onLine(line, c), {
          signal: opts.signal,
          follow: !terminated,
          skipLines: seen,
        });
        seen = r.lines;
        partial = r.partial;
        failures = 0;
        if (terminated) break; // The final, complete read.
        // The follow ended: either the container ended (drain once more) or the stream dropped
        // (follow again at once; after drops in a row, back off so a server closing every
        // stream is not hammered). A wait ends early when the pod changes.
        drops = clock.now() - opened >= HEALTHY_STREAM_MS ? 1 : drops + 1;
        const until = clock.now() + refollowDelay(drops);
        do {
          await changed.wait(until - clock.now()); // also 0: lets a pending status land
        } while (
          !opts.signal.aborted && !containerTerminated(state.pod, c) && !state.deleted &&
          !state.finished && clock.now() < until
        );
      } catch (e) {
        if (opts.signal.aborted) break;
        failures++;
        const gone = e instanceof KubeApiError && e.status === 404;
        if (gone || failures > 20) {
          opts.log(`log ${pod}/${c}: ${e instanceof Error ? e.message : e}`);
          break;
        }
        await changed.wait(opts.retryMs);
      }
    }
    if (partial) opts.onLine(partial, c);
  }
}
