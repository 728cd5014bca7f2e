/**
 * The environment variables between the coordinator (through an executor) and a worker: one
 * home for their names, so the two sides cannot drift apart.
 *
 * @module
 */

import { UsageError } from "../errors/mod.ts";

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

/**
 * The env var naming the file an executor delivers secret env var `name` in: executors never
 * put a secret value itself into a worker's environment (it would stay readable in
 * `/proc/<pid>/environ`); the worker reads the file and then removes or empties it.
 * `COSA_RELAY_SECRET_KEY` → `COSA_RELAY_SECRET_FILE`, any other `X` → `X_FILE`.
 */
export function secretFileVar(name: string): string {
  return name === ENV_RELAY_SECRET_KEY ? ENV_RELAY_SECRET_FILE : `${name}_FILE`;
}

/**
 * Env var set by the local executor: `stdin` means "stop when stdin reaches end-of-file" (the
 * coordinator holds it open while it lives; see lib/worker/lifeline.ts). Other executors do not
 * set it: their workers' stdin is not a lifeline.
 */
export const ENV_LIFELINE = "COSA_LIFELINE";

/** Env var: where the worker writes its Kubernetes termination message. */
export const ENV_TERMINATION_LOG = "COSA_TERMINATION_LOG";
/** Default of {@link ENV_TERMINATION_LOG} (written only if it exists). */
export const DEFAULT_TERMINATION_LOG = "/dev/termination-log";

/**
 * Env var: most bytes a cache tarball may expand to on the worker (`20GiB`, `500M`, or plain
 * bytes). Default: 90% of the free space of the srv dir's filesystem. Set it on workers with
 * `submit -e COSA_EXTRACT_MAX_BYTES=50GiB`.
 */
export const ENV_EXTRACT_MAX_BYTES = "COSA_EXTRACT_MAX_BYTES";

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Parses a byte size: a non-negative number with an optional unit (`k`/`M`/`G`/`T` and
 * `kB`...`TB` are powers of 1000, `KiB`...`TiB` powers of 1024). `undefined` when invalid.
 *
 * @example parseByteSize("1.5GiB") // 1610612736
 */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The worker's extraction limit from its environment ({@link ENV_EXTRACT_MAX_BYTES}), or
 * `undefined` when unset.
 * @throws {UsageError} for a value that is not a size.
 */
export function extractMaxBytesOf(env: Record<string, string | undefined>): number | undefined {
  const v = env[ENV_EXTRACT_MAX_BYTES];
  if (v === undefined || v === "") return undefined;
  const n = parseByteSize(v);
  if (n === undefined) {
    throw new UsageError(
      `${ENV_EXTRACT_MAX_BYTES}: ${JSON.stringify(v)} is not a size (e.g. 50GiB, 500M, 1000000)`,
    );
  }
  return n;
}
