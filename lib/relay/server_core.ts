/**
 * What the relay's request handlers share: the request context, the relay's state, S3
 * response helpers, and request-body intake into files.
 *
 * @module
 */

import type * as http from "node:http";
import * as fs from "node:fs";
import type { FsStore, ObjectMeta } from "./fs_store.ts";
import { S3Error } from "./s3_error.ts";
import { writeFileAtomicSync } from "../toolkit/fs.ts";
import type { HashPool } from "./server_hash.ts";
import type { FileHasher } from "./file_hasher.ts";
import { type AuthSuccess, parseQuery, safeDecode } from "./sigv4.ts";
import { type BodyResult, receiveBody } from "./server_body.ts";
import { assertLive, type Principal } from "./server_access.ts";

/** Smallest allowed size of a multipart part other than the last (S3: 5 MiB). */
export const MIN_PART = 5 * 1024 * 1024;
/** Standard headers stored with an object and sent back on GET/HEAD. */
export const STORED_HEADERS = [
  "content-encoding",
  "content-disposition",
  "content-language",
  "cache-control",
  "expires",
];
/** The owner reported in listings. */
export const OWNER = { ID: "gangplank", DisplayName: "gangplank" };

/** One request being handled. */
export interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  requestId: string;
  resource: string;
  query: Map<string, string>;
  auth: AuthSuccess;
  /** Who signed the request (root or a scoped credential). */
  principal: Principal;
  /** The body, when it had to be read before the signature could be checked. */
  pre?: Buffer;
  bucket?: string;
  key?: string;
  /** The relay ignores write conditions (`RelayOptions.ignoreConditionalWrites`). */
  ignoreConditions?: boolean;
}

/** The relay's state, shared by all handlers. */
export interface RelayCore {
  store: FsStore;
  stats: { bytesIn: number; bytesOut: number };
  hashPool: HashPool;
  /** Hashes whole objects where they lie (`server_digest.ts`). */
  fileHasher: FileHasher;
  /** Those hashes in progress, by object and file identity: concurrent asks share one. */
  hashing: Map<string, Promise<string>>;
  /** Uploads with a part being appended to their assembly file right now. */
  appending: Set<string>;
  region: string;
  log: (msg: string) => void;
}

/** RFC 7231 date (Last-Modified). */
export function httpDate(d: Date): string {
  return d.toUTCString();
}

/** ISO 8601 with milliseconds zeroed, as S3 lists dates. */
export function isoDate(d: Date): string {
  return d.toISOString().slice(0, -5) + ".000Z"; // whole seconds, as Last-Modified has them
}

/** An ETag as sent on the wire (quoted). */
export function quote(etag: string): string {
  return `"${etag}"`;
}

/** An ETag without its quotes (plain or XML-escaped). */
export function unquote(etag: string): string {
  return etag.trim().replace(/^&quot;|&quot;$/g, "").replace(/^"|"$/g, "");
}

/** True if the request carries `If-Match` or `If-None-Match` (a conditional write). */
export function isConditional(req: http.IncomingMessage): boolean {
  return req.headers["if-match"] !== undefined || req.headers["if-none-match"] !== undefined;
}

/** True if the request carries `If-None-Match: *` (it may only create the object). */
export function isCreate(req: http.IncomingMessage): boolean {
  return String(req.headers["if-none-match"] ?? "").trim() === "*";
}

function preconditionFailed(): S3Error {
  return new S3Error(
    412,
    "PreconditionFailed",
    "At least one of the preconditions you specified did not hold",
  );
}

/** True if one of the comma-separated ETags of an `If-Match`-style header names `etag`. */
export function etagListMatches(header: string, etag: string): boolean {
  return header.split(",").some((t) => t.trim() === "*" || unquote(t) === etag);
}

/**
 * Checks, right before a write lands, that its credential is still valid and that its
 * `If-None-Match: *` / `If-Match: <etag>` conditions hold against the object now at
 * `bucket/key` (412 PreconditionFailed otherwise). Callers run this and the rename that
 * follows with no `await` in between: the relay handles requests on one thread, so check and
 * rename are atomic with respect to every other writer of the key.
 */
