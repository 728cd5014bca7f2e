/**
 * Bounded retries for Kubernetes API calls: 429 and 5xx (and connection errors) are retried
 * with exponential backoff honouring `Retry-After`; anything else fails at once. Errors that
 * survive the retries become {@link KubeApiError} carrying the server's own status.
 *
 * @module
 */

import { GangplankError } from "../errors/mod.ts";
import { retry } from "../toolkit/retry.ts";
import type { Clock } from "../toolkit/clock.ts";

/** What a {@link KubeApiError} carries. */
export interface KubeApiErrorInit {
  /** What was attempted, e.g. `create pod gp-x-w0-build`. */
  operation: string;
  /** HTTP status, when the server answered. */
  status?: number;
  /** The `Status.reason` of the answer (`NotFound`, `AlreadyExists`, `TooManyRequests`...). */
  reason?: string;
  /** The server's message (or the network error's). */
  detail: string;
  /** Attempts made (default 1). */
  attempts?: number;
  /** The underlying error. */
  cause?: unknown;
}

/** An API call that failed (after retries where retrying made sense). */
export class KubeApiError extends GangplankError {
  /** What was attempted, e.g. `create pod gp-x-w0-build`. */
  readonly operation: string;
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The `Status.reason` of the answer (`NotFound`, `AlreadyExists`, `TooManyRequests`...). */
  readonly reason: string | undefined;
  /** The server's message (or the network error's). */
  readonly detail: string;
  /** Attempts made. */
  readonly attempts: number;
  /** A failed call, described by `init`. */
  constructor(init: KubeApiErrorInit) {
    const { operation, status, reason, detail, attempts = 1 } = init;
    super(
      `kubernetes API: ${operation} failed` + (status ? ` (HTTP ${status}` : " (") +
        (reason ? ` ${reason}` : "") + `): ${detail}` +
        (attempts > 1 ? ` [after ${attempts} attempts]` : ""),
      "cause" in init ? { cause: init.cause } : undefined,
    );
    this.operation = operation;
    this.status = status;
    this.reason = reason;
    this.detail = detail;
    this.attempts = attempts;
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

/**
 * Runs `fn` with bounded retries (lib/toolkit's `retry`: exponential backoff without jitter,
 * honouring `Retry-After`). Non-retryable failures and the last retryable one become a
 * {@link KubeApiError}; an abort rethrows the signal's reason.
 */
export async function withKubeRetry<T>(
  operation: string,
  fn: () => Promise<T>,
  opts: {
    signal: AbortSignal;
    policy?: RetryPolicy;
    onRetry?: (msg: string) => void;
    /** Waits between attempts on this clock (default: real timers). */
    clock?: Clock;
  },
): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY;
  let attempts = 0;
  try {
    return await retry(() => (attempts++, fn()), {
      attempts: policy.attempts,
      baseDelayMs: policy.baseDelayMs,
      maxDelayMs: policy.maxDelayMs,
      jitter: "none",
      signal: opts.signal,
      clock: opts.clock,
      isRetryable: (err) => !(err instanceof KubeApiError) && retryable(errorInfo(err)),
      retryAfterMs: (err) => errorInfo(err).retryAfterMs,
      onRetry: ({ attempt, delayMs, error }) => {
        const info = errorInfo(error);
        opts.onRetry?.(
          `${operation}: ${info.status ? `HTTP ${info.status}` : info.message}; retry ${
            attempt - 1
          }/${policy.attempts - 1} in ${delayMs} ms`,
        );
      },
    });
  } catch (err) {
    if (opts.signal.aborted || err instanceof KubeApiError) throw err;
    const info = errorInfo(err);
    throw new KubeApiError({
      operation,
      status: info.status,
      reason: info.reason,
      detail: info.message,
      attempts,
      cause: err,
    });
  }
}
