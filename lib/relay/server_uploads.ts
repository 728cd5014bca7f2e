/**
 * Multipart uploads on disk (one directory per upload under the state directory's `uploads/`):
 * their record (`info.json`), their parts (the `assembly` file parts sent in order are appended
 * to, and `part.<n>` files with a `part.<n>.json` record for the others), the answers of
 * completed uploads, copying bytes into a part or an object, and housekeeping: aborting the
 * uploads of a revoked credential, and uploads older than a bound when the relay starts (a
 * killed run's parts would otherwise stay forever).
 *
 * @module
 */

import { type ChecksumAlgorithm, checksummer } from "./checksums.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { GangplankError } from "../errors/mod.ts";
import type { ObjectMeta } from "./fs_store.ts";
import { S3Error } from "./s3_error.ts";
import type { Ctx } from "./server_core.ts";
import type { Principal } from "./server_access.ts";

/**
 * An upload's record (`info.json`): with the content type, stored headers, user metadata and
 * tags the object will have.
 */
export interface UploadInfo
  extends Pick<ObjectMeta, "contentType" | "headers" | "userMeta" | "tags"> {
  bucket: string;
  key: string;
  /** ISO 8601 time the upload was initiated. */
  initiated: string;
  /** The scoped access key that began the upload (absent for the root credentials). */
  owner?: string;
  /** `x-amz-checksum-algorithm` of CreateMultipartUpload: every part carries one. */
  checksumAlgorithm?: ChecksumAlgorithm;
  checksumType?: "COMPOSITE" | "FULL_OBJECT";
}

/** Where a part's bytes are: a range of a file (its own, or the upload's assembly file). */
export interface PartRange {
  file: string;
  offset: number;
  size: number;
}

/** The record of a part stored in a file of its own (`part.<n>.json` beside `part.<n>`). */
export interface PartInfo {
  etag: string;
  size: number;
  lastModified: string;
  /** The inode of `part.<n>` this record describes (a record of a file being replaced is stale). */
  ino: number;
  checksum?: string;
}

/** Parts 1..k appended in order to an upload's `assembly` file (the sequential fast path). */
export interface Assembly {
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
export interface PartRef extends PartRange {
  etag: string;
  lastModified: string;
  inAssembly: boolean;
  checksum?: string;
}

/** What a completed upload answered, for a client that repeats its Complete. */
export interface DoneRecord {
  bucket: string;
  key: string;
  etag: string;
  checksum?: ObjectMeta["checksum"];
}

/** How long the answers of completed uploads are kept: a day (S3 keeps them for a while too). */
const DONE_KEEP_MS = 24 * 3600_000;

/** An upload id as the relay makes them (and the only text that may name a directory). */
const UPLOAD_ID = /^[0-9a-f]{32}$/;

/** The error for an upload that is gone (aborted or completed) while a request used it. */
export function noSuchUpload(): S3Error {
  return new S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.");
}

/** Uploads begun with a scoped key are visible to that key and to the root credentials. */
export function visibleTo(info: UploadInfo, p: Principal): boolean {
  return p.grant === undefined || info.owner === p.accessKey;
}

/**
 * The upload a request names (`uploadId`): its directory, record and id. Refuses (404
 * NoSuchUpload) a malformed id, an upload of another bucket or key, and one its principal
 * may not see.
 */
export function findUpload(
  uploadsDir: string,
  ctx: Ctx,
): { dir: string; info: UploadInfo; id: string } {
  const id = ctx.query.get("uploadId") ?? "";
  const noSuch = () =>
    new S3Error(
      404,
      "NoSuchUpload",
      "The specified multipart upload does not exist. The upload ID may be invalid, " +
        "or the upload may have been aborted or completed.",
    );
  if (!UPLOAD_ID.test(id)) throw noSuch();
  const dir = path.join(uploadsDir, id);
  const info = readInfo(dir);
  if (info === undefined) throw noSuch();
  if (info.bucket !== ctx.bucket || info.key !== ctx.key) throw noSuch();
  if (!visibleTo(info, ctx.principal)) throw noSuch();
  return { dir, info, id };
}

/** Validates a `partNumber` query parameter: an integer from 1 to 10000. */
export function partNumber(raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 10000) {
    throw new S3Error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000");
  }
  return n;
}

/** The parts appended to an upload's assembly file so far (none when there is no record). */
export function readAssembly(dir: string): Assembly {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, "assembly.json"), "utf8")) as Assembly;
  } catch {
    return { length: 0, parts: [] };
  }
}