export function writePreconditions(
  store: FsStore,
  ctx: Ctx,
  bucket: string,
  key: string,
  opts: { ifNoneMatch?: boolean } = {},
): void {
  assertLive(ctx.principal);
  if (ctx.ignoreConditions) return;
  const inm = ctx.req.headers["if-none-match"];
  const im = ctx.req.headers["if-match"];
  if (inm === undefined && im === undefined) return;
  if (inm !== undefined && opts.ifNoneMatch === false) {
    throw new S3Error(501, "NotImplemented", "If-None-Match is not supported on this request");
  }
  if (inm !== undefined && String(inm).trim() !== "*") {
    throw new S3Error(
      501,
      "NotImplemented",
      "A header you provided implies functionality that is not implemented: If-None-Match " +
        "on writes accepts only '*'",
    );
  }
  let etag: string | undefined;
  try {
    etag = store.statObject(bucket, key).meta.etag;
  } catch (e) {
    if (!(e instanceof S3Error) || e.code !== "NoSuchKey") throw e;
  }
  if (inm !== undefined && etag !== undefined) throw preconditionFailed();
  if (im !== undefined && (etag === undefined || !etagListMatches(String(im), etag))) {
    throw preconditionFailed();
  }
}

/** Sends an XML response (no body for HEAD). */
export function sendXml(ctx: Ctx, status: number, xml: string, extra: Record<string, string> = {}) {
  const body = Buffer.from(xml);
  ctx.res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": String(body.length),
    "x-amz-request-id": ctx.requestId,
    ...extra,
  });
  ctx.res.end(ctx.req.method === "HEAD" ? undefined : body);
}

/** Sends a response without body. */
export function sendEmpty(ctx: Ctx, status: number, extra: Record<string, string | number> = {}) {
  ctx.res.writeHead(status, { "x-amz-request-id": ctx.requestId, ...extra });
  ctx.res.end();
}

/** Response headers naming a stored checksum (`x-amz-checksum-<alg>`, `x-amz-checksum-type`). */
export function checksumHeaders(c: ObjectMeta["checksum"]): Record<string, string> {
  if (!c) return {};
  return {
    [`x-amz-checksum-${c.algorithm}`]: c.value,
    "x-amz-checksum-type": c.type ?? "FULL_OBJECT",
  };
}

/**
 * The source of a copy (`x-amz-copy-source: [/]bucket/key[?versionId=null]`, percent-encoded).
 * A version other than `null` does not exist in the relay's unversioned buckets.
 */
export function copySource(req: http.IncomingMessage): { bucket: string; key: string } {
  const src = String(req.headers["x-amz-copy-source"]);
  const q = src.indexOf("?");
  const srcPath = safeDecode(wireText(q < 0 ? src : src.slice(0, q)));
  if (srcPath === undefined) throw new S3Error(400, "InvalidArgument", "bad x-amz-copy-source");
  const version = q < 0 ? undefined : new URLSearchParams(src.slice(q + 1)).get("versionId");
  if (version !== undefined && version !== null && version !== "null") {
    throw new S3Error(400, "InvalidArgument", "Invalid version id specified");
  }
  const trimmed = srcPath.replace(/^\//, "");
  const s = trimmed.indexOf("/");
  if (s <= 0 || s === trimmed.length - 1) {
    throw new S3Error(400, "InvalidArgument", "x-amz-copy-source must be <bucket>/<key>");
  }
  return { bucket: trimmed.slice(0, s), key: trimmed.slice(s + 1) };
}

/** The error for operations the relay does not offer. */
export function notImplemented(): S3Error {
  return new S3Error(501, "NotImplemented", "this operation is not implemented by the relay");
}

/**
 * A header value as the client meant it. node:http hands header bytes over as latin1 (one char
 * per byte) and sends strings as UTF-8: bytes that form valid UTF-8 (non-ASCII metadata, a
 * `Content-Disposition` filename) are decoded as UTF-8, so they go back out as the same bytes.
 */
export function wireText(v: string): string {
  // deno-lint-ignore no-control-regex
  if (!/[^\x00-\x7f]/.test(v)) return v;
  const bytes = Buffer.from(v, "latin1");
  const text = bytes.toString("utf8");
  return Buffer.from(text, "utf8").equals(bytes) ? text : v;
}

/**
 * A stored header value as sent back. node:http writes header strings as latin1 (which is how
 * node, Python and Go clients read header bytes back): text within latin1 goes out as is;
 * text with characters beyond U+00FF, which latin1 cannot carry, goes out as an RFC 2047
 * encoded-word (`=?UTF-8?B?...?=`), the form S3 documents for non-ASCII metadata.
 */
export function toWire(v: string): string {
  // deno-lint-ignore no-control-regex
  if (!/[^\x00-\xff]/.test(v)) return v;
  return `=?UTF-8?B?${Buffer.from(v, "utf8").toString("base64")}?=`;
}

/** User metadata, stored headers, content type and tags from request headers. */
export function metaFromHeaders(req: http.IncomingMessage) {
  const userMeta: Record<string, string> = {};
  const headers: Record<string, string> = {};
  let metaSize = 0;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    const value = wireText(req.rawHeaders[i + 1]);
    if (name.startsWith("x-amz-meta-")) {
      const k = name.slice("x-amz-meta-".length);
      userMeta[k] = k in userMeta ? `${userMeta[k]},${value}` : value;
      metaSize += k.length + value.length;
    } else if (name === "content-encoding") {
      // aws-chunked is the transfer framing of streaming uploads, not the object's encoding.
      const v = value.split(",").map((x) => x.trim()).filter((x) => x && x !== "aws-chunked");
      if (v.length > 0) headers[name] = v.join(", ");
    } else if (STORED_HEADERS.includes(name)) headers[name] = value;
  }
  if (metaSize > 8192) {
    throw new S3Error(400, "MetadataTooLarge", "user metadata exceeds 8 KiB");
  }
  const ct = req.headers["content-type"];
  return {
    userMeta,
    headers,
    contentType: typeof ct === "string" && ct !== "" ? ct : undefined,
    tags: parseTagHeader(req.headers["x-amz-tagging"]),
  };
}

