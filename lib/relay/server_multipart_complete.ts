/**
 * CompleteMultipartUpload: checks the listed parts against those uploaded, computes the
 * multipart ETag and the object's checksum, and commits the object (a rename of the assembly
 * file when every part was appended in order, a copy of the parts otherwise). A Complete
 * repeated after success gets the same answer again.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import {
  CompletedUploads,
  copyRanges,
  type DoneRecord,
  fileChecksum,
  findUpload,
  noSuchUpload,
  type PartRef,
  readAssembly,
  readParts,
  type UploadInfo,
} from "./server_uploads.ts";
import type { ObjectMeta } from "./fs_store.ts";
import { S3Error } from "./s3_error.ts";
import { childElements, childText, parseXmlBody, xmlDocument } from "./xml.ts";
import {
  badDigest,
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  checksumElement,
  compositeChecksum,
} from "./checksums.ts";
import {
  bodyHelpers,
  checksumHeaders,
  type Ctx,
  MIN_PART,
  quote,
  type RelayCore,
  sendXml,
  unquote,
  writePreconditions,
} from "./server_core.ts";

/** One part as a CompleteMultipartUpload body lists it. */
interface ListedPart {
  n: number;
  etag: string;
  checksum?: string;
}

/** The handler of CompleteMultipartUpload. */
export function completeHandlers(core: RelayCore) {
  const { store, appending } = core;
  const { writeJsonAtomic } = bodyHelpers(core);
  const completed = new CompletedUploads(store.stateDir);

  /**
   * A Complete repeated after success (a client retrying after a lost response) gets the same
   * answer, as in S3, while the object is still the one that upload made.
   */
  function repeatedComplete(ctx: Ctx): boolean {
    const done = completed.read(ctx.query.get("uploadId") ?? "");
    if (done === undefined) return false;
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
      up = findUpload(store.uploadsDir, ctx);
    } catch (e) {
      if (e instanceof S3Error && e.code === "NoSuchUpload" && repeatedComplete(ctx)) return;
      throw e;
    }
    const { dir, info, id } = up;
    if (appending.has(id)) {
      throw new S3Error(409, "OperationAborted", "a part of this upload is still being written");
    }
    const alg = info.checksumAlgorithm;
    const refs = chosenParts(listedParts(body, alg), readParts(dir), alg);
    const md5s = refs.map((p) =>
      // S3's formula for MD5 part ETags; an opaque part ETag (see etagOf) enters as its text.
      /^[0-9a-f]{32}$/.test(p.etag) ? Buffer.from(p.etag, "hex") : Buffer.from(p.etag)
    );
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
    fs.mkdirSync(completed.dir, { recursive: true, mode: 0o700 });
    writeJsonAtomic(completed.path(id), done);
    fs.rmSync(dir, { recursive: true, force: true });
    sendComplete(ctx, done);
  }

  return { completeUpload };
}

/**
 * The parts a CompleteMultipartUpload body lists, in ascending order; a part listed twice in a
 * row (sent twice, both answers kept) counts once: the last entry.
 */
function listedParts(body: string, alg: ChecksumAlgorithm | undefined): ListedPart[] {
  const doc = parseXmlBody(body, "CompleteMultipartUpload");
  const listed = childElements(doc, "Part").map((p) => ({
    n: Number(childText(p, "PartNumber")?.trim()),
    etag: unquote(childText(p, "ETag") ?? ""),
    checksum: alg ? childText(p, checksumElement(alg))?.trim() : undefined,
  }));
  if (listed.length === 0) {
    throw new S3Error(400, "MalformedXML", "CompleteMultipartUpload lists no parts");
  }
  const requested: ListedPart[] = [];
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
  return requested;
}

/**
 * The uploaded parts the listed ones name, checked: each must exist with the listed ETag (and
 * checksum, when listed), carry a checksum when the upload has one, and all but the last be
 * at least {@link MIN_PART} bytes.
 */
function chosenParts(
  requested: readonly ListedPart[],
  parts: ReadonlyMap<number, PartRef>,
  alg: ChecksumAlgorithm | undefined,
): PartRef[] {
  return requested.map((r, i) => {
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
    return p;
  });
}
