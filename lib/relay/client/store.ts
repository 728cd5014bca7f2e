/**
 * {@link ArtifactStore}: the artifact store client every transfer between workers, the
 * coordinator and the relay (or any external S3 named by a minio config file) goes through,
 * built on npm:minio. Its operations live in this folder's modules (transport, objects,
 * upload, download, stamps); this class binds them to one {@link Transport}.
 *
 * @module
 */
import type { Readable } from "node:stream";
import type { RelayConfig } from "../config.ts";
import { type Endpoint, Transport } from "./transport.ts";
import type {
  ArtifactStoreOptions,
  ExpectedContent,
  ListEntry,
  ObjectStat,
  PutFileOptions,
  PutOptions,
} from "./types.ts";
import * as objects from "./objects.ts";
import * as upload from "./upload.ts";
import * as download from "./download.ts";
import * as stamps from "./stamps.ts";

/**
 * An S3 bucket store over npm:minio with integrity checks, stamps, retries and progress.
 * Dispose it (or call {@link ArtifactStore.close}) to close pooled connections.
 *
 * @example
 * ```ts
 * await using store = ArtifactStore.fromConfig(await readRelayConfig(file), { log });
 * await store.putFile("builder", "builds/36.1/x86_64/meta.json", "/srv/builds/.../meta.json", {
 *   signal,
 * });
 * const r = await store.fetchFile("builder", key, dest, {
 *   signal,
 *   expect: { sha256: art.sha256, size: art.size, name: "qemu" },
 * });
 * ```
 */
export class ArtifactStore implements AsyncDisposable {
  readonly #t: Transport;
  /** Payload bytes downloaded and uploaded, and transfers skipped as already present. */
  readonly stats: { bytesIn: number; bytesOut: number; skipped: number };
  /** Where the store is. */
  readonly endpoint: Endpoint;

  private constructor(cfg: RelayConfig, opts: ArtifactStoreOptions) {
    this.#t = new Transport(cfg, opts);
    this.stats = this.#t.stats;
    this.endpoint = this.#t.endpoint;
  }

  /** A store for the endpoint a minio config describes (the relay's or an external S3). */
  static fromConfig(cfg: RelayConfig, opts: ArtifactStoreOptions = {}): ArtifactStore {
    return new ArtifactStore(cfg, opts);
  }

