/**
 * The relay: an S3-compatible HTTP server over a directory (bucket = top-level folder,
 * object = plain file), verifying AWS Signature V4 against per-run credentials.
 *
 * Built on `node:http` (not `Deno.serve`) so uploads stream at disk speed: request bodies are
 * hashed and written synchronously as chunks arrive, and objects are served with read streams.
 *
 * @module
 */

import * as http from "node:http";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AddressInfo, Socket } from "node:net";
import { createHash, randomInt } from "node:crypto";
import { GangplankError } from "../errors/mod.ts";
import {
  FsStore,
  keySegments,
  type ObjectInfo,
  type ObjectMeta,
  randomId,
  S3Error,
} from "./fs_store.ts";
import {
  type AuthSuccess,
  type Credentials,
  parseQuery,
  safeDecode,
  uriEncode,
  verifyRequest,
} from "./sigv4.ts";
import { elements, errorDocument, text, xmlDocument, type XmlNode, xmlUnescape } from "./xml.ts";
import { ClientAbortedError, readRawBody, receiveBody, receiveSmallBody } from "./server_body.ts";
import type { RelayConfig } from "./config.ts";
import { HashPool } from "./server_hash.ts";

export type { Credentials } from "./sigv4.ts";

/** Options of {@link startRelay}. */
export interface RelayOptions {
  /** Directory served: each top-level folder is a bucket. Must exist. */
  root: string;
  /** Bind address. Default `127.0.0.1`; `0.0.0.0` or a pod IP only when asked for. */
  hostname?: string;
  /** Port; default 0 = a free port chosen by the OS at bind time. */
  port?: number;
  /** Credentials to accept; default {@link generateCredentials}. */
  credentials?: Credentials;
  /** Region reported to clients. Default `us-east-1`. */
  region?: string;
  /** Buckets stored in another folder below root, e.g. `{ builder: "builds" }`. */
  bucketDirs?: Record<string, string>;
  /** Where metadata and in-flight uploads live. Default `<root>/.gangplank-relay`. */
  stateDir?: string;
  /** Receives one line per notable event (never secrets). */
  log?: (msg: string) => void;
  /** Aborting closes the relay. */
  signal?: AbortSignal;
}

/** A running relay. */
export interface Relay extends AsyncDisposable {
  readonly hostname: string;
  readonly port: number;
  readonly region: string;
  readonly credentials: Credentials;
  /** Gangplank's minio config for this relay (`external_server: true`). */
  config(): RelayConfig;
  /** Payload bytes received and sent so far. */
  readonly stats: { bytesIn: number; bytesOut: number };
  /** Stops listening, drops open connections. Idempotent. */
  close(): Promise<void>;
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomString(n: number, alphabet: string): string {
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)]; // unbiased
  return s;
}

/** Fresh crypto-strong credentials (20-char access key, 40-char secret key). */
export function generateCredentials(): Credentials {
  return {
    accessKey: randomString(20, ALNUM.slice(0, 26) + ALNUM.slice(52)),
    secretKey: randomString(40, ALNUM),
  };
}

const MIN_PART = 5 * 1024 * 1024;
const STORED_HEADERS = [
  "content-encoding",
  "content-disposition",
  "content-language",
  "cache-control",
  "expires",
];
const OWNER = { ID: "gangplank", DisplayName: "gangplank" };

interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  requestId: string;
  resource: string;
  query: Map<string, string>;
  auth: AuthSuccess;
  /** The body, when it had to be read before the signature could be checked. */
  pre?: Buffer;
  bucket?: string;
  key?: string;
}

interface UploadInfo {
  bucket: string;
  key: string;
  initiated: string;
  contentType?: string;
  headers?: Record<string, string>;
  userMeta?: Record<string, string>;
  tags?: Record<string, string>;
}

interface PartInfo {
  etag: string;
  size: number;
  lastModified: string;
  ino: number;
}

/** Parts 1..k appended in order to an upload's `assembly` file (the sequential fast path). */
interface Assembly {
  length: number;
  parts: { n: number; etag: string; size: number; lastModified: string; offset: number }[];
}

/** Where a part's bytes are: its own file, or a range of the assembly file. */
interface PartRef {
  etag: string;
  size: number;
  lastModified: string;
  file: string;
  offset: number;
  inAssembly: boolean;
}

function httpDate(d: Date): string {
  return d.toUTCString();
}

function isoDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, ".000Z");
}

function quote(etag: string): string {
  return `"${etag}"`;
}

function unquote(etag: string): string {
  return etag.trim().replace(/^&quot;|&quot;$/g, "").replace(/^"|"$/g, "");
}

