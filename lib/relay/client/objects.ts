/**
 * Buckets and object metadata: create a bucket, stat, exists, list, remove.
 *
 * @module
 */
import type * as Minio from "minio";
import { StoreError } from "../store_errors.ts";
import { type Transport, unlessMissing } from "./transport.ts";
import type { ListEntry, ObjectStat } from "./types.ts";

/** Creates `bucket` (in the configured region) unless it exists. Cached per store. */
export async function ensureBucket(
  t: Transport,
  bucket: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<void> {
  if (t.buckets.has(bucket)) return;
  await t.call("ensureBucket", bucket, undefined, signal, async (c) => {
    if (await c.bucketExists(bucket)) return;
    try {
      await c.makeBucket(bucket, t.endpoint.region);
    } catch (e) {
      const code = (e as { code?: string })?.code;
      if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw e;
    }
  });
  t.buckets.add(bucket);
}

/** Size, ETag, LastModified and metadata of an object, or `undefined` when missing. */
export async function stat(
  t: Transport,
  bucket: string,
  key: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<ObjectStat | undefined> {
  return await unlessMissing(t.call("stat", bucket, key, signal, async (c) => {
    const s = await c.statObject(bucket, key);
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.metaData ?? {})) {
      metadata[k.toLowerCase()] = String(v);
    }
    return { size: s.size, etag: s.etag, lastModified: s.lastModified, metadata };
  }));
}

/** Whether an object exists. */
export async function exists(
  t: Transport,
  bucket: string,
  key: string,
  opts: { signal?: AbortSignal } = {},
): Promise<boolean> {
  return (await stat(t, bucket, key, opts)) !== undefined;
}

/**
 * Lists objects under `prefix` (all levels when `recursive`, else one level with common
 * prefixes marked `isPrefix`), page by page (each page retried). A missing bucket lists
 * nothing.
 */
export async function* list(
  t: Transport,
  bucket: string,
  prefix = "",
  { recursive = true, signal }: { recursive?: boolean; signal?: AbortSignal } = {},
): AsyncIterable<ListEntry> {
  let token = "";
  for (;;) {
    let page: Awaited<ReturnType<Minio.Client["listObjectsV2Query"]>>;
    try {
      page = await t.call(
        "list",
        bucket,
        prefix,
        signal,
        (c) => c.listObjectsV2Query(bucket, prefix, token, recursive ? "" : "/", 1000, ""),
      );
    } catch (e) {
      if (e instanceof StoreError && e.code === "NoSuchBucket") return;
      throw e;
    }
    for (const o of page.objects) {
      const item = o as {
        name?: string;
        prefix?: string;
        size?: number;
        lastModified?: Date;
        etag?: string;
      };
      if (item.prefix !== undefined && item.name === undefined) {
        yield { key: item.prefix, size: 0, lastModified: new Date(0), isPrefix: true };
      } else {
        yield {
          key: item.name ?? "",
          size: Number(item.size ?? 0),
          lastModified: item.lastModified ?? new Date(0),
          etag: item.etag,
        };
      }
    }
    if (!page.isTruncated || !page.nextContinuationToken) return;
    token = page.nextContinuationToken;
  }
}

/** Deletes an object (a missing one is not an error). */
export async function remove(
  t: Transport,
  bucket: string,
  key: string,
  { signal }: { signal?: AbortSignal } = {},
) {
  await unlessMissing(
    t.call("remove", bucket, key, signal, (c) => c.removeObject(bucket, key)),
  );
}
