/**
 * The object layout in the job bucket, shared by the coordinator (which sends inputs and
 * gathers results) and the worker (which returns them): Gangplank's `builds.json`,
 * `<buildID>/<arch>/<file>` and the cache tarballs, all below the optional key prefix.
 *
 * @example
 * ```ts
 * import { artifactKey, objectKey } from "./layout.ts";
 * const key = objectKey("ci/run-7", artifactKey("36.1", "x86_64", "meta.json"));
 * if (key !== "ci/run-7/36.1/x86_64/meta.json") throw new Error(key);
 * ```
 *
 * @module
 */

import { DEFAULT_BUCKET } from "../jobspec/types.ts";

/** The local folder (below the work dir) that holds lib/jobspec's `DEFAULT_BUCKET`: cosa's `builds`. */
export const DEFAULT_BUCKET_DIR = "builds";
/** Key of the build list (below the key prefix). */
export const BUILDS_JSON_KEY = "builds.json";
/** Key of the returned package cache tarball (below the key prefix). */
export const CACHE_TARBALL_KEY = "cache/cache.tar.gz";
/** Key of the returned ostree repo cache tarball (below the key prefix). */
export const REPO_TARBALL_KEY = "cache/repo.tar.gz";
/** Folder of the files a stage returns with `return_files` (below the key prefix). */
export const RETURN_FILES_DIR = "cache";

/** `key` below the key prefix (`""` for none; already normalised, no slashes at the ends). */
export function objectKey(keyPrefix: string | undefined, key: string): string {
  return keyPrefix ? `${keyPrefix}/${key}` : key;
}

/** A build's file: `<buildID>/<arch>/<file>` (`file` may have folders, e.g. `logs/x`). */
export function artifactKey(buildId: string, arch: string, file: string): string {
  return `${buildId}/${arch}/${file}`;
}

/** The local folder (below the work dir) of a bucket: `builds` for the default bucket. */
export function bucketDir(bucket: string): string {
  return bucket === DEFAULT_BUCKET ? DEFAULT_BUCKET_DIR : bucket;
}
