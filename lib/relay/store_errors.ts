/**
 * Errors of the artifact store client ({@link ArtifactStore}).
 *
 * @module
 */
import { GangplankError } from "../errors/mod.ts";

/** S3 error codes (and HTTP statuses) worth another try: throttling, timeouts, 5xx. */
const TRANSIENT_CODES = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "XMinioServerNotInitialized",
  "OperationAborted",
  "BadGateway",
  "GatewayTimeout",
]);

/** Network-level error codes (node/Deno) worth another try. */
const TRANSIENT_NET_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/** Whether an HTTP status is worth retrying (408, 429, 5xx except 501/505). */
export function isTransientStatus(status: number | undefined): boolean {
  if (status === undefined) return false;
  if (status === 408 || status === 429) return true;
  return status >= 500 && status !== 501 && status !== 505;
}

/** Whether an S3 error code or a network error code is worth retrying. */
export function isTransientCode(code: string | undefined): boolean {
  if (!code) return false;
  return TRANSIENT_CODES.has(code) || TRANSIENT_NET_CODES.has(code);
}

/**
 * An object store operation failed. `code` is the S3 error code (`NoSuchKey`, `AccessDenied`,
 * `SlowDown`, ...) or a network error code (`ECONNREFUSED`); `transient` tells whether trying
 * again may help (what {@link withRetry} goes by).
 */
export class StoreError extends GangplankError {
  /** The operation (`put`, `fetch`, `get`, `stat`, ...). */
  readonly op: string;
  /** The bucket. */
  readonly bucket: string;
  /** The key, unless the operation was on the bucket. */
  readonly key: string | undefined;
  /** The S3 error code or the network error code. */
  readonly code: string;
  /** The HTTP status, when the server answered. */
  readonly status?: number;
  /** Whether trying again may help. */
  readonly transient: boolean;
  /** A failed store operation, described by `init`. */
  constructor(init: StoreErrorInit) {
    const { op, bucket, key, code, message, status } = init;
    super(
      `${op} ${bucket}${key !== undefined ? `/${key}` : ""}: ${code}: ${message}`,
      "cause" in init ? { cause: init.cause } : undefined,
    );
    this.op = op;
    this.bucket = bucket;
    this.key = key;
    this.code = code;
    if (status !== undefined) this.status = status;
    this.transient = init.transient ?? (isTransientStatus(status) || isTransientCode(code));
  }
}

/** What a {@link StoreError} carries. */
export interface StoreErrorInit {
  /** The operation (`put`, `fetch`, `get`, `stat`, ...). */
  op: string;
  /** The bucket. */
  bucket: string;
  /** The key, unless the operation was on the bucket. */
  key?: string;
  /** The S3 error code or the network error code. */
  code: string;
  /** What went wrong. */
  message: string;
  /** The HTTP status, when the server answered. */
  status?: number;
  /** Whether trying again may help (default: from the status and the code). */
  transient?: boolean;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A fetched artifact does not match what the build metadata says (sha256 or size). Nothing
 * was written to the destination. Never retried.
 */
export class IntegrityError extends StoreError {
  constructor(
    /** The artifact's name (meta.json's name, else the key). */
    readonly artifact: string,
    bucket: string,
    key: string,
    /** Which property differs. */
    readonly field: "sha256" | "size",
    readonly expected: string | number,
    readonly actual: string | number,
  ) {
    super({
      op: "fetch",
      bucket,
      key,
      code: "IntegrityError",
      message: `artifact ${artifact}: ${field} mismatch: expected ${expected}, got ${actual}`,
      transient: false,
    });
  }
}

/**
 * An HTTP response with a retryable status (5xx, 429, 408), surfaced by the store's transport
 * before npm:minio sees it; carries the S3 error code parsed from the body when there is one.
 */
export class TransientHttpError extends GangplankError {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(`HTTP ${status} ${code}: ${message}`);
  }
}
