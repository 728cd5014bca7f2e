/**
 * A pod watch that survives: dropped connections resume from the last `resourceVersion`,
 * `410 Gone` relists (reads) the pod, failed reconnections back off (honouring `Retry-After`)
 * up to a bound, and an abort ends it at once, also while client-node is still connecting.
 *
 * @module
 */

import type { V1Pod } from "@kubernetes/client-node";
import { errorInfo, KubeApiError, type RetryPolicy } from "./retry.ts";
import { abortable } from "../toolkit/delay.ts";
import { type Clock, SYSTEM_CLOCK } from "../toolkit/clock.ts";
import { backoffDelay } from "../toolkit/retry.ts";
import { Queue } from "./queue.ts";

/** A watch event on one pod. `type` is ADDED, MODIFIED or DELETED. */
export interface PodEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  pod: V1Pod;
}

/** Tuning of {@link watchPodEvents}. */
export interface WatchOptions {
  signal: AbortSignal;
  /** Resume point (e.g. from the create response). */
  resourceVersion?: string;
  /** Consecutive failed (re)connections tolerated before giving up (default 6). */
  maxReconnects?: number;
  /** Server-side watch timeout per connection in seconds (default 300). */
  timeoutSeconds?: number;
}

/**
 * Opens one watch connection, as client-node's `Watch.watch` does: `onEvent` for each event,
 * then `onDone` once when the stream ends (`null` for a clean close); resolves with the
 * connection's controller once the server answered.
 */
export type WatchConnect = (
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  onEvent: (type: string, obj: unknown) => void,
  onDone: (err: unknown) => void,
) => Promise<AbortController>;

/** A connection that ends cleanly this soon, without an event, was not a normal close (ms). */
const QUICK_CLOSE_MS = 1000;

type WatchMsg =
  | { kind: "event"; type: string; obj: unknown }
  | { kind: "done"; err: unknown };

/**
 * Watches one pod of `namespace`, yielding its events. A dropped connection resumes from the
 * last seen `resourceVersion`; `410 Gone` re-reads the pod with `readPod` (yielding its current
 * state, or DELETED when it no longer exists) and resumes from there. Gives up with
 * {@link KubeApiError} after `maxReconnects` consecutive failed connections (backing off by
 * `policy`, telling `log`).
 */
export async function* watchPodEvents(
  connect: WatchConnect,
  namespace: string,
  name: string,
  opts: WatchOptions & {
    policy: RetryPolicy;
    log: (msg: string) => void;
    readPod: (name: string, opts: { signal: AbortSignal }) => Promise<V1Pod | undefined>;
    /** Time and waits (default: the real clock). */
    clock?: Clock;
  },
): AsyncGenerator<PodEvent> {
  const clock = opts.clock ?? SYSTEM_CLOCK;
  const maxReconnects = opts.maxReconnects ?? 6;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  let rv = opts.resourceVersion;
  let failures = 0;
  while (true) {
    opts.signal.throwIfAborted();
    const q = new Queue<WatchMsg>();
    let ctl: AbortController | undefined;
    let gone = false;
    let lastErr: unknown;
    let gotEvent = false;
    const connectedAt = clock.now();
    try {
      ctl = await abortable(
        connect(
          path,
          {
            fieldSelector: `metadata.name=${name}`,
            resourceVersion: rv,
            allowWatchBookmarks: true,
            timeoutSeconds: opts.timeoutSeconds ?? 300,
          },
          (type, obj) => q.push({ kind: "event", type, obj }),
          (err) => q.push({ kind: "done", err }),
        ),
        opts.signal,
        (late) => late.abort(),
      );
      const onAbort = () => ctl?.abort();
      opts.signal.addEventListener("abort", onAbort, { once: true });
      try {
        while (true) {
          const m = await q.next(opts.signal);
          if (m.kind === "done") {
            lastErr = m.err;
            if (errorInfo(m.err).status === 410) gone = true;
            break;
          }
          const obj = m.obj as { metadata?: { resourceVersion?: string }; code?: number };
          if (m.type === "ERROR") {
            if (obj?.code === 410) gone = true;
            lastErr = obj;
            break;
          }
          gotEvent = true;
          if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (m.type === "BOOKMARK") continue;
          if (m.type === "ADDED" || m.type === "MODIFIED" || m.type === "DELETED") {
            yield { type: m.type, pod: obj as V1Pod };
            if (m.type === "DELETED") return;
          }
        }
      } finally {
        opts.signal.removeEventListener("abort", onAbort);
        ctl?.abort();
      }
    } catch (e) {
      if (opts.signal.aborted) throw opts.signal.reason;
      lastErr = e;
    }
    opts.signal.throwIfAborted();
    if (gone) {
      // Our resourceVersion is too old: relist (read) and continue from the current state.
      const pod = await opts.readPod(name, { signal: opts.signal });
      if (!pod) {
        yield { type: "DELETED", pod: { metadata: { name } } };
        return;
      }
      rv = pod.metadata?.resourceVersion;
      yield { type: "MODIFIED", pod };
      failures = 0;
      continue;
    }
    // client-node ends a watch silent for 30 s with a TimeoutError: an idle pod, not a failure.
    const lasted = clock.now() - connectedAt;
    const clean = lastErr === null || lastErr === undefined;
    if (gotEvent || lasted >= 20_000 || (clean && lasted >= QUICK_CLOSE_MS)) {
      // A normal server-side close (timeout) or a drop after progress: reconnect at once.
      failures = 0;
      continue;
    }
    // A failed connection, or one closed at once without an event (reconnecting at once
    // would hammer the server): back off.
    failures++;
    const info = clean
      ? { ...errorInfo(new Error("the server closed the watch at once")), network: false }
      : errorInfo(lastErr);
    if (
      failures > maxReconnects || (info.status !== undefined && !(
        info.status === 429 || info.status >= 500
      ))
    ) {
      throw new KubeApiError({
        operation: `watch pod ${name}`,
        status: info.status,
        reason: info.reason,
        detail: info.message,
        attempts: failures,
      });
    }
    opts.log(`watch pod ${name}: ${info.message}; reconnecting (${failures}/${maxReconnects})`);
    await clock.delay(
      backoffDelay(failures, { ...opts.policy, jitter: "none" }, info.retryAfterMs),
      { signal: opts.signal },
    );
  }
}
