/**
 * Object handlers: PutObject, GetObject/HeadObject (with Range), CopyObject, tagging and
 * multi-object delete.
 *
 * @module
 */

import * as fs from "node:fs";
import type * as http from "node:http";
import { etagOf } from "./server_body.ts";
import { copySourceCondition, readCondition } from "./server_conditions.ts";
import type { ObjectInfo, ObjectMeta } from "./fs_store.ts";
import { S3Error } from "./s3_error.ts";
import { isFolderKey } from "./fs_paths.ts";
import { childElements, childText, parseXmlBody, xmlDocument, type XmlNode } from "./xml.ts";
import {
  bodyHelpers,
  checksumHeaders,
  checkTags,
  copySource,
  type Ctx,
  httpDate,
  isoDate,
  metaFromHeaders,
  quote,
  type RelayCore,
  sendEmpty,
  sendXml,
  toWire,
  unquote,
  writePreconditions,
} from "./server_core.ts";
import { accessDenied, requireRead, writeRefusal } from "./server_access.ts";
import { DIGEST_HEADER, digestRequested, objectSha256 } from "./server_digest.ts";

const RESPONSE_OVERRIDES = [
  "content-type",
  "content-language",
  "expires",
  "cache-control",
  "content-disposition",
  "content-encoding",
];

