/**
 * Gangplank's file stamps: the upload time in UTC unix nanoseconds, kept in user metadata (or,
 * for objects Gangplank wrote, in a tag), and the "is the local file newer" check.
 *
 * @module
 */
import * as fsp from "node:fs/promises";
import { StoreError } from "../store_errors.ts";
import { localFileError, type Transport } from "./transport.ts";
import { stat } from "./objects.ts";
import type { ObjectStat } from "./types.ts";

/**
 * User-metadata name of the upload stamp (`x-amz-meta-gangplank.coreos.com-cosa-stamp`).
 * Gangplank kept the stamp in an object *tag* named `gangplank.coreos.com/cosa/stamp`; a `/`
 * cannot appear in an HTTP header name, so as metadata the slashes become dashes.
 */
export const STAMP_METADATA_KEY = "gangplank.coreos.com-cosa-stamp";
/** Gangplank's tag name for the stamp (read as a fallback for objects Gangplank wrote). */
export const STAMP_TAG_KEY = "gangplank.coreos.com/cosa/stamp";

/** Now, in UTC unix nanoseconds (the stamp's unit). */
export function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * The object's upload stamp in UTC unix nanoseconds: the stamp metadata, else Gangplank's
 * stamp tag, else its LastModified; `0n` when the object does not exist. A stamp that does
 * not parse is a `BadStamp` StoreError.
 */
export async function getStamp(
  t: Transport,
  bucket: string,
  key: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<bigint> {
  const s = await stat(t, bucket, key, { signal });
  if (!s) return 0n;
  return await stampOf(t, bucket, key, s, signal);
}

export async function stampOf(
  t: Transport,
  bucket: string,
  key: string,
  s: ObjectStat,
  signal?: AbortSignal,
) {
  let raw: string | undefined = s.metadata[STAMP_METADATA_KEY];
  if (raw === undefined) {
    raw = await t.call("stamp", bucket, key, signal, async (c) => {
      const tags = await c.getObjectTagging(bucket, key);
      const list = Array.isArray(tags) ? tags : [];
      return list.find((t) => t.Key === STAMP_TAG_KEY)?.Value;
    }, { retry: false }).catch(() => undefined);
  }
  if (raw === undefined) return BigInt(s.lastModified.getTime()) * 1_000_000n;
  if (!/^\d+$/.test(raw.trim())) {
    throw new StoreError({
      op: "stamp",
      bucket,
      key,
      code: "BadStamp",
      message: `stamp ${JSON.stringify(raw)} is not a number`,
      transient: false,
    });
  }
  return BigInt(raw.trim());
}

/**
 * Whether the local file at `path` changed after the object was last uploaded (Gangplank's
 * "only upload if newer", which never worked there): true when the object is missing, or
 * when the file's mtime is later than both the object's stamp and its LastModified (a file
 * fetched from the store gets the object's LastModified as mtime, so it is not "newer").
 * A missing local file is an error (ENOENT StoreError).
 */
export async function isLocalNewer(
  t: Transport,
  bucket: string,
  key: string,
  path: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<boolean> {
  let localNs: bigint;
  try {
    localNs = (await fsp.stat(path, { bigint: true })).mtimeNs;
  } catch (e) {
    throw localFileError("isLocalNewer", bucket, key, e);
  }
  const s = await stat(t, bucket, key, { signal });
  if (!s) return true;
  const stamp = await stampOf(t, bucket, key, s, signal);
  const lm = BigInt(s.lastModified.getTime()) * 1_000_000n;
  return localNs > (stamp > lm ? stamp : lm);
}