  /** Closes pooled connections. Idempotent. */
  close(): Promise<void> {
    return this.#t.close();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Creates `bucket` (in the configured region) unless it exists. Cached per store. */
  ensureBucket(bucket: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return objects.ensureBucket(this.#t, bucket, opts);
  }

  /** Size, ETag, LastModified and metadata of an object, or `undefined` when missing. */
  stat(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ObjectStat | undefined> {
    return objects.stat(this.#t, bucket, key, opts);
  }

  /** Whether an object exists. */
  exists(bucket: string, key: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    return objects.exists(this.#t, bucket, key, opts);
  }

  /**
   * Lists objects under `prefix` (all levels when `recursive`, else one level with common
   * prefixes marked `isPrefix`), page by page (each page retried). A missing bucket lists
   * nothing.
   */
  list(
    bucket: string,
    prefix = "",
    opts: { recursive?: boolean; signal?: AbortSignal } = {},
  ): AsyncIterable<ListEntry> {
    return objects.list(this.#t, bucket, prefix, opts);
  }

  /** Deletes an object (a missing one is not an error). */
  remove(bucket: string, key: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return objects.remove(this.#t, bucket, key, opts);
  }

  /**
   * Uploads the file at `path`, stamped with the upload time unless `stamp: false`. Creates the
   * bucket if needed.
   *
   * npm:minio signs each request (`UNSIGNED-PAYLOAD`: no hashing pass over the data) and the
   * body is streamed from the file with its known length, never buffered; npm:minio's own
   * `putObject` would hash every part (SHA-256 and MD5, in JS) over plain HTTP, which bounds it
   * near 70 MiB/s. Files above the part size go up as a multipart upload, one streamed part
   * at a time. Transient failures retry the single PUT, or the failed part only (re-read from
   * the file); an upload that fails for good is aborted.
   */
  putFile(
    bucket: string,
    key: string,
    path: string,
    opts: PutFileOptions = {},
  ): Promise<{ bytes: number }> {
    return upload.putFile(this.#t, bucket, key, path, opts);
  }

  /**
   * Uploads a stream of known `size` bytes (never an unknown-size stream). Not retried: a
   * stream cannot be replayed. Fails if the stream does not hold exactly `size` bytes.
   */
  putStream(
    bucket: string,
    key: string,
    stream: Readable | ReadableStream<Uint8Array>,
    size: number,
    opts: PutOptions = {},
  ): Promise<{ bytes: number }> {
    return upload.putStream(this.#t, bucket, key, stream, size, opts);
  }

  /** Uploads bytes (stamped unless `stamp: false`). */
  putBytes(
    bucket: string,
    key: string,
    value: Uint8Array,
    opts: PutOptions = {},
  ): Promise<{ bytes: number }> {
    return upload.putBytes(this.#t, bucket, key, value, opts);
  }

  /** Uploads a UTF-8 string. */
  putText(
    bucket: string,
    key: string,
    value: string,
    opts: PutOptions = {},
  ): Promise<{ bytes: number }> {
    return upload.putText(this.#t, bucket, key, value, opts);
  }

  /** Uploads a value as indented JSON. */
  putJSON(
    bucket: string,
    key: string,
    value: unknown,
    opts: Omit<PutOptions, "contentType"> = {},
  ): Promise<{ bytes: number }> {
    return upload.putJSON(this.#t, bucket, key, value, opts);
  }

  /**
   * Uploads a value as indented JSON only if the object is still at `cond.etag` (`If-Match`)
   * or does not exist (`{ absent: true }`, `If-None-Match: *`): the write half of a
   * compare-and-swap. Resolves `false` when the precondition failed (HTTP 412, or S3's 409
   * ConditionalRequestConflict for a race between two conditional writes). An empty
   * `cond.etag` (an endpoint that returned no ETag) sends no condition.
   */
  putJSONIf(
    bucket: string,
    key: string,
    value: unknown,
    cond: { etag: string } | { absent: true },
    opts: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    return upload.putJSONIf(this.#t, bucket, key, value, cond, opts);
  }

  /**
   * Downloads an object to `dest` atomically: into a temp file next to it (parents created
   * 0755), fsync'ed, checked against `expect` (an {@link IntegrityError} naming the artifact on
   * mismatch, nothing left behind), its mtime set to the object's LastModified, then renamed
   * over `dest`. When `expect.sha256` is given and `dest` already holds that content (and
   * size), nothing is transferred: `{ bytes: 0, skipped: true }`.
   */
  fetchFile(
    bucket: string,
    key: string,
    dest: string,
    opts: { signal?: AbortSignal; expect?: ExpectedContent } = {},
  ): Promise<{ bytes: number; skipped: boolean }> {
    return download.fetchFile(this.#t, bucket, key, dest, opts);
  }

  /**
   * The sha256 (hex) and size of an object's content, streamed (never buffered whole), or
   * `undefined` when it (or its bucket) does not exist.
   */
  sha256(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ sha256: string; size: number } | undefined> {
    return download.sha256(this.#t, bucket, key, opts);
  }

  /** An object's bytes, or `undefined` when it (or its bucket) does not exist. */
  getBytes(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<Uint8Array | undefined> {
    return download.getBytes(this.#t, bucket, key, opts);
  }

  /** An object as UTF-8 text, or `undefined` when missing. */
  getText(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<string | undefined> {
    return download.getText(this.#t, bucket, key, opts);
  }

  /** An object parsed as JSON, or `undefined` when missing (`InvalidJSON` StoreError if bad). */
  getJSON<T = unknown>(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<T | undefined> {
    return download.getJSON<T>(this.#t, bucket, key, opts);
  }

  /**
   * An object parsed as JSON with its ETag (for {@link ArtifactStore.putJSONIf}), or
   * `undefined` when it (or its bucket) does not exist.
   */
  getJSONVersioned(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ value: unknown; etag: string } | undefined> {
    return download.getJSONVersioned(this.#t, bucket, key, opts);
  }

  /**
   * The object's upload stamp in UTC unix nanoseconds: the stamp metadata, else Gangplank's
   * stamp tag, else its LastModified; `0n` when the object does not exist. A stamp that does
   * not parse is a `BadStamp` StoreError.
   */
  getStamp(bucket: string, key: string, opts: { signal?: AbortSignal } = {}): Promise<bigint> {
    return stamps.getStamp(this.#t, bucket, key, opts);
  }

  /**
   * Whether the local file at `path` changed after the object was last uploaded (Gangplank's
   * "only upload if newer", which never worked there): true when the object is missing, or
   * when the file's mtime is later than both the object's stamp and its LastModified (a file
   * fetched from the store gets the object's LastModified as mtime, so it is not "newer").
   * A missing local file is an error (ENOENT StoreError).
   */
  isLocalNewer(
    bucket: string,
    key: string,
    path: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    return stamps.isLocalNewer(this.#t, bucket, key, path, opts);
  }
}