/** Handlers for single-object operations. */
export function objectHandlers(core: RelayCore) {
  const { store, stats } = core;
  const { bodyToTemp } = bodyHelpers(core);

  // ---- objects -------------------------------------------------------------------------------

  async function putObject(ctx: Ctx) {
    const bucket = ctx.bucket!;
    const key = ctx.key!;
    const folder = isFolderKey(key);
    // Validate key and bucket before reading the body.
    store.objectPath(bucket, folder ? key.slice(0, -1) : key);
    const meta = metaFromHeaders(ctx.req);
    const { tmp, md5, checksum, size } = await bodyToTemp(ctx);
    if (folder) {
      // A folder in the tree; content, if any, is kept in the state directory.
      try {
        writePreconditions(store, ctx, bucket, key);
        const m = store.markers.put(bucket, { key, etag: etagOf({ md5 }), ...meta, checksum }, {
          tmp,
          size,
        });
        return sendEmpty(ctx, 200, { etag: quote(m.etag), ...checksumHeaders(checksum) });
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    }
    try {
      // No await from the check to the metadata write: atomic for every writer of the key.
      writePreconditions(store, ctx, bucket, key);
      store.commit(bucket, key, tmp);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    const etag = etagOf({ md5 });
    store.writeMeta(bucket, { key, etag, ...meta, checksum });
    sendEmpty(ctx, 200, { etag: quote(etag), ...checksumHeaders(checksum) });
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
    for (const [k, v] of Object.entries(h)) if (typeof v === "string") h[k] = toWire(v);
    if (info.meta.sha256) h[DIGEST_HEADER] = info.meta.sha256;
    const nTags = Object.keys(info.meta.tags ?? {}).length;
    if (nTags > 0) h["x-amz-tagging-count"] = nTags;
    return h;
  }

  async function getObject(ctx: Ctx, head: boolean) {
    const info = store.statObject(ctx.bucket!, ctx.key!);
    const headers = objectHeaders(info);
    if (digestRequested(ctx.req)) {
      headers[DIGEST_HEADER] = await objectSha256(core, ctx.bucket!, info);
    }
    // response-* query parameters override response headers (presigned downloads use them).
    for (const h of RESPONSE_OVERRIDES) {
      const v = ctx.query.get(`response-${h}`);
      if (v !== undefined) headers[h] = toWire(v);
    }
    const req = ctx.req;
    if (readCondition(req, { etag: info.meta.etag, mtime: info.mtime }) === "not-modified") {
      return sendEmpty(ctx, 304, {
        etag: quote(info.meta.etag),
        "last-modified": httpDate(info.mtime),
      });
    }
    let start = 0;
    let end = info.size - 1;
    let status = 200;
    const range = req.headers["range"];
    const partNumber = ctx.query.get("partNumber");
    const wantChecksum = String(req.headers["x-amz-checksum-mode"] ?? "").toUpperCase() ===
      "ENABLED";
    if (partNumber !== undefined) {
      // One part of a multipart object (a plain object is its own part 1).
      if (typeof range === "string") {
        throw new S3Error(400, "InvalidRequest", "Cannot specify both Range header and partNumber");
      }
      const n = Number(partNumber);
      const parts = info.meta.parts ?? [{ size: info.size }];
      if (!Number.isInteger(n) || n < 1 || n > 10000) {
        throw new S3Error(400, "InvalidArgument", "Part number must be an integer from 1 to 10000");
      }
      if (n > parts.length) {
        throw new S3Error(400, "InvalidPart", "The requested partnumber is not satisfiable");
      }
      for (let i = 0; i < n - 1; i++) start += parts[i].size;
      end = start + parts[n - 1].size - 1;
      if (info.meta.parts) {
        status = 206;
        headers["x-amz-mp-parts-count"] = parts.length;
        if (parts[n - 1].size > 0) headers["content-range"] = `bytes ${start}-${end}/${info.size}`;
        const pc = parts[n - 1].checksum;
        if (wantChecksum && pc && info.meta.checksum) {
          headers[`x-amz-checksum-${info.meta.checksum.algorithm}`] = pc;
        }
      } else if (wantChecksum) Object.assign(headers, checksumHeaders(info.meta.checksum));
    } else if (wantChecksum && typeof range !== "string") {
      Object.assign(headers, checksumHeaders(info.meta.checksum));
    }
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
    const length = info.size === 0 ? 0 : Math.max(0, end - start + 1);
    headers["content-length"] = length;
    headers["x-amz-request-id"] = ctx.requestId;
    const res = ctx.res;
    if (head || length === 0) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const fd = store.openObject(info);
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
    const { bucket: srcBucket, key: srcKey } = copySource(ctx.req);
    const dstBucket = ctx.bucket!;
    const dstKey = ctx.key!;
    requireRead(ctx.principal, srcBucket, srcKey);
    store.objectPath(dstBucket, dstKey);
    const info = store.statObject(srcBucket, srcKey);
    const directive = String(ctx.req.headers["x-amz-metadata-directive"] ?? "COPY").toUpperCase();
    const tagDirective = String(ctx.req.headers["x-amz-tagging-directive"] ?? "COPY")
      .toUpperCase();
    if (directive !== "COPY" && directive !== "REPLACE") {
      throw new S3Error(400, "InvalidArgument", "Unknown metadata directive.");
    }
    copySourceCondition(ctx.req, { etag: info.meta.etag, mtime: info.mtime });
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
    // Same bytes, same full-object checksum (a composite one describes the source's parts).
    if (info.meta.checksum?.type !== "COMPOSITE") base.checksum = info.meta.checksum;
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
      writePreconditions(store, ctx, dstBucket, dstKey);
      etag = info.meta.etag;
    } else {
      const tmp = store.tempPath();
      try {
        // Same bytes: an MD5 ETag stays valid; an opaque one is replaced by a fresh one.
        await copyFile(store.openObject(info), tmp);
        etag = /^[0-9a-f]{32}$/.test(info.meta.etag) ? info.meta.etag : etagOf({});
        writePreconditions(store, ctx, dstBucket, dstKey);
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

  /** Copies an open file (closed afterwards) into a new file `dst`, yielding between chunks. */
  async function copyFile(inp: number, dst: string): Promise<void> {
    let out: number | undefined;
    const buf = Buffer.allocUnsafe(4 << 20);
    try {
      out = fs.openSync(dst, "wx", 0o644);
      for (;;) {
        const n = fs.readSync(inp, buf, 0, buf.length, null);
        if (n === 0) break;
        let off = 0;
        while (off < n) off += fs.writeSync(out, buf, off, n - off);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      fs.closeSync(inp);
      if (out !== undefined) fs.closeSync(out);
    }
  }

  /** GetObjectAttributes (`GET ?attributes`, `x-amz-object-attributes: ETag,Checksum,...`). */
  function getAttributes(ctx: Ctx) {
    const info = store.statObject(ctx.bucket!, ctx.key!);
    const asked = new Set(
      String(ctx.req.headers["x-amz-object-attributes"] ?? "").split(",").map((a) => a.trim())
        .filter((a) => a !== ""),
    );
    const known = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"];
    const unknown = [...asked].find((a) => !known.includes(a));
    if (asked.size === 0 || unknown !== undefined) {
      throw new S3Error(
        400,
        "InvalidArgument",
        `Invalid attribute name specified: ${unknown ?? "(none)"}`,
      );
    }
    const marker = intHeader(ctx, "x-amz-part-number-marker", 0);
    const maxParts = Math.min(intHeader(ctx, "x-amz-max-parts", 1000), 1000);
    const body: XmlNode = {};
    if (asked.has("ETag")) body.ETag = info.meta.etag;
    const ck = info.meta.checksum;
    if (asked.has("Checksum") && ck) {
      body.Checksum = {
        [`Checksum${ck.algorithm.toUpperCase()}`]: ck.value,
        ChecksumType: ck.type,
      };
    }
    const parts = info.meta.parts;
    if (asked.has("ObjectParts") && parts) {
      const page = parts.map((p, i) => ({ n: i + 1, ...p })).filter((p) => p.n > marker)
        .slice(0, maxParts);
      const truncated = page.length > 0 && page[page.length - 1].n < parts.length;
      body.ObjectParts = {
        // The wire name (botocore and MinIO); the API reference calls it TotalPartsCount.
        PartsCount: parts.length,
        PartNumberMarker: marker,
        ...(truncated ? { NextPartNumberMarker: page[page.length - 1].n } : {}),
        MaxParts: maxParts,
        IsTruncated: truncated,
        Part: page.map((p) => ({
          PartNumber: p.n,
          Size: p.size,
          ...(p.checksum && ck ? { [`Checksum${ck.algorithm.toUpperCase()}`]: p.checksum } : {}),
        })),
      };
    }
    if (asked.has("StorageClass")) body.StorageClass = "STANDARD";
    if (asked.has("ObjectSize")) body.ObjectSize = info.size;
    sendXml(ctx, 200, xmlDocument("GetObjectAttributesResponse", body), {
      "last-modified": httpDate(info.mtime),
    });
  }

  function intHeader(ctx: Ctx, name: string, dflt: number): number {
    const raw = ctx.req.headers[name];
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!/^\d+$/.test(String(raw).trim()) || !Number.isSafeInteger(n)) {
      throw new S3Error(400, "InvalidArgument", `${name} must be a non-negative integer`);
    }
    return n;
  }

  // ---- tagging ---------------------------------------------------------------------------

  function getTagging(ctx: Ctx) {
    const info = store.statObject(ctx.bucket!, ctx.key!);
    const tags = Object.entries(info.meta.tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
    sendXml(ctx, 200, xmlDocument("Tagging", { TagSet: { Tag: tags } }));
  }

  function putTagging(ctx: Ctx, body: string) {
    const doc = parseXmlBody(body, "Tagging");
    const pairs: [string, string][] = childElements(doc, "TagSet")
      .flatMap((set) => childElements(set, "Tag"))
      .map((t) => [childText(t, "Key") ?? "", childText(t, "Value") ?? ""]);
    putTaggingValues(ctx, checkTags(pairs), 200);
  }

  function putTaggingValues(ctx: Ctx, tags: Record<string, string>, status: number) {
    writePreconditions(store, ctx, ctx.bucket!, ctx.key!, { ifNoneMatch: false });
    const info = store.statObject(ctx.bucket!, ctx.key!);
    const { ino: _i, size: _s, mtimeMs: _m, ...rest } = info.meta;
    store.writeMeta(ctx.bucket!, { ...rest, tags });
    sendEmpty(ctx, status);
  }

  // ---- multi-object delete ---------------------------------------------------------------

  function deleteObjects(ctx: Ctx, body: string) {
    store.existingBucket(ctx.bucket!);
    const doc = parseXmlBody(body, "Delete");
    const quiet = childText(doc, "Quiet")?.trim() === "true";
    const objs = childElements(doc, "Object");
    if (objs.length > 1000) {
      throw new S3Error(400, "MalformedXML", "at most 1000 objects can be deleted at once");
    }
    const deleted: XmlNode[] = [];
    const errors: XmlNode[] = [];
    for (const o of objs) {
      const key = childText(o, "Key") ?? "";
      const etag = childText(o, "ETag");
      const version = childText(o, "VersionId");
      try {
        const why = writeRefusal(ctx.principal, ctx.bucket!, key, etag !== undefined, false);
        if (why !== undefined) throw accessDenied(why);
        if (etag !== undefined) {
          const current = store.statObject(ctx.bucket!, key).meta.etag;
          if (unquote(etag) !== current) {
            throw new S3Error(412, "PreconditionFailed", "the object's ETag does not match");
          }
        }
        if (version !== undefined && version !== "null") {
          throw new S3Error(400, "InvalidArgument", "Invalid version id specified");
        }
        store.deleteObject(ctx.bucket!, key);
        if (!quiet) {
          deleted.push({ Key: key, ...(version !== undefined ? { VersionId: version } : {}) });
        }
      } catch (e) {
        const err = e instanceof S3Error ? e : new S3Error(500, "InternalError", "delete failed");
        errors.push({ Key: key, Code: err.code, Message: err.message });
      }
    }
    sendXml(ctx, 200, xmlDocument("DeleteResult", { Deleted: deleted, Error: errors }));
  }

  /** DeleteObject, honouring `If-Match` (S3's conditional delete). */
  function deleteObject(ctx: Ctx) {
    writePreconditions(store, ctx, ctx.bucket!, ctx.key!, { ifNoneMatch: false });
    store.deleteObject(ctx.bucket!, ctx.key!);
    sendEmpty(ctx, 204);
  }

  return {
    deleteObject,
    putObject,
    getAttributes,
    getObject,
    copyObject,
    getTagging,
    putTagging,
    putTaggingValues,
    deleteObjects,
  };
}