/** Starts a relay; resolves once it listens. */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const hostname = opts.hostname ?? "127.0.0.1";
  const region = opts.region ?? "us-east-1";
  const credentials = opts.credentials ?? generateCredentials();
  const log = opts.log ?? (() => {});
  opts.signal?.throwIfAborted();
  const store = new FsStore({
    root: opts.root,
    stateDir: opts.stateDir,
    bucketDirs: opts.bucketDirs,
  });
  const stats = { bytesIn: 0, bytesOut: 0 };
  const sockets = new Set<Socket>();
  const hashPool = new HashPool();
  /** Uploads with a part being appended to their assembly file right now. */
  const appending = new Set<string>();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      log(`relay: internal error: ${e instanceof Error ? e.message : String(e)}`);
      try {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        } else res.destroy();
      } catch { /* socket gone */ }
    });
  });
  server.keepAliveTimeout = 30_000;
  // Multi-GiB bodies may take long: no whole-request deadline, only one for the headers.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  function sendXml(ctx: Ctx, status: number, xml: string, extra: Record<string, string> = {}) {
    const body = Buffer.from(xml);
    ctx.res.writeHead(status, {
      "content-type": "application/xml",
      "content-length": String(body.length),
      "x-amz-request-id": ctx.requestId,
      ...extra,
    });
    ctx.res.end(ctx.req.method === "HEAD" ? undefined : body);
  }

  function sendEmpty(ctx: Ctx, status: number, extra: Record<string, string | number> = {}) {
    ctx.res.writeHead(status, { "x-amz-request-id": ctx.requestId, ...extra });
    ctx.res.end();
  }

  function sendError(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    requestId: string,
    resource: string,
    err: S3Error,
    closeConnection: boolean,
  ) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = Buffer.from(errorDocument(err.code, err.message, resource, requestId));
    const headers: Record<string, string> = {
      "content-type": "application/xml",
      "x-amz-request-id": requestId,
      ...err.headers,
    };
    if (req.method !== "HEAD") headers["content-length"] = String(body.length);
    if (closeConnection) headers["connection"] = "close";
    res.writeHead(err.status, headers);
    res.end(req.method === "HEAD" ? undefined : body);
    if (closeConnection) res.on("finish", () => req.socket.destroy());
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomId(8).toUpperCase();
    const rawUrl = req.url ?? "/";
    const qi = rawUrl.indexOf("?");
    const rawPath = qi < 0 ? rawUrl : rawUrl.slice(0, qi);
    const decodedPath = safeDecode(rawPath) ?? rawPath;
    const resource = decodedPath;
    let bodyConsumed = false;
    try {
      if (!rawPath.startsWith("/")) throw new S3Error(400, "InvalidURI", "invalid request path");
      let auth = verifyRequest(
        { method: req.method ?? "GET", rawUrl, rawHeaders: req.rawHeaders },
        credentials,
      );
      let pre: Buffer | undefined;
      if (auth.ok === "deferred") {
        // Signed over the body's hash without saying so (curl < 8 with --data): read the body
        // (small requests only: at most 1 MiB is buffered before the signature is known) and
        // check the signature against its SHA-256.
        pre = await readRawBody(req, 1 << 20);
        bodyConsumed = pre !== undefined;
        auth = pre === undefined
          ? {
            ok: false,
            status: 403,
            code: "SignatureDoesNotMatch",
            message: "the signature does not match; a body over 1 MiB must come with an " +
              "x-amz-content-sha256 header (its SHA-256 or UNSIGNED-PAYLOAD)",
          }
          : auth.verifyBody(createHash("sha256").update(pre).digest("hex"));
      }
      if (auth.ok !== true) throw new S3Error(auth.status, auth.code, auth.message);
      const pairs = parseQuery(qi < 0 ? "" : rawUrl.slice(qi + 1)) ?? [];
      // Presigned-URL parameters are authentication, not sub-resources.
      const query = new Map(pairs.filter(([k]) => !/^x-amz-/i.test(k)));
      // Path: /bucket[/key...]; decode the bucket and the key separately.
      const rest = rawPath.slice(1);
      const slash = rest.indexOf("/");
      const rawBucket = slash < 0 ? rest : rest.slice(0, slash);
      const rawKey = slash < 0 ? "" : rest.slice(slash + 1);
      const bucket = safeDecode(rawBucket);
      const key = safeDecode(rawKey);
      if (bucket === undefined || key === undefined) {
        throw new S3Error(400, "InvalidURI", "malformed percent-encoding in path");
      }
      const ctx: Ctx = { req, res, requestId, resource, query, auth, pre };
      if (bucket !== "") ctx.bucket = bucket;
      if (key !== "") ctx.key = key;
      await route(ctx, () => (bodyConsumed = true));
    } catch (e) {
      let err: S3Error;
      if (e instanceof S3Error) err = e;
      else if (e instanceof GangplankError) err = new S3Error(500, "InternalError", e.message);
      else {
        const code = (e as NodeJS.ErrnoException)?.code;
        if (code === "ENOSPC" || code === "EDQUOT") {
          err = new S3Error(507, "XMinioStorageFull", "no space left on the relay's disk");
        } else err = new S3Error(500, "InternalError", "We encountered an internal error.");
        log(`relay: ${req.method} ${rawPath}: ${e instanceof Error ? e.message : String(e)}`);
      }
      // 404/409/412/416 are ordinary answers (bucketExists, stat of a missing key); log the rest.
      if (!(e instanceof ClientAbortedError) && ![404, 409, 412, 416].includes(err.status)) {
        log(`relay: ${req.method} ${rawPath} -> ${err.status} ${err.code}`);
      }
      // A request whose body was not (fully) read cannot keep the connection.
      const hasBody = req.headers["content-length"] !== undefined &&
          req.headers["content-length"] !== "0" ||
        req.headers["transfer-encoding"] !== undefined;
      sendError(req, res, requestId, resource, err, hasBody && !bodyConsumed);
    }
  }

  async function route(ctx: Ctx, markConsumed: () => void): Promise<void> {
    const { req, query } = ctx;
    const m = req.method;
    if (!ctx.bucket) {
      if (m === "GET") return listBuckets(ctx);
      throw notImplemented();
    }
    if (!ctx.key) {
      switch (m) {
        case "GET":
          if (query.has("location")) return getLocation(ctx);
          if (query.has("uploads")) return listUploads(ctx);
          if (query.has("versioning")) {
            store.existingBucket(ctx.bucket);
            return sendXml(ctx, 200, xmlDocument("VersioningConfiguration", {}));
          }
          for (const sub of ["policy", "lifecycle", "cors", "tagging", "encryption", "acl"]) {
            if (query.has(sub)) throw notImplemented();
          }
          return listObjects(ctx);
        case "HEAD":
          store.existingBucket(ctx.bucket);
          return sendEmpty(ctx, 200, { "x-amz-bucket-region": region });
        case "PUT":
          if (query.size > 0) throw notImplemented();
          await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
          markConsumed();
          store.createBucket(ctx.bucket);
          return sendEmpty(ctx, 200, { location: `/${ctx.bucket}` });
        case "DELETE":
          if (query.size > 0) throw notImplemented();
          store.deleteBucket(ctx.bucket);
          return sendEmpty(ctx, 204);
        case "POST":
          if (query.has("delete")) {
            const body = await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
            markConsumed();
            return deleteObjects(ctx, body.toString("utf8"));
          }
          throw notImplemented();
      }
      throw notImplemented();
    }
    switch (m) {
      case "GET":
        if (query.has("tagging")) return getTagging(ctx);
        if (query.has("uploadId")) return listParts(ctx);
        if (query.has("acl")) throw notImplemented();
        return getObject(ctx, false);
      case "HEAD":
        return getObject(ctx, true);
      case "PUT":
        if (query.has("tagging")) {
          const body = await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
          markConsumed();
          return putTagging(ctx, body.toString("utf8"));
        }
        if (query.has("uploadId") || query.has("partNumber")) {
          if (req.headers["x-amz-copy-source"]) throw notImplemented();
          await uploadPart(ctx);
          markConsumed();
          return;
        }
        if (req.headers["x-amz-copy-source"] !== undefined) {
          await receiveSmallBody(req, ctx.auth, 0, ctx.pre);
          markConsumed();
          return copyObject(ctx);
        }
        if (query.size > 0) throw notImplemented();
        await putObject(ctx);
        markConsumed();
        return;
      case "DELETE":
        if (query.has("tagging")) return putTaggingValues(ctx, {}, 204);
        if (query.has("uploadId")) return abortUpload(ctx);
        store.deleteObject(ctx.bucket, ctx.key);
        return sendEmpty(ctx, 204);
      case "POST":
        if (query.has("uploads")) return initiateUpload(ctx);
        if (query.has("uploadId")) {
          const body = await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
          markConsumed();
          return completeUpload(ctx, body.toString("utf8"));
        }
        throw notImplemented();
    }
    throw notImplemented();
  }

  function notImplemented(): S3Error {
    return new S3Error(501, "NotImplemented", "this operation is not implemented by the relay");
  }

  // ---- buckets ---------------------------------------------------------------------------

  function listBuckets(ctx: Ctx) {
    const buckets = store.listBuckets().map((b) => ({
      Name: b.name,
      CreationDate: isoDate(b.created),
    }));
    sendXml(
      ctx,
      200,
      xmlDocument("ListAllMyBucketsResult", { Owner: OWNER, Buckets: { Bucket: buckets } }),
    );
  }

  function getLocation(ctx: Ctx) {
    store.existingBucket(ctx.bucket!);
    const loc = region === "us-east-1" ? "" : region;
    sendXml(
      ctx,
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${loc}</LocationConstraint>`,
    );
  }

  // ---- listing ---------------------------------------------------------------------------

  function listObjects(ctx: Ctx) {
    const q = ctx.query;
    const bucket = ctx.bucket!;
    const v2 = q.get("list-type") === "2";
    const urlEnc = q.get("encoding-type") === "url";
    const enc = (s: string) => (urlEnc ? uriEncode(s, true) : s);
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const maxKeysRaw = q.get("max-keys");
    let maxKeys = 1000;
    if (maxKeysRaw !== undefined) {
      maxKeys = Number(maxKeysRaw);
      if (!Number.isInteger(maxKeys) || maxKeys < 0) {
        throw new S3Error(400, "InvalidArgument", "max-keys must be a non-negative integer");
      }
      maxKeys = Math.min(maxKeys, 1000);
    }
    let after = "";
    const token = q.get("continuation-token");
    const startAfter = q.get("start-after") ?? "";
    const marker = q.get("marker") ?? "";
    if (v2) {
      if (token !== undefined) {
        const t = Buffer.from(token, "base64url").toString("utf8");
        if (!t.startsWith("k:")) {
          throw new S3Error(400, "InvalidArgument", "The continuation token provided is incorrect");
        }
        after = t.slice(2);
      } else after = startAfter;
    } else after = marker;

    const contents: XmlNode[] = [];
    const prefixes: XmlNode[] = [];
    let last = "";
    let truncated = false;
    let count = 0;
    let lastPrefix = "";
    const skipPrefix = delimiter !== "" && after.endsWith(delimiter) ? after : "";
    if (maxKeys > 0) {
      for (const item of store.walk(bucket, prefix, after, delimiter)) {
        let cp: string | undefined;
        if (item.prefix) cp = item.key;
        else if (delimiter !== "") {
          const i = item.key.indexOf(delimiter, prefix.length);
          if (i >= 0) cp = item.key.slice(0, i + delimiter.length);
        }
        if (cp !== undefined) {
          if (cp === lastPrefix || (skipPrefix && cp === skipPrefix)) continue;
          if (count >= maxKeys) {
            truncated = true;
            break;
          }
          lastPrefix = cp;
          prefixes.push({ Prefix: enc(cp) });
          last = cp;
          count++;
          continue;
        }
        if (count >= maxKeys) {
          truncated = true;
          break;
        }
        // The walk stat'ed the file and kept symlinks inside the bucket; names the relay
        // would refuse as keys (a backslash, say) are not listed either.
        try {
          keySegments(item.key);
        } catch {
          continue;
        }
        const st = item.stat!;
        contents.push({
          Key: enc(item.key),
          LastModified: isoDate(st.mtime),
          ETag: quote(store.metaFor(bucket, item.key, st).etag),
          Size: st.size,
          StorageClass: "STANDARD",
          ...(v2 ? {} : { Owner: OWNER }),
        });
        last = item.key;
        count++;
      }
    } else {
      store.existingBucket(bucket);
    }
    const common = {
      Name: bucket,
      Prefix: enc(prefix),
      ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
      MaxKeys: maxKeys,
      ...(urlEnc ? { EncodingType: "url" } : {}),
      IsTruncated: truncated,
    };
    let body: XmlNode;
    if (v2) {
      body = {
        ...common,
        KeyCount: count,
        ...(token !== undefined ? { ContinuationToken: token } : {}),
        ...(truncated
          ? { NextContinuationToken: Buffer.from("k:" + last).toString("base64url") }
          : {}),
        ...(startAfter ? { StartAfter: enc(startAfter) } : {}),
        Contents: contents,
        CommonPrefixes: prefixes,
      };
    } else {
      body = {
        ...common,
        Marker: enc(marker),
        ...(truncated ? { NextMarker: enc(last) } : {}),
        Contents: contents,
        CommonPrefixes: prefixes,
      };
    }
    sendXml(ctx, 200, xmlDocument("ListBucketResult", body));
  }

  // ---- objects ---------------------------------------------------------------------------

  function metaFromHeaders(req: http.IncomingMessage) {
    const userMeta: Record<string, string> = {};
    const headers: Record<string, string> = {};
    let metaSize = 0;
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i].toLowerCase();
      const value = req.rawHeaders[i + 1];
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

  function parseTagHeader(v: string | string[] | undefined): Record<string, string> | undefined {
    if (typeof v !== "string" || v === "") return undefined;
    const pairs = parseQuery(v);
    if (!pairs) throw new S3Error(400, "InvalidTag", "malformed x-amz-tagging header");
    return checkTags(pairs);
  }

  function checkTags(pairs: [string, string][]): Record<string, string> {
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

  /**
   * Streams the request body into `fd` from position `pos`; returns MD5 and size. Chunks are
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

  /** Streams the request body into a temp file; returns its path and MD5. */
  async function bodyToTemp(ctx: Ctx): Promise<{ tmp: string; md5: Buffer; size: number }> {
    const tmp = store.tempPath();
    const fd = fs.openSync(tmp, "wx", 0o644);
    let closed = false;
    try {
      const r = await receiveInto(ctx, fd, 0);
      fs.closeSync(fd);
      closed = true;
      return { tmp, md5: r.md5, size: r.size };
    } catch (e) {
      if (!closed) fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  async function putObject(ctx: Ctx) {
    const bucket = ctx.bucket!;
    const key = ctx.key!;
    store.objectPath(bucket, key); // validate key and bucket before reading the body
    const meta = metaFromHeaders(ctx.req);
    const { tmp, md5 } = await bodyToTemp(ctx);
    try {
      store.commit(bucket, key, tmp);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    const etag = md5.toString("hex");
    store.writeMeta(bucket, { key, etag, ...meta });
    sendEmpty(ctx, 200, { etag: quote(etag) });
  }

  function objectHeaders(info: ObjectInfo): Record<string, string | number> {
    const h: Record<string, string | number> = {
      "content-type": info.meta.contentType ?? "application/octet-stream",
      etag: quote(info.meta.etag),
      "last-modified": httpDate(info.mtime),
      "accept-ranges": "bytes",
      ...(info.meta.headers ?? {}),
    };
    for (const [k, v] of Object.entries(info.meta.userMeta ?? {})) h[`x-amz-meta-${k}`] = v;
    const nTags = Object.keys(info.meta.tags ?? {}).length;
    if (nTags > 0) h["x-amz-tagging-count"] = nTags;
    return h;
  }

  function getObject(ctx: Ctx, head: boolean) {
    const info = store.statObject(ctx.bucket!, ctx.key!);
    const headers = objectHeaders(info);
    const req = ctx.req;
    const inm = req.headers["if-none-match"];
    if (
      typeof inm === "string" &&
      inm.split(",").some((t) => unquote(t) === info.meta.etag || t.trim() === "*")
    ) {
      return sendEmpty(ctx, 304, { etag: quote(info.meta.etag) });
    }
    const im = req.headers["if-match"];
    if (
      typeof im === "string" &&
      !im.split(",").some((t) => unquote(t) === info.meta.etag || t.trim() === "*")
    ) {
      throw new S3Error(
        412,
        "PreconditionFailed",
        "At least one of the preconditions you specified did not hold",
      );
    }
    let start = 0;
    let end = info.size - 1;
    let status = 200;
    const range = req.headers["range"];
    if (typeof range === "string") {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] !== "" || m[2] !== "")) {
        if (m[1] === "") {
          const n = Number(m[2]);
          start = Math.max(0, info.size - n);
        } else {
          start = Number(m[1]);
          if (m[2] !== "") end = Math.min(Number(m[2]), info.size - 1);
          if (m[2] !== "" && Number(m[2]) < start) {
            start = 0; // invalid range: ignored, whole object served
            end = info.size - 1;
          }
        }
        if (start >= info.size || (m[1] === "" && Number(m[2]) === 0)) {
          throw new S3Error(416, "InvalidRange", "The requested range is not satisfiable", {
            "content-range": `bytes */${info.size}`,
          });
        }
        status = 206;
        headers["content-range"] = `bytes ${start}-${end}/${info.size}`;
      }
    }
    const length = info.size === 0 ? 0 : end - start + 1;
    headers["content-length"] = length;
    headers["x-amz-request-id"] = ctx.requestId;
    const res = ctx.res;
    if (head || length === 0) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    let fd: number;
    try {
      fd = fs.openSync(info.path, "r");
    } catch {
      throw new S3Error(404, "NoSuchKey", "The specified key does not exist.");
    }
    res.writeHead(status, headers);
    sendFileRange(fd, start, end, res);
  }

  /**
   * Streams bytes [start, end] of `fd` to `res` through a few reused buffers: each buffer is
   * refilled only after its write completed, so a GET allocates nothing per chunk and memory
   * stays bounded whatever the client's speed. Closes `fd`.
   */
  function sendFileRange(fd: number, start: number, end: number, res: http.ServerResponse) {
    const CHUNK = 256 << 10;
    const pool = [0, 1, 2, 3].map(() => Buffer.allocUnsafe(CHUNK));
    let pos = start;
    let inFlight = 0;
    let closed = false;
    const closeFd = () => {
      if (!closed) {
        closed = true;
        fs.closeSync(fd);
      }
    };
    res.once("close", closeFd);
    const pump = () => {
      if (closed) return;
      try {
        while (pool.length > 0 && pos <= end && !res.destroyed) {
          const buf = pool.pop()!;
          const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, end - pos + 1), pos);
          if (n === 0) throw new Error("file shrank while being sent");
          pos += n;
          inFlight++;
          stats.bytesOut += n;
          res.write(n === CHUNK ? buf : buf.subarray(0, n), (err) => {
            inFlight--;
            pool.push(buf);
            if (err) res.destroy();
            else pump();
          });
        }
      } catch {
        closeFd();
        res.destroy();
        return;
      }
      if (pos > end && inFlight === 0) {
        closeFd();
        res.end();
      }
    };
    pump();
  }

  async function copyObject(ctx: Ctx) {
    const src = String(ctx.req.headers["x-amz-copy-source"]);
    const srcPath = safeDecode(src.split("?")[0]);
    if (srcPath === undefined) throw new S3Error(400, "InvalidArgument", "bad x-amz-copy-source");
    const trimmed = srcPath.replace(/^\//, "");
    const s = trimmed.indexOf("/");
    if (s <= 0 || s === trimmed.length - 1) {
      throw new S3Error(400, "InvalidArgument", "x-amz-copy-source must be <bucket>/<key>");
    }
    const srcBucket = trimmed.slice(0, s);
    const srcKey = trimmed.slice(s + 1);
    const dstBucket = ctx.bucket!;
    const dstKey = ctx.key!;
    store.objectPath(dstBucket, dstKey);
    const info = store.statObject(srcBucket, srcKey);
    const directive = String(ctx.req.headers["x-amz-metadata-directive"] ?? "COPY").toUpperCase();
    const tagDirective = String(ctx.req.headers["x-amz-tagging-directive"] ?? "COPY")
      .toUpperCase();
    if (directive !== "COPY" && directive !== "REPLACE") {
      throw new S3Error(400, "InvalidArgument", "Unknown metadata directive.");
    }
    const cim = ctx.req.headers["x-amz-copy-source-if-match"];
    if (typeof cim === "string" && unquote(cim) !== info.meta.etag) {
      throw new S3Error(
        412,
        "PreconditionFailed",
        "At least one of the preconditions you specified did not hold",
      );
    }
    const fromReq = metaFromHeaders(ctx.req);
    const base: Omit<ObjectMeta, "ino" | "size" | "mtimeMs" | "etag" | "key"> =
      directive === "REPLACE"
        ? { userMeta: fromReq.userMeta, headers: fromReq.headers, contentType: fromReq.contentType }
        : {
          userMeta: info.meta.userMeta,
          headers: info.meta.headers,
          contentType: info.meta.contentType,
        };
    base.tags = tagDirective === "REPLACE" ? fromReq.tags : info.meta.tags;
    const same = srcBucket === dstBucket && srcKey === dstKey;
    let etag: string;
    if (same) {
      if (directive !== "REPLACE") {
        throw new S3Error(
          400,
          "InvalidRequest",
          "This copy request is illegal because it is trying to copy an object to itself " +
            "without changing the object's metadata, storage class, website redirect location " +
            "or encryption attributes.",
        );
      }
      // Metadata-only update: the bytes stay where they are.
      etag = info.meta.etag;
    } else {
      const tmp = store.tempPath();
      try {
        const r = await copyFiles([info.path], tmp, { hash: true });
        etag = r.md5!.toString("hex");
        store.commit(dstBucket, dstKey, tmp);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    }
    const meta = store.writeMeta(dstBucket, { key: dstKey, etag, ...base });
    sendXml(
      ctx,
      200,
      xmlDocument("CopyObjectResult", {
        LastModified: isoDate(new Date(meta.mtimeMs)),
        ETag: quote(etag),
      }),
    );
  }

  /**
   * Copies files into a new file `dst`, yielding to the event loop between chunks; with
   * `hash`, returns the MD5 of what was written.
   */
  async function copyFiles(
    sources: string[],
    dst: string,
    opts: { hash: boolean },
  ): Promise<{ md5?: Buffer; size: number }> {
    const out = fs.openSync(dst, "wx", 0o644);
    const buf = Buffer.allocUnsafe(4 << 20);
    const md5 = opts.hash ? createHash("md5") : undefined;
    let size = 0;
    try {
      for (const src of sources) {
        const inp = fs.openSync(src, "r");
        try {
          for (;;) {
            const n = fs.readSync(inp, buf, 0, buf.length, null);
            if (n === 0) break;
            const c = buf.subarray(0, n);
            md5?.update(c);
            let off = 0;
            while (off < n) off += fs.writeSync(out, c, off, n - off);
            size += n;
            await new Promise((r) => setImmediate(r));
          }
        } finally {
          fs.closeSync(inp);
        }
      }
    } finally {
      fs.closeSync(out);
    }
    return { md5: md5?.digest(), size };
  }

  // ---- tagging ---------------------------------------------------------------------------

  function getTagging(ctx: Ctx) {
    const info = store.statObject(ctx.bucket!, ctx.key!);
    const tags = Object.entries(info.meta.tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
    sendXml(ctx, 200, xmlDocument("Tagging", { TagSet: { Tag: tags } }));
  }

  function putTagging(ctx: Ctx, body: string) {
    const pairs: [string, string][] = elements(body, "Tag").map((t) => [
      xmlUnescape(elements(t, "Key")[0] ?? ""),
      xmlUnescape(elements(t, "Value")[0] ?? ""),
    ]);
    putTaggingValues(ctx, checkTags(pairs), 200);
  }

  function putTaggingValues(ctx: Ctx, tags: Record<string, string>, status: number) {
    const info = store.statObject(ctx.bucket!, ctx.key!);
    const { ino: _i, size: _s, mtimeMs: _m, ...rest } = info.meta;
    store.writeMeta(ctx.bucket!, { ...rest, tags });
    sendEmpty(ctx, status);
  }

  // ---- multi-object delete ---------------------------------------------------------------

  function deleteObjects(ctx: Ctx, body: string) {
    store.existingBucket(ctx.bucket!);
    const quiet = text(body, "Quiet") === "true";
    const objs = elements(body, "Object");
    if (objs.length > 1000) {
      throw new S3Error(400, "MalformedXML", "at most 1000 objects can be deleted at once");
    }
    const deleted: XmlNode[] = [];
    const errors: XmlNode[] = [];
    for (const o of objs) {
      const key = xmlUnescape(elements(o, "Key")[0] ?? "");
      try {
        store.deleteObject(ctx.bucket!, key);
        if (!quiet) deleted.push({ Key: key });
      } catch (e) {
        const err = e instanceof S3Error ? e : new S3Error(500, "InternalError", "delete failed");
        errors.push({ Key: key, Code: err.code, Message: err.message });
      }
    }
    sendXml(ctx, 200, xmlDocument("DeleteResult", { Deleted: deleted, Error: errors }));
  }

  // ---- multipart -------------------------------------------------------------------------

  function uploadDir(ctx: Ctx): { dir: string; info: UploadInfo; id: string } {
    const id = ctx.query.get("uploadId") ?? "";
    const noSuch = () =>
      new S3Error(
        404,
        "NoSuchUpload",
        "The specified multipart upload does not exist. The upload ID may be invalid, " +
          "or the upload may have been aborted or completed.",
      );
    if (!/^[0-9a-f]{32}$/.test(id)) throw noSuch();
    const dir = path.join(store.uploadsDir, id);
    let info: UploadInfo;
    try {
      info = JSON.parse(fs.readFileSync(path.join(dir, "info.json"), "utf8"));
    } catch {
      throw noSuch();
    }
    if (info.bucket !== ctx.bucket || info.key !== ctx.key) throw noSuch();
    return { dir, info, id };
  }

  function writeJsonAtomic(file: string, value: unknown) {
    const tmp = store.tempPath();
    fs.writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  function initiateUpload(ctx: Ctx) {
    const bucket = ctx.bucket!;
    const key = ctx.key!;
    store.objectPath(bucket, key);
    const meta = metaFromHeaders(ctx.req);
    const id = randomId(16);
    const dir = path.join(store.uploadsDir, id);
    fs.mkdirSync(dir, { mode: 0o700 });
    const info: UploadInfo = { bucket, key, initiated: new Date().toISOString(), ...meta };
    writeJsonAtomic(path.join(dir, "info.json"), info);
    sendXml(
      ctx,
      200,
      xmlDocument("InitiateMultipartUploadResult", { Bucket: bucket, Key: key, UploadId: id }),
    );
  }

  function partNumber(raw: string | undefined): number {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 10000) {
      throw new S3Error(
        400,
        "InvalidArgument",
        "Part number must be an integer between 1 and 10000",
      );
    }
    return n;
  }

  function readAssembly(dir: string): Assembly {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, "assembly.json"), "utf8")) as Assembly;
    } catch {
      return { length: 0, parts: [] };
    }
  }

  const noSuchUpload = () =>
    new S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.");

  async function uploadPart(ctx: Ctx) {
    const n = partNumber(ctx.query.get("partNumber"));
    const { dir, id } = uploadDir(ctx);
    const asm = readAssembly(dir);
    if (!appending.has(id) && n === asm.parts.length + 1) {
      return await appendPart(ctx, dir, id, n, asm);
    }
    // Out of order, repeated or concurrent: the part gets a file of its own.
    const { tmp, md5, size } = await bodyToTemp(ctx);
    const file = path.join(dir, `part.${n}`);
    try {
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw noSuchUpload();
      throw e;
    }
    const etag = md5.toString("hex");
    const part: PartInfo = {
      etag,
      size,
      lastModified: new Date().toISOString(),
      ino: fs.statSync(file).ino,
    };
    writeJsonAtomic(path.join(dir, `part.${n}.json`), part);
    sendEmpty(ctx, 200, { etag: quote(etag) });
  }

  /**
   * The next part in sequence is appended straight to the upload's assembly file, so that
   * completing an upload sent in order (what npm:minio and most clients do) is a rename.
   */
  async function appendPart(ctx: Ctx, dir: string, id: string, n: number, asm: Assembly) {
    appending.add(id);
    const file = path.join(dir, "assembly");
    let fd: number | undefined;
    try {
      try {
        fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") throw noSuchUpload();
        throw e;
      }
      fs.ftruncateSync(fd, asm.length); // drop leftovers of an interrupted append
      const { md5, size } = await receiveInto(ctx, fd, asm.length);
      fs.closeSync(fd);
      fd = undefined;
      const etag = md5.toString("hex");
      asm.parts.push({ n, etag, size, lastModified: new Date().toISOString(), offset: asm.length });
      asm.length += size;
      try {
        writeJsonAtomic(path.join(dir, "assembly.json"), asm);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") throw noSuchUpload();
        throw e;
      }
      // An older copy of this part in a file of its own is superseded.
      fs.rmSync(path.join(dir, `part.${n}.json`), { force: true });
      fs.rmSync(path.join(dir, `part.${n}`), { force: true });
      sendEmpty(ctx, 200, { etag: quote(etag) });
    } catch (e) {
      if (fd !== undefined) {
        try {
          fs.ftruncateSync(fd, asm.length);
        } catch { /* upload removed meanwhile */ }
        fs.closeSync(fd);
      }
      throw e;
    } finally {
      appending.delete(id);
    }
  }

  /** All parts of an upload; a part's own file wins over its assembly range (it is newer). */
  function readParts(dir: string): Map<number, PartRef> {
    const parts = new Map<number, PartRef>();
    const asmFile = path.join(dir, "assembly");
    for (const p of readAssembly(dir).parts) {
      parts.set(p.n, { ...p, file: asmFile, inAssembly: true });
    }
    for (const f of fs.readdirSync(dir)) {
      const m = /^part\.(\d+)\.json$/.exec(f);
      if (!m) continue;
      try {
        const p = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as PartInfo;
        const file = path.join(dir, `part.${m[1]}`);
        if (fs.statSync(file).ino !== p.ino) continue; // being replaced right now
        parts.set(Number(m[1]), {
          etag: p.etag,
          size: p.size,
          lastModified: p.lastModified,
          file,
          offset: 0,
          inAssembly: false,
        });
      } catch { /* half-written part */ }
    }
    return parts;
  }

  async function completeUpload(ctx: Ctx, body: string) {
    const { dir, info, id } = uploadDir(ctx);
    if (appending.has(id)) {
      throw new S3Error(409, "OperationAborted", "a part of this upload is still being written");
    }
    const requested = elements(body, "Part").map((p) => ({
      n: Number(text(p, "PartNumber")),
      etag: unquote(text(p, "ETag") ?? ""),
    }));
    if (requested.length === 0) {
      throw new S3Error(400, "MalformedXML", "CompleteMultipartUpload lists no parts");
    }
    let prev = 0;
    for (const r of requested) {
      if (!Number.isInteger(r.n) || r.n <= prev) {
        throw new S3Error(
          400,
          "InvalidPartOrder",
          "The list of parts was not in ascending order. Parts must be ordered by part number.",
        );
      }
      prev = r.n;
    }
    const parts = readParts(dir);
    const refs: PartRef[] = [];
    const md5s: Buffer[] = [];
    for (let i = 0; i < requested.length; i++) {
      const r = requested[i];
      const p = parts.get(r.n);
      if (!p || p.etag !== r.etag) {
        throw new S3Error(
          400,
          "InvalidPart",
          "One or more of the specified parts could not be found. The part may not have been " +
            "uploaded, or the specified entity tag may not match the part's entity tag.",
        );
      }
      if (i < requested.length - 1 && p.size < MIN_PART) {
        throw new S3Error(
          400,
          "EntityTooSmall",
          "Your proposed upload is smaller than the minimum allowed object size.",
        );
      }
      refs.push(p);
      md5s.push(Buffer.from(p.etag, "hex"));
    }
    const etag = createHash("md5").update(Buffer.concat(md5s)).digest("hex") + `-${refs.length}`;
    const asm = readAssembly(dir);
    const asmFile = path.join(dir, "assembly");
    const whole = refs.length === asm.parts.length &&
      refs.every((r, i) => r.inAssembly && r.offset === asm.parts[i].offset);
    const tmp = store.tempPath();
    try {
      if (whole) {
        // Every part, in order, already sits in the assembly file: the object is a rename.
        fs.truncateSync(asmFile, asm.length);
        fs.renameSync(asmFile, tmp);
        try {
          store.commit(info.bucket, info.key, tmp);
        } catch (e) {
          fs.renameSync(tmp, asmFile); // keep the upload completable
          throw e;
        }
      } else {
        await copyRanges(refs, tmp);
        store.commit(info.bucket, info.key, tmp);
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    store.writeMeta(info.bucket, {
      key: info.key,
      etag,
      contentType: info.contentType,
      headers: info.headers,
      userMeta: info.userMeta,
      tags: info.tags,
    });
    fs.rmSync(dir, { recursive: true, force: true });
    sendXml(
      ctx,
      200,
      xmlDocument("CompleteMultipartUploadResult", {
        Location: `/${info.bucket}/${info.key}`,
        Bucket: info.bucket,
        Key: info.key,
        ETag: quote(etag),
      }),
    );
  }

  /** Writes the parts' bytes, in order, into a new file `dst`, yielding between chunks. */
  async function copyRanges(refs: PartRef[], dst: string): Promise<void> {
    const out = fs.openSync(dst, "wx", 0o644);
    const buf = Buffer.allocUnsafe(4 << 20);
    try {
      for (const r of refs) {
        const inp = fs.openSync(r.file, "r");
        try {
          let done = 0;
          while (done < r.size) {
            const n = fs.readSync(
              inp,
              buf,
              0,
              Math.min(buf.length, r.size - done),
              r.offset + done,
            );
            if (n === 0) throw new GangplankError(`part data of ${r.file} is truncated`);
            let off = 0;
            while (off < n) off += fs.writeSync(out, buf, off, n - off);
            done += n;
            await new Promise((res) => setImmediate(res));
          }
        } finally {
          fs.closeSync(inp);
        }
      }
    } finally {
      fs.closeSync(out);
    }
  }

  function abortUpload(ctx: Ctx) {
    const { dir } = uploadDir(ctx);
    fs.rmSync(dir, { recursive: true, force: true });
    sendEmpty(ctx, 204);
  }

  function listParts(ctx: Ctx) {
    const { dir, info, id } = uploadDir(ctx);
    const marker = Number(ctx.query.get("part-number-marker") ?? "0") || 0;
    const maxParts = Math.min(Number(ctx.query.get("max-parts") ?? "1000") || 1000, 1000);
    const all = [...readParts(dir).entries()].filter(([n]) => n > marker).sort((a, b) =>
      a[0] - b[0]
    );
    const page = all.slice(0, maxParts);
    const truncated = all.length > page.length;
    sendXml(
      ctx,
      200,
      xmlDocument("ListPartsResult", {
        Bucket: info.bucket,
        Key: info.key,
        UploadId: id,
        Initiator: OWNER,
        Owner: OWNER,
        StorageClass: "STANDARD",
        PartNumberMarker: marker,
        ...(truncated ? { NextPartNumberMarker: page[page.length - 1][0] } : {}),
        MaxParts: maxParts,
        IsTruncated: truncated,
        Part: page.map(([n, p]) => ({
          PartNumber: n,
          LastModified: p.lastModified,
          ETag: quote(p.etag),
          Size: p.size,
        })),
      }),
    );
  }

  function listUploads(ctx: Ctx) {
    const bucket = ctx.bucket!;
    store.existingBucket(bucket);
    const q = ctx.query;
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const keyMarker = q.get("key-marker") ?? "";
    const idMarker = q.get("upload-id-marker") ?? "";
    const maxUploads = Math.min(Number(q.get("max-uploads") ?? "1000") || 1000, 1000);
    const urlEnc = q.get("encoding-type") === "url";
    const enc = (s: string) => (urlEnc ? uriEncode(s, true) : s);
    const uploads: { key: string; id: string; initiated: string }[] = [];
    for (const id of fs.readdirSync(store.uploadsDir)) {
      try {
        const info = JSON.parse(
          fs.readFileSync(path.join(store.uploadsDir, id, "info.json"), "utf8"),
        ) as UploadInfo;
        if (info.bucket !== bucket || !info.key.startsWith(prefix)) continue;
        uploads.push({ key: info.key, id, initiated: info.initiated });
      } catch { /* being created or removed */ }
    }
    uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
    const items: XmlNode[] = [];
    const prefixes: XmlNode[] = [];
    let truncated = false;
    let lastKey = "";
    let lastId = "";
    const seen = new Set<string>();
    for (const u of uploads) {
      if (
        keyMarker && (u.key < keyMarker || (u.key === keyMarker && (!idMarker || u.id <= idMarker)))
      ) {
        continue;
      }
      if (delimiter) {
        const i = u.key.indexOf(delimiter, prefix.length);
        if (i >= 0) {
          const cp = u.key.slice(0, i + delimiter.length);
          if (!seen.has(cp)) {
            seen.add(cp);
            prefixes.push({ Prefix: enc(cp) });
          }
          continue;
        }
      }
      if (items.length >= maxUploads) {
        truncated = true;
        break;
      }
      items.push({
        Key: enc(u.key),
        UploadId: u.id,
        Initiator: OWNER,
        Owner: OWNER,
        StorageClass: "STANDARD",
        Initiated: u.initiated,
      });
      lastKey = u.key;
      lastId = u.id;
    }
    sendXml(
      ctx,
      200,
      xmlDocument("ListMultipartUploadsResult", {
        Bucket: bucket,
        KeyMarker: enc(keyMarker),
        UploadIdMarker: idMarker,
        ...(truncated ? { NextKeyMarker: enc(lastKey), NextUploadIdMarker: lastId } : {}),
        Prefix: enc(prefix),
        ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
        MaxUploads: maxUploads,
        IsTruncated: truncated,
        Upload: items,
        CommonPrefixes: prefixes,
      }),
    );
  }

  // ---- lifecycle -------------------------------------------------------------------------

  await hashPool.start();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      hashPool.close();
      reject(
        new GangplankError(
          `relay cannot listen on ${hostname}:${opts.port ?? 0}: ${e.code ?? e.message}`,
          { cause: e },
        ),
      );
    });
    server.listen(opts.port ?? 0, hostname, () => {
      server.removeAllListeners("error");
      server.on("error", (e: Error) => log(`relay: server error: ${e.message}`));
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log(
    `relay: serving ${store.root} on http://${
      hostname.includes(":") ? `[${hostname}]` : hostname
    }:${port}`,
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      opts.signal?.removeEventListener("abort", onAbort);
      server.close(() => resolve());
      hashPool.close();
      for (const s of sockets) s.destroy();
    });
    return closing;
  };
  const onAbort = () => void close();
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  const clientHost = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  return {
    hostname,
    port,
    region,
    credentials,
    stats,
    config: () => ({
      accesskey: credentials.accessKey,
      secretkey: credentials.secretKey,
      host: clientHost,
      port,
      region,
      external_server: true,
      secure: false,
    }),
    close,
    [Symbol.asyncDispose]: close,
  };
}
