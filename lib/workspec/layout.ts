/**
 * The object layout in the job bucket, shared by the coordinator (which sends inputs and
 * gathers results) and the worker (which returns them): Gangplank's `builds.json`,
 * `<buildID>/<arch>/<file>` and the cache tarballs, all below the optional key prefix.
 *
 * @module
 */

/** Key of the returned package cache tarball (below the key prefix). */
export const CACHE_TARBALL_KEY = "cache/cache.tar.gz";
/** Key of the returned ostree repo cache tarball (below the key prefix). */
export const REPO_TARBALL_KEY = "cache/repo.tar.gz";
