/**
 * The environment variables between the coordinator (through an executor) and a worker: one
 * home for their names, so the two sides cannot drift apart.
 *
 * @module
 */

/** Env var holding the encoded WorkSpec (Gangplank's name). */
export const ENV_WORK_POD_JSON = "COSA_WORK_POD_JSON";
/** Env var holding the relay's secret key (never printed, never in the WorkSpec). */
export const ENV_RELAY_SECRET_KEY = "COSA_RELAY_SECRET_KEY";
/** Env var naming a file (mode 0600) that holds the relay's secret key. */
export const ENV_RELAY_SECRET_FILE = "COSA_RELAY_SECRET_FILE";
/** Env var: the worker's srv directory (default `/srv`). */
export const ENV_SRV_DIR = "COSA_SRV_DIR";
/** Env var: the architecture the worker builds for (cosa's name, e.g. `x86_64`). */
export const ENV_FORCE_ARCH = "COSA_FORCE_ARCH";
/** Default srv directory of a worker. */
export const DEFAULT_SRV_DIR = "/srv";
/**
 * Env var holding the JobSpec's inline registry secrets (`publish_oscontainer.registries[i]
 * .secret`) as JSON `{ "<i>": "<secret>" }`. The coordinator takes them out of the WorkSpec's
 * JobSpec (which a pod spec or `podman inspect` shows) and sends them this private way.
 */
export const ENV_REGISTRY_SECRETS = "COSA_REGISTRY_SECRETS";
/** Env var naming a file (mode 0600) holding {@link ENV_REGISTRY_SECRETS}'s value. */
export const ENV_REGISTRY_SECRETS_FILE = "COSA_REGISTRY_SECRETS_FILE";
/** Env names that carry secrets: never logged, removed from the environment of commands. */
export const SECRET_ENV_NAMES: readonly string[] = [
  ENV_RELAY_SECRET_KEY,
  ENV_RELAY_SECRET_FILE,
  ENV_REGISTRY_SECRETS,
  ENV_REGISTRY_SECRETS_FILE,
];

/** Env var: where the worker writes its Kubernetes termination message. */
export const ENV_TERMINATION_LOG = "COSA_TERMINATION_LOG";
/** Default of {@link ENV_TERMINATION_LOG} (written only if it exists). */
export const DEFAULT_TERMINATION_LOG = "/dev/termination-log";
