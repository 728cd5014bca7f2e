/**
 * Time as a seam: {@link Clock} (the current time and abortable waits) and
 * {@link SYSTEM_CLOCK}, the real one. Code that waits or measures takes a `Clock` option so
 * its tests can run on fake time: bounded in time, without sleeping, without real timers.
 *
 * @module
 */

import { delay, type DelayOptions } from "./delay.ts";

/** The current time and abortable waits. */
export interface Clock {
  /** Milliseconds since the epoch (or any fixed origin). */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
  delay(ms: number, opts?: DelayOptions): Promise<void>;
}

/** The real clock: `Date.now` and {@link delay} (timers). */
export const SYSTEM_CLOCK: Clock = { now: () => Date.now(), delay };

/**
 * A signal that aborts with a `TimeoutError` `DOMException` after `ms` on `clock` (or at once
 * with `parent`'s reason when it aborts); disposing it cancels the wait, so no timer outlives
 * its use.
 *
 * @example
 * ```ts
 * import { SYSTEM_CLOCK, timeoutSignal } from "./clock.ts";
 * using t = timeoutSignal(SYSTEM_CLOCK, 30_000);
 * if (t.signal.aborted) throw new Error("not yet");
 * ```
 */
export function timeoutSignal(
  clock: Clock,
  ms: number,
  parent?: AbortSignal,
): { signal: AbortSignal } & Disposable {
  const ctl = new AbortController();
  const cancel = new AbortController();
  const onParent = () => ctl.abort(parent!.reason);
  if (parent?.aborted) ctl.abort(parent.reason);
  else {
    parent?.addEventListener("abort", onParent, { once: true });
    clock.delay(ms, { signal: cancel.signal }).then(
      () => ctl.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")),
      () => {},
    );
  }
  return {
    signal: ctl.signal,
    [Symbol.dispose]() {
      parent?.removeEventListener("abort", onParent);
      cancel.abort();
    },
  };
}
