/**
 * Bounded retries for Kubernetes API calls: 429 and 5xx (and connection errors) are retried
 * with exponential backoff honouring `Retry-After`; anything else fails at once. Errors that
 * survive the retries become {@link KubeApiError} carrying the server's own status.
 *
 * @module
 */

import { GangplankError } from "../errors/mod.ts";

/** An API call that failed (after retries where retrying made sense). */
export class KubeApiError extends GangplankError {
  constructor(
    /** What was attempted, e.g. `create pod gp-x-w0-build`. */
    readonly operation: string,
    /** HTTP status, when the server answered. */
    readonly status: number | undefined,
    /** The `Status.reason` of the answer (`NotFound`, `AlreadyExists`, `TooManyRequests`...). */
    readonly reason: string | undefined,
    /** The server's message (or the network error's). */
    readonly detail: string,
    /** Attempts made. */
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(
      `kubernetes API: ${operation} failed` + (status ? ` (HTTP ${status}` : " (") +
        (reason ? ` ${reason}` : "") + `): ${detail}` +
        (attempts > 1 ? ` [after ${attempts} attempts]` : ""),
      options,
    );
  }
}

/** Retry tuning. */
export interface RetryPolicy {
  /** Total attempts (default 6). */
  attempts: number;
  /** First backoff in ms (default 250), doubled each time. */
  baseDelayMs: number;
  /** Cap of one backoff, including `Retry-After` (default 5000). */
  maxDelayMs: number;
}

/** Default {@link RetryPolicy}. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 250, maxDelayMs: 5000 };

/** What we could learn from a thrown client-node error. */
export interface ErrorInfo {
  status?: number;
  reason?: string;
  message: string;
  retryAfterMs?: number;
  /** True for connection-level failures (no HTTP answer). */
  network: boolean;
}

/** Extracts status, reason, message and Retry-After from a client-node error. */
export function errorInfo(err: unknown): ErrorInfo {
  const e = err as {
    code?: unknown;
    statusCode?: unknown;
    body?: unknown;
    headers?: Record<string, string>;
    message?: string;
    cause?: { code?: string; message?: string };
  };
  const status = typeof e?.code === "number"
    ? e.code
    : typeof e?.statusCode === "number"
    ? e.statusCode
    : undefined;
  let body: { reason?: string; message?: string } | undefined;
  if (typeof e?.body === "string") {
    try {
      body = JSON.parse(e.body);
    } catch { /* not JSON */ }
  } else if (e?.body && typeof e.body === "object") {
    body = e.body as typeof body;
  }
  let retryAfterMs: number | undefined;
  const ra = e?.headers?.["retry-after"] ?? e?.headers?.["Retry-After"];
  if (ra !== undefined && /^\d+$/.test(String(ra).trim())) retryAfterMs = Number(ra) * 1000;
  const message = body?.message ??
    (status === undefined
      ? (e?.cause?.message ?? e?.message ?? String(err))
      : (e?.message ?? String(err)).split("\n")[0]);
  return {
    status,
    reason: body?.reason,
    message,
    retryAfterMs,
    network: status === undefined && !(err instanceof GangplankError) &&
      !(err instanceof DOMException && err.name === "AbortError"),
  };
}

/** True when a failure is worth retrying (429, 5xx, connection errors). */
export function retryable(info: ErrorInfo): boolean {
  if (info.status !== undefined) return info.status === 429 || info.status >= 500;
  return info.network;
}

/** Sleeps `ms`, rejecting with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `fn` with bounded retries. Non-retryable failures and the last retryable one become a
 * {@link KubeApiError}; an abort rethrows the signal's reason.
 */
export async function withKubeRetry<T>(
  operation: string,
  fn: () => Promise<T>,
  opts: { signal: AbortSignal; policy?: RetryPolicy; onRetry?: (msg: string) => void },
): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY;
  let delay = policy.baseDelayMs;
  for (let attempt = 1;; attempt++) {
    opts.signal.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      if (opts.signal.aborted) throw opts.signal.reason;
      if (err instanceof KubeApiError) throw err;
      const info = errorInfo(err);
      if (!retryable(info) || attempt >= policy.attempts) {
        throw new KubeApiError(operation, info.status, info.reason, info.message, attempt, {
          cause: err,
        });
      }
      const wait = Math.min(policy.maxDelayMs, info.retryAfterMs ?? delay);
      opts.onRetry?.(
        `${operation}: ${info.status ? `HTTP ${info.status}` : info.message}; retry ${attempt}/${
          policy.attempts - 1
        } in ${wait} ms`,
      );
      await sleep(wait, opts.signal);
      delay = Math.min(policy.maxDelayMs, delay * 2);
    }
  }
}
