/**
 * Small abort-aware timing helpers shared by the coordinator and the worker.
 *
 * @module
 */

/**
 * Waits `ms`, or less: resolves early (never rejects) as soon as `signal` aborts, so a loop
 * that polls with it can check the signal right after.
 *
 * @example
 * ```ts
 * while (!signal.aborted && !(await ready())) await abortableSleep(1000, signal);
 * ```
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
