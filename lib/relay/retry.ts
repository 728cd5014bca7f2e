/**
 * Bounded retries with exponential backoff and jitter, for transient errors only.
 *
 * @module
 */
import { isTransientCode, StoreError, TransientHttpError } from "./store_errors.ts";

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** Total attempts, the first included. Default 4. */
  attempts?: number;
  /** Delay before the second attempt; doubles each time. Default 500 ms. */
  baseDelayMs?: number;
  /** Upper bound of one delay. Default 5000 ms. */
  maxDelayMs?: number;
  /** Aborting stops waiting and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Which errors are worth another attempt. Default {@link isTransientError}. */
  isTransient?: (err: unknown) => boolean;
  /** Told before each new attempt (for logs). */
  onRetry?: (info: { attempt: number; attempts: number; delayMs: number; error: unknown }) => void;
  /** Random source in [0, 1) for the jitter (injectable for tests). Default `Math.random`. */
  random?: () => number;
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

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds, it fails with a non-transient error, or `attempts` are used up
 * (the last error is thrown). Delays grow as `baseDelayMs * 2^(n-1)`, capped at `maxDelayMs`,
 * with "equal jitter" (between half and all of that). An abort during `fn` or a delay ends it
 * with the signal's reason.
 *
 * @example
 * ```ts
 * const body = await withRetry((attempt) => fetchOnce(attempt), { signal, attempts: 4 });
 * ```
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  const base = opts.baseDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 5000;
  const isTransient = opts.isTransient ?? isTransientError;
  const random = opts.random ?? Math.random;
  const { signal } = opts;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (attempt >= attempts || !isTransient(err)) throw err;
      const cap = Math.min(max, base * 2 ** (attempt - 1));
      const delayMs = Math.round(cap / 2 + random() * (cap / 2));
      opts.onRetry?.({ attempt: attempt + 1, attempts, delayMs, error: err });
      await abortableDelay(delayMs, signal);
    }
  }
}
