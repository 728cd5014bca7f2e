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
  DEFAULT_SRV_DIR,
  encodeWorkSpec,
  ENV_FORCE_ARCH,
  ENV_REGISTRY_SECRETS,
  ENV_REGISTRY_SECRETS_FILE,
  ENV_RELAY_SECRET_FILE,
  ENV_RELAY_SECRET_KEY,
  ENV_SRV_DIR,
  ENV_WORK_POD_JSON,
  normalizeKeyPrefix,
  type RelayLocation,
  type RemoteArtifact,
  type RemoteFile,
  remoteFileTarget,
  type ReturnTarget,
  SECRET_ENV_NAMES,
  srvRelative,
  validateWorkSpec,
  withoutRegistrySecrets,
  withRegistrySecrets,
  type WorkSpec,
  WorkSpecError,
} from "./workspec.ts";
export {
  formatSummaryLine,
  parseSummaryLine,
  SUMMARY_PREFIX,
  type WorkerSummary,
} from "./summary.ts";
export { CACHE_TARBALL_KEY, REPO_TARBALL_KEY } from "./layout.ts";
