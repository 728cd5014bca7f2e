/**
 * Multipart uploads on disk (one directory per upload under the state directory's `uploads/`):
 * their record, copying their parts into an object, and housekeeping: aborting the uploads of
 * a revoked credential, and uploads older than a bound when the relay starts (a killed run's
 * parts would otherwise stay forever).
 *
 * @module
 */

import type { ChecksumAlgorithm } from "./checksums.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { GangplankError } from "../errors/mod.ts";

/** An upload's record (`info.json`). */
export interface UploadInfo {
  bucket: string;
  key: string;
  /** ISO 8601 time the upload was initiated. */
  initiated: string;
  contentType?: string;
  headers?: Record<string, string>;
  userMeta?: Record<string, string>;
  tags?: Record<string, string>;
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

/** Default age after which {@link abortStaleUploads} aborts an upload: 24 hours. */
export const STALE_UPLOAD_MS = 24 * 3600 * 1000;

function readInfo(dir: string): UploadInfo | undefined {
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

/** Writes the parts' bytes, in order, into a new file `dst`, yielding between chunks. */
export async function copyRanges(refs: readonly PartRange[], dst: string): Promise<void> {
  const out = fs.openSync(dst, "wx", 0o644);
  const buf = Buffer.allocUnsafe(4 << 20);
  try {
    for (const r of refs) {
      const inp = fs.openSync(r.file, "r");
      try {
        let done = 0;
        while (done < r.size) {
          const want = Math.min(buf.length, r.size - done);
          const n = fs.readSync(inp, buf, 0, want, r.offset + done);
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
