/**
 * Abortable timing: {@link delay} and {@link abortable}, after std's `@std/async`.
 *
 * @module
 */

/** Options of {@link delay}. */
export interface DelayOptions {
  /** Aborting ends the wait at once, rejecting with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Resolves after `ms`, or rejects with the signal's reason as soon as it aborts (at once when
 * it already has).
 *
 * @example
 * ```ts
 * import { delay } from "./delay.ts";
 * const ctl = new AbortController();
 * const waiting = delay(60_000, { signal: ctl.signal });
 * ctl.abort(new Error("stop"));
 * await waiting.then(() => { throw new Error("not aborted"); }, () => {});
 * ```
 */
export function delay(ms: number, opts: DelayOptions = {}): Promise<void> {
  const { signal } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Waits `ms` or less: resolves early, never rejecting, as soon as `signal` aborts, so a loop
 * that polls can check the signal right after.
 *
 * @example
 * ```ts
 * import { pause } from "./delay.ts";
 * const signal = AbortSignal.abort();
 * await pause(60_000, signal); // returns at once
 * ```
 */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, { signal }).catch(() => {});
}

/**
 * `p`, or a rejection with the signal's reason as soon as `signal` aborts (`p` keeps running:
 * abort the work itself through the same signal where it takes one). `late` receives what `p`
 * resolves to after the abort, to release it (a connection that could not take the signal).
 *
 * @example
 * ```ts
 * import { abortable } from "./delay.ts";
 * const never = new Promise<void>(() => {});
 * await abortable(never, AbortSignal.abort()).then(() => { throw new Error("resolved"); }, () => {});
 * ```
 */
export function abortable<T>(
  p: Promise<T>,
  signal: AbortSignal,
  late?: (value: T) => void,
): Promise<T> {
  const release = () => late && p.then(late, () => {});
  if (signal.aborted) {
    release();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      release();
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
