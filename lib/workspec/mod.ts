/**
 * The `COSA_WORK_POD_JSON` wire format between the coordinator and its workers.
 *
 * @example
 * const env = {
 *   [ENV_WORK_POD_JSON]: encodeWorkSpec(ws), // safe to show
 *   [ENV_FORCE_ARCH]: "x86_64",
 * };
 * const secretEnv = { [ENV_RELAY_SECRET_KEY]: relayConfig.secretkey }; // private channel only
 *
 * @module
 */

export {
  decodeWorkSpec,
  encodeWorkSpec,
  normalizeKeyPrefix,
  type RelayLocation,
  type RemoteArtifact,
  type RemoteFile,
  remoteFileTarget,
  type ReturnTarget,
  srvRelative,
  validateWorkSpec,
  withoutRegistrySecrets,
  withRegistrySecrets,
  type WorkSpec,
  WorkSpecError,
} from "./workspec.ts";
export {
  formatSummaryLine,
  parseProgressLine,
  parseSummaryLine,
  PROGRESS_PREFIX,
  SUMMARY_PREFIX,
  type WorkerSummary,
} from "./summary.ts";
export * from "./env.ts";
export * from "./layout.ts";
export * from "./worker_image.ts";
export * from "./transport.ts";
