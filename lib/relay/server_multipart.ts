/**
 * Multipart uploads. Parts sent in order are appended straight to one assembly file, so
 * completing the upload is a rename; parts sent out of order or again get files of their
 * own and completion copies. Everything in flight lives in the state directory.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { etagOf } from "./server_body.ts";
import { abortUploadsOf, copyRanges, type UploadInfo } from "./server_uploads.ts";
import { randomId, S3Error } from "./fs_store.ts";
import { uriEncode } from "./sigv4.ts";
import { elements, text, xmlDocument, type XmlNode } from "./xml.ts";
import {
  bodyHelpers,
  type Ctx,
  metaFromHeaders,
  MIN_PART,
  OWNER,
  quote,
  type RelayCore,
  sendEmpty,
  sendXml,
  unquote,
  writePreconditions,
} from "./server_core.ts";
import type { Principal } from "./server_access.ts";

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

/** Handlers for the multipart operations. */
export function multipartHandlers(core: RelayCore) {
  const { store, appending } = core;
  const { bodyToTemp, receiveInto, writeJsonAtomic } = bodyHelpers(core);

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
    if (!visibleTo(info, ctx.principal)) throw noSuch();
    return { dir, info, id };
  }

  /** Uploads begun with a scoped key are visible to that key and to the root credentials. */
  function visibleTo(info: UploadInfo, p: Principal): boolean {
    return p.grant === undefined || info.owner === p.accessKey;
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
    if (ctx.principal.grant) info.owner = ctx.principal.accessKey;
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
    const etag = etagOf({ md5 });
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
      const etag = etagOf({ md5 });
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
      // S3's formula for MD5 part ETags; an opaque part ETag (see etagOf) enters as its text.
      md5s.push(/^[0-9a-f]{32}$/.test(p.etag) ? Buffer.from(p.etag, "hex") : Buffer.from(p.etag));
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
        // No await from the check to the metadata write: atomic for every writer of the key.
        writePreconditions(store, ctx, info.bucket, info.key);
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
        if (!fs.existsSync(dir)) throw noSuchUpload(); // aborted (or revoked) meanwhile
        writePreconditions(store, ctx, info.bucket, info.key);
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
        if (!visibleTo(info, ctx.principal)) continue;
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

  return {
    abortUploadsOf: (accessKey: string) => abortUploadsOf(store.uploadsDir, accessKey),
    initiateUpload,
    uploadPart,
    completeUpload,
    abortUpload,
    listParts,
    listUploads,
  };
}