/** All parts of an upload; a part's own file wins over its assembly range (it is newer). */
export function readParts(dir: string): Map<number, PartRef> {
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

/**
 * The answers of completed uploads under `<stateDir>/completed/`, one `<uploadId>.json` each;
 * opening it removes answers older than a day.
 */
export class CompletedUploads {
  /** The directory of the answers. */
  readonly dir: string;

  /** Opens (and prunes) the answers kept under `stateDir`. */
  constructor(stateDir: string, now = Date.now()) {
    this.dir = path.join(stateDir, "completed");
    try {
      for (const f of fs.readdirSync(this.dir)) {
        const p = path.join(this.dir, f);
        if (now - fs.statSync(p).mtimeMs > DONE_KEEP_MS) fs.rmSync(p, { force: true });
      }
    } catch { /* none yet */ }
  }

  /** Where the answer of upload `id` is kept. */
  path(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  /** The answer kept for upload `id`, if any (`undefined` for a malformed id too). */
  read(id: string): DoneRecord | undefined {
    if (!UPLOAD_ID.test(id)) return undefined;
    try {
      return JSON.parse(fs.readFileSync(this.path(id), "utf8")) as DoneRecord;
    } catch {
      return undefined;
    }
  }
}

/** Default age after which {@link abortStaleUploads} aborts an upload: 24 hours. */
export const STALE_UPLOAD_MS = 24 * 3600 * 1000;

/** The record of the upload in `dir`, or `undefined` while it is being created or removed. */
export function readInfo(dir: string): UploadInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, "info.json"), "utf8")) as UploadInfo;
  } catch {
    return undefined;
  }
}

/** Aborts (removes) every upload begun with `accessKey`; returns how many. */
export function abortUploadsOf(uploadsDir: string, accessKey: string): number {
  let n = 0;
  for (const id of fs.readdirSync(uploadsDir)) {
    const dir = path.join(uploadsDir, id);
    if (readInfo(dir)?.owner !== accessKey) continue; // not its own, or being created/removed
    fs.rmSync(dir, { recursive: true, force: true });
    n++;
  }
  return n;
}

/**
 * Aborts (removes, with their part files) uploads initiated more than `maxAgeMs` before
 * `now`; an upload without a readable record counts from its directory's mtime. Anything in
 * `uploadsDir` that is not a directory is removed too. Returns how many uploads were removed.
 */
export function abortStaleUploads(uploadsDir: string, maxAgeMs: number, now = Date.now()): number {
  let n = 0;
  for (const e of fs.readdirSync(uploadsDir, { withFileTypes: true })) {
    const dir = path.join(uploadsDir, e.name);
    if (!e.isDirectory()) {
      fs.rmSync(dir, { force: true });
      continue;
    }
    const initiated = Date.parse(readInfo(dir)?.initiated ?? "");
    const since = Number.isNaN(initiated) ? fs.lstatSync(dir).mtimeMs : initiated;
    if (now - since <= maxAgeMs) continue;
    fs.rmSync(dir, { recursive: true, force: true });
    n++;
  }
  return n;
}

/** The checksum of a whole file, read in 4 MiB chunks, yielding between them. */
export async function fileChecksum(alg: ChecksumAlgorithm, file: string): Promise<string> {
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

/**
 * Writes the ranges' bytes, in order, into a new file `dst`, yielding between chunks; with
 * `md5` and `alg`, hashes them on the way (an MD5, the checksum of `alg`). A range shorter than
 * recorded throws `short(range)` (default: a {@link GangplankError} naming its file).
 */
export async function copyRanges(
  refs: readonly PartRange[],
  dst: string,
  opts: { md5?: boolean; alg?: ChecksumAlgorithm; short?: (r: PartRange) => Error } = {},
): Promise<{ md5?: Buffer; checksum?: string; size: number }> {
  const out = fs.openSync(dst, "wx", 0o644);
  const buf = Buffer.allocUnsafe(4 << 20);
  const md5 = opts.md5 ? createHash("md5") : undefined;
  const ck = opts.alg ? checksummer(opts.alg) : undefined;
  let size = 0;
  try {
    for (const r of refs) {
      const inp = fs.openSync(r.file, "r");
      try {
        for (let done = 0; done < r.size;) {
          const want = Math.min(buf.length, r.size - done);
          const n = fs.readSync(inp, buf, 0, want, r.offset + done);
          if (n === 0) {
            throw opts.short?.(r) ?? new GangplankError(`part data of ${r.file} is truncated`);
          }
          const c = buf.subarray(0, n);
          md5?.update(c);
          ck?.update(c);
          for (let off = 0; off < n;) off += fs.writeSync(out, c, off, n - off);
          done += n;
          size += n;
          await new Promise((res) => setImmediate(res));
        }
      } finally {
        fs.closeSync(inp);
      }
    }
  } finally {
    fs.closeSync(out);
  }
  return { md5: md5?.digest(), checksum: ck?.digest(), size };
}