/** Tags from an `x-amz-tagging` header (URL query form). */
export function parseTagHeader(
  v: string | string[] | undefined,
): Record<string, string> | undefined {
  if (typeof v !== "string" || v === "") return undefined;
  const pairs = parseQuery(v);
  if (!pairs) throw new S3Error(400, "InvalidTag", "malformed x-amz-tagging header");
  return checkTags(pairs);
}

/** Validates tags the way S3 does (at most 10, key <= 128, value <= 256). */
export function checkTags(pairs: [string, string][]): Record<string, string> {
  if (pairs.length > 10) {
    throw new S3Error(400, "BadRequest", "Object tags cannot be greater than 10");
  }
  const tags: Record<string, string> = {};
  for (const [k, v] of pairs) {
    if (k === "" || k.length > 128 || v.length > 256) {
      throw new S3Error(400, "InvalidTag", "The TagKey or TagValue you have provided is invalid");
    }
    if (k in tags) {
      throw new S3Error(400, "InvalidTag", "Cannot provide multiple Tags with the same key");
    }
    tags[k] = v;
  }
  return tags;
}

/** Body intake bound to a relay: into files, counted in its stats, hashed by its pool. */
export function bodyHelpers(core: RelayCore) {
  const { store, stats, hashPool } = core;

  /**
   * Streams the request body into `fd` from position `pos`; returns size and MD5 (if computed). Chunks are
   * gathered into one reused 1 MiB buffer so the file sees few, large writes.
   */
  async function receiveInto(ctx: Ctx, fd: number, pos: number) {
    const buf = Buffer.allocUnsafe(1 << 20);
    let fill = 0;
    const flush = () => {
      let off = 0;
      while (off < fill) {
        const n = fs.writeSync(fd, buf, off, fill - off, pos);
        off += n;
        pos += n;
      }
      fill = 0;
    };
    const r = await receiveBody(
      ctx.req,
      ctx.auth,
      (c) => {
        let off = 0;
        while (off < c.length) {
          const n = Math.min(c.length - off, buf.length - fill);
          buf.set(c.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === buf.length) flush();
        }
      },
      (n) => (stats.bytesIn += n),
      ctx.pre,
      (algs) => hashPool.session(algs),
    );
    flush();
    return r;
  }

  /** Streams the request body into a temp file; returns its path, size and MD5 if computed. */
  async function bodyToTemp(
    ctx: Ctx,
  ): Promise<{ tmp: string; md5?: Buffer; size: number; checksum?: BodyResult["checksum"] }> {
    const tmp = store.tempPath();
    const fd = fs.openSync(tmp, "wx", 0o644);
    let closed = false;
    try {
      const r = await receiveInto(ctx, fd, 0);
      fs.closeSync(fd);
      closed = true;
      return { tmp, md5: r.md5, size: r.size, checksum: r.checksum };
    } catch (e) {
      if (!closed) fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  function writeJsonAtomic(file: string, value: unknown) {
    writeFileAtomicSync(file, JSON.stringify(value), { mode: 0o600, tempPath: store.tempPath() });
  }

  return { receiveInto, bodyToTemp, writeJsonAtomic };
}
