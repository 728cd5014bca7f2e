/**
 * Multipart uploads: create, upload a part (sent, or copied from an object) and abort. Parts
 * sent in order are appended straight to one assembly file, so completing the upload is a
 * rename (`server_multipart_complete.ts`); parts sent out of order or again get files of their
 * own and completion copies. Everything in flight lives in the state directory
 * (`server_uploads.ts`); the listings are in `server_multipart_list.ts`.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { etagOf } from "./server_body.ts";
import {
  abortUploadsOf,
  type Assembly,
  copyRanges,
  findUpload,
  noSuchUpload,
  type PartInfo,
  partNumber,
  readAssembly,
  type UploadInfo,
} from "./server_uploads.ts";
import { S3Error } from "./s3_error.ts";
import { randomId } from "./fs_paths.ts";
import { xmlDocument } from "./xml.ts";
import { checksumElement, partChecksum, partChecksumHeader, uploadChecksum } from "./checksums.ts";
import {
  bodyHelpers,
  copySource,
  type Ctx,
  metaFromHeaders,
  quote,
  type RelayCore,
  sendEmpty,
  sendXml,
} from "./server_core.ts";
import { requireRead } from "./server_access.ts";
import { copySourceCondition } from "./server_conditions.ts";
import { completeHandlers } from "./server_multipart_complete.ts";
import { uploadListingHandlers } from "./server_multipart_list.ts";

/** Handlers for the multipart operations. */
export function multipartHandlers(core: RelayCore) {
  const { store, appending } = core;
  const { bodyToTemp, receiveInto, writeJsonAtomic } = bodyHelpers(core);
  const uploadDir = (ctx: Ctx) => findUpload(store.uploadsDir, ctx);

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
    const ck = uploadChecksum(ctx.req.headers);
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

  /** Keeps a part in a file of its own (`part.<n>`, renamed from `tmp`) with its record. */
  function storePart(dir: string, n: number, tmp: string, part: Omit<PartInfo, "ino">) {
    const file = path.join(dir, `part.${n}`);
    try {
      fs.renameSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw noSuchUpload();
      throw e;
    }
    const record: PartInfo = { ...part, ino: fs.statSync(file).ino };
    writeJsonAtomic(path.join(dir, `part.${n}.json`), record);
  }

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
    const etag = etagOf({ md5 });
    try {
      ck = partChecksum(info.checksumAlgorithm, checksum);
      storePart(dir, n, tmp, { etag, size, lastModified: new Date().toISOString(), checksum: ck });
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    sendEmpty(ctx, 200, { etag: quote(etag), ...partChecksumHeader(info.checksumAlgorithm, ck) });
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
      const ck = partChecksum(info.checksumAlgorithm, checksum);
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
      sendEmpty(ctx, 200, { etag: quote(etag), ...partChecksumHeader(info.checksumAlgorithm, ck) });
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
    try {
      const r = await copyRanges([{ file: from.path, offset: start, size: end - start + 1 }], tmp, {
        md5: true,
        alg,
        short: () => new S3Error(409, "OperationAborted", "the source object shrank"),
      });
      const etag = r.md5!.toString("hex");
      const lastModified = new Date().toISOString();
      storePart(dir, n, tmp, { etag, size: r.size, lastModified, checksum: r.checksum });
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

  function abortUpload(ctx: Ctx) {
    const { dir } = uploadDir(ctx);
    fs.rmSync(dir, { recursive: true, force: true });
    sendEmpty(ctx, 204);
  }

  return {
    abortUploadsOf: (accessKey: string) => abortUploadsOf(store.uploadsDir, accessKey),
    initiateUpload,
    uploadPart,
    uploadPartCopy,
    abortUpload,
    ...completeHandlers(core),
    ...uploadListingHandlers(core),
  };
}
