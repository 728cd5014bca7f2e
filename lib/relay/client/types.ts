/**
 * The store's options, results and defaults.
 *
 * @module
 */
import type { ProgressFactory } from "../../progress/mod.ts";
import type { RetryOptions } from "../retry.ts";

/**
 * Default part size of {@link ArtifactStore.putStream}: 16 MiB (npm:minio buffers each part of
 * a stream in memory, so this bounds client memory per upload).
 */
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;

/**
 * Default part size of {@link ArtifactStore.putFile}: 128 MiB. Parts of a file are streamed
 * from the file, never buffered, so this only sets what a retry re-sends; files up to this
 * size go up in one PUT (S3 allows 5 GiB).
 */
export const DEFAULT_FILE_PART_SIZE = 128 * 1024 * 1024;

/** Lifetime of the URLs npm:minio presigns for downloads (checked when a request starts). */
export const PRESIGN_EXPIRY_S = 300;

/** Options of {@link ArtifactStore.fromConfig}. */
export interface ArtifactStoreOptions {
  /** One line per retry and skipped transfer (never secrets). */
  log?: (message: string) => void;
  /** Creates a progress report per file transfer. */
  progress?: ProgressFactory;
  /** Retry policy (attempts, delays); `signal` comes from each call. */
  retry?: Omit<RetryOptions, "signal">;
  /**
   * Multipart part size in bytes (>= 5 MiB). Default {@link DEFAULT_FILE_PART_SIZE} for
   * {@link ArtifactStore.putFile}, {@link DEFAULT_PART_SIZE} for {@link ArtifactStore.putStream}.
   */
  partSize?: number;
  /** PEM CA certificate(s) to trust for a `secure` endpoint with a private CA. */
  ca?: string | string[];
}

/** What {@link ArtifactStore.stat} reports. */
export interface ObjectStat {
  /** Size in bytes. */
  size: number;
  /** ETag without quotes. */
  etag: string;
  /** Last modification time. */
  lastModified: Date;
  /** User metadata (names lower-cased, without `x-amz-meta-`) and stored standard headers. */
  metadata: Record<string, string>;
}

/** One listed object (or, when not recursive, one common prefix with `isPrefix`). */
export interface ListEntry {
  /** Object key (or common prefix). */
  key: string;
  /** Size in bytes (0 for a prefix). */
  size: number;
  /** Last modification time. */
  lastModified: Date;
  /** ETag without quotes. */
  etag?: string;
  /** True for a common prefix (a folder) in a non-recursive listing. */
  isPrefix?: boolean;
}

/** What a fetched artifact must be, from meta.json. */
export interface ExpectedContent {
  /** Hex sha256 of the content. */
  sha256?: string;
  /** Size in bytes. */
  size?: number;
  /** Name used in errors and logs (meta.json's artifact name); default the key. */
  name?: string;
}

/** Options of an upload (`putStream`, `putBytes`, `putText`, `putJSON`). */
export interface PutOptions {
  /** Cancels the upload. */
  signal?: AbortSignal;
  /** Stamp the object with its upload time (user metadata, see `STAMP_METADATA_KEY`); default on. */
  stamp?: boolean;
  /** The object's Content-Type (default `application/octet-stream`). */
  contentType?: string;
}

/** Options of `putFile`. */
export interface PutFileOptions extends PutOptions {
  /**
   * Create only (`If-None-Match: *`, on the PUT or the multipart completion): an object
   * already at `key` makes this fail with a `PreconditionFailed` `StoreError`.
   */
  ifNoneMatch?: boolean;
}
