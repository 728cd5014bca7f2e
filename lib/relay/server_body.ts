/**
 * Request-body intake for the relay: decodes aws-chunked bodies, hashes incrementally what must
 * be checked or is cheap (SHA-256 when the client declared one; MD5 when the client sent
 * `Content-MD5`, or for bodies of at most {@link MD5_ETAG_MAX} bytes), checks `Content-MD5`,
 * `x-amz-content-sha256` and the declared length, and hands every payload chunk to a
 * synchronous sink.
 *
 * ETags: S3 documents that an ETag need not be the MD5 of the object (SSE-KMS, multipart). A
 * large body sent without `Content-MD5` gets an opaque, unique-per-write ETag ({@link etagOf}):
 * MD5 runs at about 450 MiB/s on one core here and would bound every upload.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import type { HashSession } from "./server_hash.ts";
import { S3Error } from "./s3_error.ts";
import { AwsChunkedDecoder } from "./server_chunked.ts";
import {
  badDigest,
  type ChecksumAlgorithm,
  checksummer,
  type ChecksumRequest,
  checksumRequest,
} from "./checksums.ts";
import type { AuthSuccess } from "./sigv4.ts";

/** Raised when the client went away before its body was complete. */
export class ClientAbortedError extends S3Error {
  constructor() {
    super(400, "IncompleteBody", "the client closed the connection before the body was complete");
  }
}

/** What {@link receiveBody} learned about the payload. */
export interface BodyResult {
  size: number;
  /** The payload's MD5, when it was computed (see the module doc). */
  md5?: Buffer;
  /** The additional checksum the client asked for (verified when it sent a value). */
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
}

/** Options of {@link receiveBody}. */
export interface BodyOptions {
  /**
   * `false` when `x-amz-checksum-*` headers describe something else than the body (the
   * object a CompleteMultipartUpload makes): they are then not checked against the body.
   */
  bodyChecksum?: boolean;
}

/** Bodies up to this many bytes (declared length) get an MD5 ETag even without Content-MD5. */
export const MD5_ETAG_MAX = 16 << 20;

/**
 * The ETag of a write: the MD5 (hex) when it was computed, else 32 random hex digits plus `-1`.
 * The dash keeps tools that treat a plain 32-hex-digit ETag as an MD5 (rclone, s3cmd, the AWS
 * SDKs' upload checks) from mistaking it for one, as they already do for multipart ETags.
 */
export function etagOf(r: { md5?: Buffer }): string {
  return r.md5 ? r.md5.toString("hex") : `${randomBytes(16).toString("hex")}-1`;
}

/**
 * Reads the whole body of `req`, passing payload bytes to `sink` (synchronously, in order),
 * and verifies digests and length at the end. Rejects with an {@link S3Error} on any mismatch.
 * `hasher` supplies where MD5/SHA-256 are computed (a worker pool for large bodies); the
 * request is paused while the hasher is congested.
 */
