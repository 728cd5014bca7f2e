/**
 * Bounded retries with exponential backoff, optional jitter and `Retry-After`, after std's
 * `@std/async` `retry`. Every backoff loop of the project goes through {@link retry} or, where
 * the loop is not a plain retry (a watch that reconnects), through {@link backoffDelay}.
 *
 * @module
 */

import { delay } from "./delay.ts";
import type { Clock } from "./clock.ts";

/** How the delays grow. */
export interface BackoffOptions {
  /** Delay before the second attempt; doubles each time. Default 500 ms. */
  baseDelayMs?: number;
  /** Upper bound of one delay, `Retry-After` included. Default 5000 ms. */
  maxDelayMs?: number;
  /**
   * `"equal"` (default): a random delay between half and all of the exponential one, so
   * parallel clients spread out; `"none"`: exactly the exponential delay.
   */
  jitter?: "equal" | "none";
  /** Random source in [0, 1) for the jitter (injectable for tests). Default `Math.random`. */
  random?: () => number;
}

/** What {@link RetryOptions.onRetry} is told before each new attempt. */
export interface RetryInfo {
  /** The attempt about to start (2 for the first retry). */
  attempt: number;
  attempts: number;
  delayMs: number;
  error: unknown;
}

/** Options of {@link retry}. */
export interface RetryOptions extends BackoffOptions {
  /** Total attempts, the first included. Default 4. */
  attempts?: number;
  /** Aborting stops waiting and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Which errors are worth another attempt. Default: all. */
  isRetryable?: (err: unknown) => boolean;
  /** The server's `Retry-After` for an error, in ms, if it sent one: used instead of backoff. */
  retryAfterMs?: (err: unknown) => number | undefined;
  /** Told before each new attempt (for logs). */
  onRetry?: (info: RetryInfo) => void;
  /** Waits between attempts on this clock (default: real timers; tests pass a fake one). */
  clock?: Clock;
}

/**
 * The delay before attempt `failures + 1` after `failures` failed ones: `retryAfterMs` when
 * given, otherwise `baseDelayMs * 2^(failures-1)` with the chosen jitter; never more than
 * `maxDelayMs`.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./retry.ts";
 * if (backoffDelay(3, { baseDelayMs: 100, jitter: "none" }) !== 400) throw new Error();
 * if (backoffDelay(1, { maxDelayMs: 2000 }, 9000) !== 2000) throw new Error();
 * ```
 */
export function backoffDelay(
  failures: number,
  opts: BackoffOptions = {},
  retryAfterMs?: number,
): number {
  const max = opts.maxDelayMs ?? 5000;
  if (retryAfterMs !== undefined) return Math.min(max, retryAfterMs);
  const cap = Math.min(max, (opts.baseDelayMs ?? 500) * 2 ** (failures - 1));
  if (opts.jitter === "none") return cap;
  return Math.round(cap / 2 + (opts.random ?? Math.random)() * (cap / 2));
}

/**
 * Runs `fn` until it succeeds, it fails with an error `isRetryable` refuses, or `attempts`
 * are used up; the last error is thrown as it is. An abort during `fn` or a delay ends it with
 * the signal's reason.
 *
 * @example
 * ```ts
 * import { retry } from "./retry.ts";
 * let calls = 0;
 * const v = await retry(() => ++calls < 3 ? Promise.reject(new Error("busy")) : Promise.resolve(calls), {
 *   baseDelayMs: 1,
 * });
 * if (v !== 3) throw new Error("retried");
 * ```
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  const { signal } = opts;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (attempt >= attempts || !(opts.isRetryable?.(err) ?? true)) throw err;
      const delayMs = backoffDelay(attempt, opts, opts.retryAfterMs?.(err));
      opts.onRetry?.({ attempt: attempt + 1, attempts, delayMs, error: err });
      await (opts.clock ? opts.clock.delay(delayMs, { signal }) : delay(delayMs, { signal }));
    }
  }
}
