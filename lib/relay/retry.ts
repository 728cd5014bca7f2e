/**
 * Which store errors are worth another attempt, and {@link withRetry}: lib/toolkit's `retry`
 * with that rule and the store's defaults.
 *
 * @module
 */
import { retry, type RetryOptions as ToolkitRetryOptions } from "../toolkit/retry.ts";
import { isTransientCode, StoreError, TransientHttpError } from "./store_errors.ts";

/** Options of {@link withRetry}: lib/toolkit's, `isTransient` naming the retry rule. */
export interface RetryOptions extends Omit<ToolkitRetryOptions, "isRetryable" | "retryAfterMs"> {
  /** Which errors are worth another attempt. Default {@link isTransientError}. */
  isTransient?: (err: unknown) => boolean;
}

/**
 * Whether an error is transient: a {@link StoreError} marked so, a retryable HTTP status, or a
 * connection-level failure (reset, refused, timeout, broken pipe). Aborts and 4xx errors
 * (AccessDenied, NoSuchKey), integrity errors and programming errors are not.
 */
export function isTransientError(err: unknown): boolean {
  if (err instanceof StoreError) return err.transient;
  if (err instanceof TransientHttpError) return true;
  if (err instanceof Error && err.name === "AbortError") return false;
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (
      e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.ConnectionRefused ||
      e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.TimedOut ||
      e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.UnexpectedEof
    ) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && isTransientCode(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Runs `fn` until it succeeds, it fails with a non-transient error, or `attempts` (default 4)
 * are used up (the last error is thrown). Delays grow as `baseDelayMs * 2^(n-1)` (default
 * 500 ms), capped at `maxDelayMs` (default 5000 ms), with "equal jitter" (between half and all
 * of that). An abort during `fn` or a delay ends it with the signal's reason.
 *
 * @example
 * ```ts
 * import { withRetry } from "./retry.ts";
 * const body = await withRetry(() => Promise.resolve("ok"), { attempts: 4 });
 * if (body !== "ok") throw new Error("withRetry");
 * ```
 */
export function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const { isTransient = isTransientError, ...rest } = opts;
  return retry(fn, { ...rest, isRetryable: isTransient });
}
