/**
 * The part of the artifact store (lib/relay's `ArtifactStore`) the worker uses; unit tests pass
 * an in-memory fake.
 *
 * @module
 */

/** Expected content of a fetched object: verified after download. */
export interface FetchExpect {
  /** Expected sha256 (hex). */
  sha256: string;
  /** Expected size in bytes. */
  size?: number;
  /** Artifact name, for messages. */
  name?: string;
}

/** A JSON object with the version (ETag) it was read at, for a compare-and-swap write. */
export interface VersionedJSON {
  /** The parsed document. */
  value: unknown;
  /** Its ETag, for a conditional write. */
  etag: string;
}

/**
 * The precondition of a compare-and-swap write: the object is still at `etag`
 * (`If-Match`), or does not exist yet (`absent`, `If-None-Match: *`).
 */
export type WriteCondition = { etag: string } | { absent: true };

/** What the worker needs from the object store. */
export interface ArtifactStoreLike {
  /** Creates the bucket if it does not exist. */
  ensureBucket(bucket: string, opts: { signal: AbortSignal }): Promise<unknown>;
  /**
   * Downloads an object to `dest` atomically; verifies `expect` when given; skips the transfer
   * when `dest` already has the expected sha256.
   */
  fetchFile(
    bucket: string,
    key: string,
    dest: string,
    opts: { signal: AbortSignal; expect?: FetchExpect },
  ): Promise<{ bytes: number; skipped: boolean }>;
  /**
   * Uploads a local file; with `ifNoneMatch` only if nothing is at `key` yet
   * (`If-None-Match: *`), failing otherwise.
   */
  putFile(
    bucket: string,
    key: string,
    path: string,
    opts: { signal: AbortSignal; ifNoneMatch?: boolean },
  ): Promise<unknown>;
  /** Uploads a JSON document. */
  putJSON(
    bucket: string,
    key: string,
    value: unknown,
    opts: { signal: AbortSignal },
  ): Promise<unknown>;
  /** Parsed JSON of an object, or `undefined`/`null` when it does not exist. */
  getJSON(bucket: string, key: string, opts: { signal: AbortSignal }): Promise<unknown>;
  /** Parsed JSON of an object and its ETag, or `undefined` when it does not exist. */
  getJSONVersioned(
    bucket: string,
    key: string,
    opts: { signal: AbortSignal },
  ): Promise<VersionedJSON | undefined>;
  /**
   * Writes a JSON document only if `cond` still holds (`If-Match` / `If-None-Match: *`).
   * Resolves `true` when written, `false` when another writer got there first (HTTP 412).
   */
  putJSONIf(
    bucket: string,
    key: string,
    value: unknown,
    cond: WriteCondition,
    opts: { signal: AbortSignal },
  ): Promise<boolean>;
}
