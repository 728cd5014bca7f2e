/**
 * The relay: an S3 endpoint embedded in gangplank, serving a directory the way Gangplank's
 * FS-mode MinIO did (bucket = top-level folder, object = plain file), plus the minio config
 * file that points clients at it.
 *
 * @example
 * ```ts
 * import { startRelay } from "./mod.ts";
 * await using relay = await startRelay({ root: "/srv", bucketDirs: { builder: "builds" } });
 * const cfg = relay.config(); // { accesskey, secretkey, host, port, region, ... }
 * ```
 *
 * @module
 */

export {
  type AccessGrant,
  generateCredentials,
  type Relay,
  type RelayOptions,
  type ScopedCredential,
  startRelay,
} from "./server.ts";
export { bucketNameProblem, isValidBucketName } from "../names/bucket.ts";
export type { Credentials } from "./sigv4.ts";
export {
  parseRelayConfig,
  readRelayConfig,
  type RelayConfig,
  RelayConfigError,
  RelayConfigExistsError,
  writeRelayConfig,
} from "./config.ts";
export { S3Error } from "./s3_error.ts";
export * from "./client/mod.ts";