export function receiveBody(
  req: IncomingMessage,
  auth: AuthSuccess,
  sink: (chunk: Uint8Array) => void,
  onBytes: (n: number) => void = () => {},
  pre?: Buffer,
  hasher?: (algs: string[]) => HashSession,
  opts: BodyOptions = {},
): Promise<BodyResult> {
  const h = req.headers;
  const declaredSha = auth.payloadHash;
  let wantSha = false;
  let decoder: AwsChunkedDecoder | undefined;
  let expectedLen: number | undefined;
  if (/^[0-9a-f]{64}$/i.test(declaredSha)) wantSha = true;
  else if (declaredSha === "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
    decoder = new AwsChunkedDecoder(auth.streaming);
  } else if (declaredSha === "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") {
    decoder = new AwsChunkedDecoder(auth.streaming, { trailer: true });
  } else if (declaredSha === "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
    decoder = new AwsChunkedDecoder(undefined);
  } else if (declaredSha !== "UNSIGNED-PAYLOAD") {
    return Promise.reject(
      new S3Error(400, "InvalidArgument", "unsupported x-amz-content-sha256 value"),
    );
  }
  if (decoder) {
    const d = h["x-amz-decoded-content-length"];
    if (d !== undefined) expectedLen = Number(d);
  } else if (h["content-length"] !== undefined) expectedLen = Number(h["content-length"]);
  if (expectedLen !== undefined && (!Number.isSafeInteger(expectedLen) || expectedLen < 0)) {
    return Promise.reject(new S3Error(400, "InvalidArgument", "invalid content length"));
  }
  let ckReq: ChecksumRequest | undefined;
  try {
    ckReq = opts.bodyChecksum === false ? undefined : checksumRequest(h);
  } catch (e) {
    return Promise.reject(e);
  }
  if (ckReq?.trailer && !decoder) {
    return Promise.reject(
      new S3Error(400, "InvalidRequest", "x-amz-trailer needs an aws-chunked (streaming) body"),
    );
  }
  const ck = ckReq ? checksummer(ckReq.algorithm) : undefined;
  let md5Want: Buffer | undefined;
  const cmd5 = h["content-md5"];
  if (cmd5 !== undefined) {
    md5Want = Buffer.from(String(cmd5), "base64");
    if (md5Want.length !== 16 || md5Want.toString("base64") !== String(cmd5).trim()) {
      return Promise.reject(
        new S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid."),
      );
    }
  }
  const wantMd5 = md5Want !== undefined || pre !== undefined ||
    (expectedLen !== undefined && expectedLen <= MD5_ETAG_MAX);
  const algs = [...(wantMd5 ? ["md5"] : []), ...(wantSha ? ["sha256"] : [])];
  const hashes = algs.length === 0
    ? inlineHashes([])
    : pre || !hasher
    ? inlineHashes(algs)
    : hasher(algs);
  let size = 0;
  const take = (c: Uint8Array) => {
    size += c.length;
    if (expectedLen !== undefined && size > expectedLen) {
      throw new S3Error(400, "IncompleteBody", "more payload than the declared length");
    }
    sink(c);
    if (algs.length > 0) hashes.update(c);
    ck?.update(c);
  };
  const finish = async (): Promise<BodyResult> => {
    decoder?.end();
    if (expectedLen !== undefined && size !== expectedLen) {
      throw new S3Error(400, "IncompleteBody", `received ${size} bytes, expected ${expectedLen}`);
    }
    const out = await hashes.digest();
    const md5Hex = wantMd5 ? out[0] : undefined;
    const shaHex = wantSha ? out[wantMd5 ? 1 : 0] : undefined;
    const digest = md5Hex !== undefined ? Buffer.from(md5Hex, "hex") : undefined;
    if (md5Want && !md5Want.equals(digest!)) {
      throw new S3Error(
        400,
        "BadDigest",
        "The Content-MD5 you specified did not match what we received.",
      );
    }
    if (wantSha && shaHex !== declaredSha.toLowerCase()) {
      throw new S3Error(
        400,
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    let checksum: BodyResult["checksum"];
    if (ckReq && ck) {
      const value = ck.digest();
      const expected = ckReq.expected ?? decoder?.trailers.get(ckReq.trailer ?? "");
      if (ckReq.trailer && expected === undefined) {
        throw new S3Error(400, "MalformedTrailerError", `the ${ckReq.trailer} trailer is missing`);
      }
      if (expected !== undefined && expected !== value) throw badDigest(ckReq.algorithm);
      checksum = { algorithm: ckReq.algorithm, value };
    }
    return { size, md5: digest, checksum };
  };

  if (pre) {
    // Body already read (and its signature checked) by the caller.
    try {
      onBytes(pre.length);
      if (decoder) decoder.push(pre, take);
      else take(pre);
      return finish();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  sendContinue(req);
  return new Promise<BodyResult>((resolve, reject) => {
    let settled = false;
    const done = (err: unknown, result?: BodyResult) => {
      if (settled) return;
      settled = true;
      req.off("data", onData);
      if (err) {
        hashes.drop();
        req.resume(); // discard the rest; the caller closes the connection
        reject(err);
      } else resolve(result!);
    };
    const onData = (chunk: Buffer) => {
      if (settled) return;
      onBytes(chunk.length);
      gcNudge(chunk.length);
      try {
        if (decoder) decoder.push(chunk, take);
        else take(chunk);
      } catch (e) {
        done(e);
        return;
      }
      if (hashes.congested) {
        req.pause();
        hashes.onDrain(() => {
          if (!settled) req.resume();
        });
      }
    };
    req.on("data", onData);
    req.on("error", () => done(new ClientAbortedError()));
    req.on("close", () => {
      if (!req.complete) done(new ClientAbortedError());
    });
    req.on("end", () => {
      if (settled) return;
      finish().then((r) => done(undefined, r), (e) => done(e));
    });
  });
}

function inlineHashes(algs: string[]): HashSession {
  const hs = algs.map((a) => createHash(a));
  return {
    congested: false,
    update: (c) => hs.forEach((x) => x.update(c)),
    onDrain: (cb) => cb(),
    digest: () => Promise.resolve(hs.map((x) => x.digest("hex"))),
    drop: () => {},
  };
}

const nudgeHolder: { sink?: unknown } = {};

/**
 * Allocates short-lived heap garbage in proportion to `bytes` of off-heap buffers just used.
 * Request and file chunks are off-heap buffers behind tiny on-heap objects, so V8's young
 * generation rarely fills and their memory is reclaimed late (peak RSS > 300 MiB for a 1 GiB
 * upload). As much on-heap garbage as off-heap data makes the scavenger run every few tens
 * of MiB and keeps peak RSS near 150 MiB, at no measurable cost. That garbage also makes V8
 * grow its young generation to the maximum (64 MiB of semi-spaces, +70 MiB RSS after a few
 * GiB): the `relay` task caps it with `--v8-flags=--max-semi-space-size=4` (peak ~115 MiB,
 * same throughput); a process embedding the relay should do the same.
 */
export function gcNudge(bytes: number): void {
  nudgeHolder.sink = new Array(bytes >> 3);
}

/** Reads a small body (XML requests) into memory, refusing more than `limit` bytes. */
export async function receiveSmallBody(
  req: IncomingMessage,
  auth: AuthSuccess,
  limit = 4 << 20,
  pre?: Buffer,
  opts: BodyOptions = {},
): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  await receiveBody(
    req,
    auth,
    (c) => {
      n += c.length;
      if (n > limit) throw new S3Error(400, "MaxMessageLengthExceeded", "request body too large");
      parts.push(Buffer.from(c));
    },
    undefined,
    pre,
    undefined,
    opts,
  );
  return Buffer.concat(parts);
}

const continuers = new WeakMap<IncomingMessage, () => void>();

/**
 * Holds back the `100 Continue` a request asked for (`Expect: 100-continue`) until the relay
 * starts reading its body, i.e. after the signature, the grant and the key were checked: a
 * refused client never gets to send its body.
 */
export function deferContinue(req: IncomingMessage, res: ServerResponse): void {
  continuers.set(req, () => {
    continuers.delete(req);
    if (!res.headersSent) res.writeContinue();
  });
}

/** Sends the held-back `100 Continue` of `req`, if any (see {@link deferContinue}). */
export function sendContinue(req: IncomingMessage): void {
  continuers.get(req)?.();
}

/** Limits for bodies read before their signature can be checked. */
export interface UnverifiedBodyLimits {
  /** Largest body read (default 1 MiB). */
  maxBytes: number;
  /** Time for the whole body to arrive (default 10 s). */
  timeoutMs: number;
  /** Most such bodies read at once; more get 503 SlowDown (default 32). */
  maxConcurrent: number;
}

/** Default {@link UnverifiedBodyLimits}. */
export const UNVERIFIED_BODY_LIMITS: UnverifiedBodyLimits = {
  maxBytes: 1 << 20,
  timeoutMs: 10_000,
  maxConcurrent: 32,
};

/**
 * Reads bodies whose signature can only be checked against their hash (signed without an
 * `x-amz-content-sha256` header, as curl before 8 does), bounded in size, time and number.
 */
export class UnverifiedBodies {
  #active = 0;
  constructor(readonly limits: UnverifiedBodyLimits = UNVERIFIED_BODY_LIMITS) {}

  /** The whole body, or an S3Error (403 too large / too slow, 503 too many at once). */
  async read(req: IncomingMessage): Promise<Buffer> {
    const { maxBytes, timeoutMs, maxConcurrent } = this.limits;
    const refuse = (why: string) =>
      new S3Error(
        403,
        "SignatureDoesNotMatch",
        `the signature does not match; ${why} (send an x-amz-content-sha256 header: the body's ` +
          "SHA-256 or UNSIGNED-PAYLOAD)",
      );
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > maxBytes) {
      throw refuse(`a body over ${maxBytes} bytes cannot be checked against the signature`);
    }
    if (this.#active >= maxConcurrent) {
      throw new S3Error(503, "SlowDown", "too many requests with unverified bodies; retry later");
    }
    this.#active++;
    try {
      const r = await readRawBody(req, maxBytes, timeoutMs);
      if (r === "too-large") {
        throw refuse(`a body over ${maxBytes} bytes cannot be checked against the signature`);
      }
      if (r === "timeout") throw refuse(`the body did not arrive within ${timeoutMs} ms`);
      return r;
    } finally {
      this.#active--;
    }
  }
}

/**
 * Reads a raw body of at most `limit` bytes within `timeoutMs` (no checks), for deferred
 * signature checks. Stops reading as soon as the body proves longer or slower.
 */
function readRawBody(
  req: IncomingMessage,
  limit: number,
  timeoutMs: number,
): Promise<Buffer | "too-large" | "timeout"> {
  sendContinue(req);
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    let settled = false;
    const stop = (r: "too-large" | "timeout") => {
      settled = true;
      clearTimeout(timer);
      req.off("data", onData);
      req.pause();
      resolve(r);
    };
    const timer = setTimeout(() => stop("timeout"), timeoutMs);
    const onData = (c: Buffer) => {
      n += c.length;
      if (n <= limit) parts.push(c);
      else stop("too-large");
    };
    req.on("data", onData);
    req.on("end", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(Buffer.concat(parts));
    });
    const aborted = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new ClientAbortedError());
    };
    req.on("error", aborted);
    req.on("close", () => {
      if (!req.complete) aborted();
    });
  });
}
