/**
 * The sha256 of an object, computed by the relay where the file lies when a client asks for
 * it (`x-gangplank-checksum: sha256` on a HEAD or GET), then remembered in the object's record
 * for as long as the file is the same (inode, size, mtime, ctime): the coordinator learns the
 * digest of every object a stage returned without reading it over HTTP, and a later ask costs
 * nothing. The answer is the `x-gangplank-sha256` header (hex); GET and HEAD carry it
 * whenever the record holds one.
 *
 * @module
 */

import type { IncomingMessage } from "node:http";
import type { ObjectInfo } from "./fs_store.ts";
import type { RelayCore } from "./server_core.ts";
import { S3Error } from "./s3_error.ts";

/** The request header asking for the digest, and its one accepted value. */
export const DIGEST_REQUEST = "x-gangplank-checksum";
/** The response header carrying the object's sha256 (hex). */
export const DIGEST_HEADER = "x-gangplank-sha256";

/**
 * Whether the request asks for the object's sha256; a value other than `sha256` is refused
 * (400 InvalidArgument naming the header), never ignored.
 */
export function digestRequested(req: IncomingMessage): boolean {
  const v = req.headers[DIGEST_REQUEST];
  if (v === undefined) return false;
  if (String(v).trim().toLowerCase() === "sha256") return true;
  throw new S3Error(
    400,
    "InvalidArgument",
    `${DIGEST_REQUEST}: only sha256 is supported, not ${JSON.stringify(String(v).slice(0, 40))}`,
  );
}

/**
 * The sha256 of the file `info` describes: from its record, or hashed on a worker thread and
 * recorded if the key still holds that same file afterwards (a write that replaced it
 * meanwhile keeps its own record; the answer then describes the file that was stat'ed).
 */
export function objectSha256(core: RelayCore, bucket: string, info: ObjectInfo): Promise<string> {
  if (info.meta.sha256) return Promise.resolve(info.meta.sha256);
  const { ino, mtimeMs, key } = info.meta;
  const id = `${bucket}\0${key}\0${ino}:${info.size}:${mtimeMs}:${info.ctimeMs}`;
  const { hashing } = core;
  let p = hashing.get(id);
  if (!p) {
    p = hashAndRecord(core, bucket, info).finally(() => hashing.delete(id));
    hashing.set(id, p);
  }
  return p;
}

async function hashAndRecord(core: RelayCore, bucket: string, info: ObjectInfo) {
  const { store } = core;
  const hashedFrom = Date.now();
  const { sha256 } = await core.fileHasher.hashFile(
    { path: info.path, ino: info.meta.ino },
    info.size,
  );
  if (info.folder) return sha256;
  let now: ObjectInfo;
  try {
    now = store.statObject(bucket, info.meta.key);
  } catch {
    return sha256; // deleted meanwhile
  }
  // The ctime too: a change while the file was hashed moves it, whatever else it keeps.
  const same = now.meta.ino === info.meta.ino && now.size === info.size &&
    now.meta.mtimeMs === info.meta.mtimeMs && now.ctimeMs === info.ctimeMs;
  // Deno reports ctime in whole seconds: a change later in the same second would keep it. So
  // the digest is remembered only if that second had passed before the hash began (any later
  // change then shows as a newer ctime); a file written just now is hashed again when asked.
  const settled = now.ctimeMs !== undefined && now.ctimeMs + 1000 <= hashedFrom;
  // No await from this check to the write: no relay write to the key can come between.
  if (same && settled) {
    store.writeMeta(bucket, { ...now.meta, sha256, sha256CtimeMs: now.ctimeMs });
  }
  return sha256;
}
