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
import { type ObjectMeta, randomId, S3Error } from "./fs_store.ts";
import { uriEncode } from "./sigv4.ts";
import { childElements, childText, parseXmlBody, xmlDocument, type XmlNode } from "./xml.ts";
import {
  badDigest,
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  checksumAlgorithm,
  checksummer,
  compositeChecksum,
} from "./checksums.ts";
import {
  bodyHelpers,
  checksumHeaders,
  copySource,
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
import { type Principal, requireRead } from "./server_access.ts";
import { copySourceCondition } from "./server_conditions.ts";

interface PartInfo {
  etag: string;
  size: number;
  lastModified: string;
  ino: number;
  checksum?: string;
}

/** What a completed upload answered, for a client that repeats its Complete. */
interface DoneRecord {
  bucket: string;
  key: string;
  etag: string;
  checksum?: ObjectMeta["checksum"];
}

/** Parts 1..k appended in order to an upload's `assembly` file (the sequential fast path). */
interface Assembly {
  length: number;
  parts: {
    n: number;
    etag: string;
    size: number;
    lastModified: string;
    offset: number;
    checksum?: string;
  }[];
}

/** Where a part's bytes are: its own file, or a range of the assembly file. */
interface PartRef {
  etag: string;
  size: number;
  lastModified: string;
  file: string;
  offset: number;
  inAssembly: boolean;
  checksum?: string;
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
    const ck = uploadChecksum(ctx);
    if (ck) Object.assign(info, ck);
    writeJsonAtomic(path.join(dir, "info.json"), info);
    sendXml(
      ctx,
      200,
      xmlDocument("InitiateMultipartUploadResult", { Bucket: bucket, Key: key, UploadId: id }),
      ck
        ? {
          "x-amz-checksum-algorithm": ck.checksumAlgorithm.toUpperCase(),
          "x-amz-checksum-type": ck.checksumType,
        }
        : {},
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
    const { dir, id, info } = uploadDir(ctx);
    const asm = readAssembly(dir);
    if (!appending.has(id) && n === asm.parts.length + 1) {
      return await appendPart(ctx, dir, id, n, asm, info);
    }
    // Out of order, repeated or concurrent: the part gets a file of its own.
    const { tmp, md5, size, checksum } = await bodyToTemp(ctx);
    let ck: string | undefined;
    try {
      ck = partChecksum(info, checksum);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
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
      checksum: ck,
    };
    writeJsonAtomic(path.join(dir, `part.${n}.json`), part);
    sendEmpty(ctx, 200, { etag: quote(etag), ...partChecksumHeader(info, ck) });
  }

  /**
   * The next part in sequence is appended straight to the upload's assembly file, so that
   * completing an upload sent in order (what npm:minio and most clients do) is a rename.
   */
  async function appendPart(
    ctx: Ctx,
    dir: string,
    id: string,
    n: number,
    asm: Assembly,
    info: UploadInfo,
  ) {
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
      const { md5, size, checksum } = await receiveInto(ctx, fd, asm.length);
      fs.closeSync(fd);
      fd = undefined;
      const ck = partChecksum(info, checksum);
      const etag = etagOf({ md5 });
      asm.parts.push({
        n,
        etag,
        size,
        lastModified: new Date().toISOString(),
        offset: asm.length,
        checksum: ck,
      });
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
      sendEmpty(ctx, 200, { etag: quote(etag), ...partChecksumHeader(info, ck) });
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

  /**
   * UploadPartCopy: bytes of an existing object (all, or `x-amz-copy-source-range`) become a
   * part, stored in a file of its own.
   */
  async function uploadPartCopy(ctx: Ctx) {
    const n = partNumber(ctx.query.get("partNumber"));
    const { dir, info } = uploadDir(ctx);
    const src = copySource(ctx.req);
    requireRead(ctx.principal, src.bucket, src.key);
    const from = store.statObject(src.bucket, src.key);
    copySourceCondition(ctx.req, { etag: from.meta.etag, mtime: from.mtime });
    let start = 0;
    let end = from.size - 1;
    const range = ctx.req.headers["x-amz-copy-source-range"];
    if (range !== undefined) {
      const m = /^bytes=(\d+)-(\d+)$/.exec(String(range).trim());
      if (!m || Number(m[2]) < Number(m[1])) {
        throw new S3Error(
          400,
          "InvalidArgument",
          "The x-amz-copy-source-range value must be of the form bytes=first-last where first " +
            "and last are the zero-based offsets of the first and last bytes to copy",
        );
      }
      start = Number(m[1]);
      end = Number(m[2]);
      if (end >= from.size) {
        throw new S3Error(400, "InvalidRange", "The requested range is not satisfiable", {
          "content-range": `bytes */${from.size}`,
        });
      }
    }
    const tmp = store.tempPath();
    const alg = info.checksumAlgorithm;
    let r: { md5: Buffer; checksum?: string; size: number };
    try {
      r = await copyRange(from.path, start, end - start + 1, tmp, alg);
      const file = path.join(dir, `part.${n}`);
      try {
        fs.renameSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") throw noSuchUpload();
        throw e;
      }
      const etag = r.md5.toString("hex");
      const lastModified = new Date().toISOString();
      const part: PartInfo = {
        etag,
        size: r.size,
        lastModified,
        ino: fs.statSync(file).ino,
        checksum: r.checksum,
      };
      writeJsonAtomic(path.join(dir, `part.${n}.json`), part);
      sendXml(
        ctx,
        200,
        xmlDocument("CopyPartResult", {
          ETag: quote(etag),
          LastModified: lastModified.replace(/\.\d{3}Z$/, ".000Z"),
          ...(alg && r.checksum ? { [checksumElement(alg)]: r.checksum } : {}),
        }),
      );
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Copies `length` bytes of `src` from `start` into a new file, with their MD5 (+ checksum). */
  async function copyRange(
    src: string,
    start: number,
    length: number,
    dst: string,
    alg: ChecksumAlgorithm | undefined,
  ): Promise<{ md5: Buffer; checksum?: string; size: number }> {
    const out = fs.openSync(dst, "wx", 0o644);
    const inp = fs.openSync(src, "r");
    const buf = Buffer.allocUnsafe(4 << 20);
    const md5 = createHash("md5");
    const ck = alg ? checksummer(alg) : undefined;
    let done = 0;
    try {
      while (done < length) {
        const n = fs.readSync(inp, buf, 0, Math.min(buf.length, length - done), start + done);
        if (n === 0) throw new S3Error(409, "OperationAborted", "the source object shrank");
        const c = buf.subarray(0, n);
        md5.update(c);
        ck?.update(c);
        let off = 0;
        while (off < n) off += fs.writeSync(out, c, off, n - off);
        done += n;
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      fs.closeSync(inp);
      fs.closeSync(out);
    }
    return { md5: md5.digest(), checksum: ck?.digest(), size: done };
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
          checksum: p.checksum,
        });
      } catch { /* half-written part */ }
    }
    return parts;
  }

  /** Where a completed upload's answer is kept, for a repeated Complete. */
  const doneDir = path.join(store.stateDir, "completed");
  function donePath(id: string): string {
    return path.join(doneDir, `${id}.json`);
  }
  // Answers to completed uploads are kept a day (S3 keeps them for a while too).
  try {
    for (const f of fs.readdirSync(doneDir)) {
      const p = path.join(doneDir, f);
      if (Date.now() - fs.statSync(p).mtimeMs > 24 * 3600_000) fs.rmSync(p, { force: true });
    }
  } catch { /* none yet */ }

  /**
   * A Complete repeated after success (a client retrying after a lost response) gets the same
   * answer, as in S3, while the object is still the one that upload made.
   */
  function repeatedComplete(ctx: Ctx): boolean {
    const id = ctx.query.get("uploadId") ?? "";
    if (!/^[0-9a-f]{32}$/.test(id)) return false;
    let done: DoneRecord;
    try {
      done = JSON.parse(fs.readFileSync(donePath(id), "utf8")) as DoneRecord;
    } catch {
      return false;
    }
    if (done.bucket !== ctx.bucket || done.key !== ctx.key) return false;
    try {
      if (store.statObject(done.bucket, done.key).meta.etag !== done.etag) return false;
    } catch {
      return false;
    }
    sendComplete(ctx, done);
    return true;
  }

  function sendComplete(ctx: Ctx, done: DoneRecord) {
    const ck = done.checksum;
    sendXml(
      ctx,
      200,
      xmlDocument("CompleteMultipartUploadResult", {
        Location: `/${done.bucket}/${done.key}`,
        Bucket: done.bucket,
        Key: done.key,
        ETag: quote(done.etag),
        ...(ck ? { [checksumElement(ck.algorithm)]: ck.value, ChecksumType: ck.type } : {}),
      }),
      checksumHeaders(ck),
    );
  }

  async function completeUpload(ctx: Ctx, body: string) {
    let up: { dir: string; info: UploadInfo; id: string };
    try {
      up = uploadDir(ctx);
    } catch (e) {
      if (e instanceof S3Error && e.code === "NoSuchUpload" && repeatedComplete(ctx)) return;
      throw e;
    }
    const { dir, info, id } = up;
    if (appending.has(id)) {
      throw new S3Error(409, "OperationAborted", "a part of this upload is still being written");
    }
    const alg = info.checksumAlgorithm;
    const doc = parseXmlBody(body, "CompleteMultipartUpload");
    const listed = childElements(doc, "Part").map((p) => ({
      n: Number(childText(p, "PartNumber")?.trim()),
      etag: unquote(childText(p, "ETag") ?? ""),
      checksum: alg ? childText(p, checksumElement(alg))?.trim() : undefined,
    }));
    if (listed.length === 0) {
      throw new S3Error(400, "MalformedXML", "CompleteMultipartUpload lists no parts");
    }
    // A part listed twice in a row (sent twice, both answers kept) counts once: the last entry.
    const requested: typeof listed = [];
    let prev = 0;
    for (const r of listed) {
      if (!Number.isInteger(r.n) || r.n < prev || r.n < 1) {
        throw new S3Error(
          400,
          "InvalidPartOrder",
          "The list of parts was not in ascending order. Parts must be ordered by part number.",
        );
      }
      if (r.n === prev) requested.pop();
      requested.push(r);
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
      // A part listed without its checksum is taken as uploaded; one listed must match.
      if (alg && p.checksum === undefined) throw badDigest(alg);
      if (alg && r.checksum !== undefined && r.checksum !== p.checksum) {
        throw new S3Error(
          400,
          "InvalidPart",
          `The ${alg.toUpperCase()} of part ${r.n} does not match the part uploaded.`,
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
    const composite = alg && info.checksumType !== "FULL_OBJECT"
      ? compositeChecksum(alg, refs.map((r) => r.checksum!))
      : undefined;
    const wanted = alg
      ? ctx.req.headers[`x-amz-checksum-${alg}`]
      : CHECKSUM_ALGORITHMS.find((a) => ctx.req.headers[`x-amz-checksum-${a}`] !== undefined);
    if (!alg && wanted !== undefined) {
      throw new S3Error(400, "InvalidRequest", "the upload was created without a checksum");
    }
    if (alg && composite !== undefined && wanted !== undefined && String(wanted) !== composite) {
      throw badDigest(alg);
    }
    const asm = readAssembly(dir);
    const asmFile = path.join(dir, "assembly");
    const whole = refs.length === asm.parts.length &&
      refs.every((r, i) => r.inAssembly && r.offset === asm.parts[i].offset);
    const tmp = store.tempPath();
    let checksum: ObjectMeta["checksum"];
    try {
      if (whole) {
        fs.truncateSync(asmFile, asm.length);
        fs.renameSync(asmFile, tmp);
      } else {
        await copyRanges(refs, tmp);
        if (!fs.existsSync(dir)) throw noSuchUpload(); // aborted (or revoked) meanwhile
      }
      if (alg) {
        // A full-object checksum needs one more pass over the object.
        const value = composite ?? await fileChecksum(alg, tmp);
        if (composite === undefined && wanted !== undefined && String(wanted) !== value) {
          if (whole) fs.renameSync(tmp, asmFile); // keep the upload completable
          throw badDigest(alg);
        }
        checksum = {
          algorithm: alg,
          value,
          type: composite !== undefined ? "COMPOSITE" : "FULL_OBJECT",
        };
      }
      // No await from the check to the metadata write: atomic for every writer of the key.
      try {
        writePreconditions(store, ctx, info.bucket, info.key);
        store.commit(info.bucket, info.key, tmp);
      } catch (e) {
        if (whole && fs.existsSync(tmp)) fs.renameSync(tmp, asmFile); // keep it completable
        throw e;
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
      checksum,
      parts: refs.map((
        r,
      ) => (r.checksum ? { size: r.size, checksum: r.checksum } : { size: r.size })),
    });
    const done: DoneRecord = { bucket: info.bucket, key: info.key, etag, checksum };
    fs.mkdirSync(doneDir, { recursive: true, mode: 0o700 });
    writeJsonAtomic(donePath(id), done);
    fs.rmSync(dir, { recursive: true, force: true });
    sendComplete(ctx, done);
  }

  /** The checksum of a whole file, read in 4 MiB chunks, yielding between them. */
  async function fileChecksum(alg: ChecksumAlgorithm, file: string): Promise<string> {
    const c = checksummer(alg);
    const fd = fs.openSync(file, "r");
    const buf = Buffer.allocUnsafe(4 << 20);
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        c.update(buf.subarray(0, n));
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      fs.closeSync(fd);
    }
    return c.digest();
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
    uploadPartCopy,
    completeUpload,
    abortUpload,
    listParts,
    listUploads,
  };
}

/** The checksum an upload is created with (`x-amz-checksum-algorithm`, `x-amz-checksum-type`). */
function uploadChecksum(
  ctx: Ctx,
): { checksumAlgorithm: ChecksumAlgorithm; checksumType: "COMPOSITE" | "FULL_OBJECT" } | undefined {
  const raw = ctx.req.headers["x-amz-checksum-algorithm"];
  const rawType = ctx.req.headers["x-amz-checksum-type"];
  if (raw === undefined) {
    if (rawType !== undefined) {
      throw new S3Error(
        400,
        "InvalidRequest",
        "x-amz-checksum-type needs x-amz-checksum-algorithm",
      );
    }
    return undefined;
  }
  const alg = checksumAlgorithm(String(raw));
  if (!alg) {
    throw new S3Error(400, "InvalidRequest", "Checksum algorithm provided is unsupported.");
  }
  const type = rawType === undefined
    ? (alg === "crc64nvme" ? "FULL_OBJECT" : "COMPOSITE")
    : String(rawType).toUpperCase();
  if (type !== "COMPOSITE" && type !== "FULL_OBJECT") {
    throw new S3Error(400, "InvalidRequest", "Value for x-amz-checksum-type header is invalid.");
  }
  if (type === "COMPOSITE" && alg === "crc64nvme") {
    throw new S3Error(
      400,
      "InvalidRequest",
      "CRC64NVME supports only the FULL_OBJECT checksum type.",
    );
  }
  if (type === "FULL_OBJECT" && (alg === "sha1" || alg === "sha256")) {
    throw new S3Error(
      400,
      "InvalidRequest",
      `${alg.toUpperCase()} supports only the COMPOSITE checksum type.`,
    );
  }
  return { checksumAlgorithm: alg, checksumType: type };
}

/** A part's checksum, which must be of the upload's algorithm when it has one. */
function partChecksum(
  info: UploadInfo,
  got: { algorithm: ChecksumAlgorithm; value: string } | undefined,
): string | undefined {
  if (!got) return undefined;
  if (info.checksumAlgorithm && got.algorithm !== info.checksumAlgorithm) {
    throw new S3Error(
      400,
      "InvalidRequest",
      `Checksum Type mismatch occurred, expected checksum Type: ${info.checksumAlgorithm}, ` +
        `actual checksum Type: ${got.algorithm}`,
    );
  }
  return info.checksumAlgorithm ? got.value : undefined;
}

function partChecksumHeader(info: UploadInfo, value: string | undefined): Record<string, string> {
  return info.checksumAlgorithm && value
    ? { [`x-amz-checksum-${info.checksumAlgorithm}`]: value }
    : {};
}

/** The XML element of a checksum: `ChecksumCRC32`, `ChecksumCRC64NVME`, `ChecksumSHA256`. */
export function checksumElement(alg: string): string {
  return `Checksum${alg.toUpperCase()}`;
}
