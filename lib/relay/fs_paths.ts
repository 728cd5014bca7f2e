/**
 * Keys and paths in the relay's served tree: which keys are objects (and which folders), the
 * relay's own temp names, and walking, creating and pruning the folders of a key's path one
 * `lstat` at a time, so a symlink in a bucket is never followed.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { S3Error } from "./s3_error.ts";

/** Name prefix of the relay's temp files next to objects (never objects, never listed). */
export const TMP_MARK = ".gp-relay-tmp-";

/** Random hex id. */
export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString("hex");
}

/** True if `child` is `parent` or below it (paths, no symlinks resolved). */
export function isInside(parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent.endsWith("/") ? parent : parent + "/");
}

/** True for a key that names a folder (`a/b/`): a folder marker, not a file. */
export function isFolderKey(key: string): boolean {
  return key.length > 1 && key.endsWith("/");
}

/**
 * Validates an object key and returns its path segments. Refuses keys that are empty, too
 * long, absolute, contain NUL or backslashes, empty / `.` / `..` segments, or a trailing `/`.
 */
export function keySegments(key: string): string[] {
  const bad = (why: string): never => {
    throw new S3Error(400, "InvalidArgument", `invalid object key: ${why}`);
  };
  if (key.length === 0) bad("empty");
  if (keyTooLong(key)) {
    throw new S3Error(400, "KeyTooLongError", "object key is longer than 1024 bytes");
  }
  if (key.includes("\0")) bad("contains NUL");
  if (key.includes("\\")) bad("contains a backslash");
  if (key.startsWith("/")) bad("absolute path");
  const segs = key.split("/");
  for (const s of segs) {
    const why = segmentProblem(s);
    if (why !== undefined) bad(why);
  }
  return segs;
}

/**
 * Why a name cannot be one segment of a key (a file or folder name in a bucket), or undefined
 * if it can. The listing walk asks it of every name it reads, so that every key it yields is
 * one {@link keySegments} accepts.
 */
export function segmentProblem(s: string): string | undefined {
  if (s === "") return "empty path segment (leading, trailing or double '/')";
  if (s === "." || s === "..") return "'.' or '..' segment";
  if (s.includes("\0")) return "contains NUL";
  if (s.includes("\\")) return "contains a backslash";
  // A UTF-16 unit is at most 3 UTF-8 bytes: only longer names need counting.
  if (s.length > 85 && Buffer.byteLength(s) > 255) return "path segment longer than 255 bytes";
  if (s.startsWith(TMP_MARK)) return "reserved name";
  return undefined;
}

/** True if a key is longer than S3's 1,024 bytes (of UTF-8). */
export function keyTooLong(key: string): boolean {
  return key.length > 341 && Buffer.byteLength(key) > 1024;
}

/**
 * Where the directories of a key's path stand below `dir`, checked with `lstat` step by step:
 * `ok` when every parent is a real directory, `missing` when one does not exist, `blocked`
 * when one is a symlink or not a directory. Symlinks are never followed.
 */
export function parentsOf(dir: string, segs: readonly string[]): "ok" | "missing" | "blocked" {
  let cur = dir;
  for (const s of segs.slice(0, -1)) {
    cur = path.join(cur, s);
    const st = fs.lstatSync(cur, { throwIfNoEntry: false });
    if (!st) return "missing";
    if (!st.isDirectory()) return "blocked";
  }
  return "ok";
}

/**
 * Creates the folders `segs` below `dir` (0755) one by one without following a symlink: a
 * symlink on the way is AccessDenied, an object where a folder must be is
 * XMinioParentIsObject (naming `key`).
 */
export function makeFolders(dir: string, segs: readonly string[], key: string): void {
  let cur = dir;
  for (const s of segs) {
    cur = path.join(cur, s);
    let st = fs.lstatSync(cur, { throwIfNoEntry: false });
    if (!st) {
      try {
        fs.mkdirSync(cur, { mode: 0o755 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      st = fs.lstatSync(cur);
    }
    if (st.isSymbolicLink()) {
      throw new S3Error(403, "AccessDenied", "the object's path crosses a symlink in the bucket");
    }
    if (!st.isDirectory()) {
      throw new S3Error(
        409,
        "XMinioParentIsObject",
        `'${key}' needs '${path.relative(dir, cur)}' to be a folder, but it is an object: ` +
          "a plain-file store cannot hold an object and a prefix of the same name",
      );
    }
  }
}

/** Removes `from` and its parents while they are empty, up to (not including) `dir`. */
export function removeEmptyFolders(dir: string, from: string): void {
  let d = from;
  while (d !== dir && isInside(dir, d)) {
    try {
      fs.rmdirSync(d);
    } catch {
      break;
    }
    d = path.dirname(d);
  }
}
