/**
 * The artifact store client: every transfer between workers, the coordinator and the relay
 * (or any external S3 named by a minio config file) goes through {@link ArtifactStore}, built
 * on npm:minio.
 *
 * - Uploads always have a known size (a file is stat'ed and streamed with it), so npm:minio
 *   never buffers its ~525 MiB "unknown size" parts; parts are 16 MiB by default.
 * - Downloads are atomic (temp file next to the destination, fsync, rename), verified against
 *   the sha256/size the build metadata gives while they stream to disk (no second pass), and
 *   skipped entirely when the destination already holds that content.
 * - Transient failures (connection reset/refused, timeouts, 5xx, SlowDown, 429) are retried
 *   with backoff; nothing else is. Every call takes `{ signal }`.
 * - Gangplank's file stamps: upload time in UTC unix nanoseconds, in user metadata.
 *
 * Modules: `transport.ts` (endpoint, signed clients, errors, retries), `objects.ts` (buckets,
 * stat, list, remove), `upload.ts`, `download.ts`, `stamps.ts`, `store.ts` (the class).
 *
 * @module
 */
export { ArtifactStore } from "./store.ts";
export { type Endpoint, loadS3Client, resolveEndpoint } from "./transport.ts";
export {
  type ArtifactStoreOptions,
  DEFAULT_FILE_PART_SIZE,
  DEFAULT_PART_SIZE,
  type ExpectedContent,
  type ListEntry,
  type ObjectStat,
  type PutFileOptions,
  type PutOptions,
} from "./types.ts";
export { STAMP_METADATA_KEY, STAMP_TAG_KEY } from "./stamps.ts";
export { isTransientError, type RetryOptions, withRetry } from "../retry.ts";
export {
  IntegrityError,
  isTransientCode,
  isTransientStatus,
  StoreError,
  TransientHttpError,
} from "../store_errors.ts";
