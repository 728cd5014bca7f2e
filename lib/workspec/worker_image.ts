/**
 * The worker command contract shared by every container backend (podman here and on remote
 * hosts, Kubernetes pods): which image runs workers, and how the worker program is started
 * inside it. An image is a valid worker image when it carries deno at {@link WORKER_DENO_PATH}
 * and the bundled worker (`deno task bundle` → `dist/work.js`) at {@link WORKER_SCRIPT_PATH}.
 *
 * @module
 */

import { DEFAULT_SRV_DIR, ENV_SRV_DIR } from "./env.ts";

/** Image used when `--image` is not given (the image Gangplank used). */
export const DEFAULT_WORKER_IMAGE = "quay.io/coreos-assembler/coreos-assembler:latest";

/** Where the deno binary lives inside a worker image. */
export const WORKER_DENO_PATH = "/usr/local/bin/deno";

/** Where the bundled worker (`dist/work.js`) lives inside a worker image. */
export const WORKER_SCRIPT_PATH = "/usr/lib/gangplank/work.js";

/** The worker's command (entrypoint + args) with deno and the bundle at these paths. */
export function workerCommand(deno: string, script: string): readonly string[] {
  return Object.freeze([deno, "run", "-A", "--no-prompt", script]);
}

/** The worker's command (entrypoint + args) in every container backend. */
export const WORKER_COMMAND: readonly string[] = workerCommand(
  WORKER_DENO_PATH,
  WORKER_SCRIPT_PATH,
);

/** A PATH with `dir` first (a copied deno: cosa's tools may call `deno`), then the system's. */
export function pathWithFirst(dir: string): string {
  return `${dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
}

/** The working directory of a worker container (cosa's scratch dir). */
export const WORKER_WORKDIR = DEFAULT_SRV_DIR;

/** Environment every worker container gets on top of the stage's own. */
export const WORKER_ENV: Readonly<Record<string, string>> = Object.freeze({
  DENO_DIR: "/tmp/deno",
  [ENV_SRV_DIR]: DEFAULT_SRV_DIR,
});

/** Label carrying the run id on everything a container backend creates. */
export const LABEL_RUN_ID = "gangplank.run-id";

/**
 * Label carrying the coordinator that runs a container or volume: `<host>/<pid>/<start time>`.
 * `--cleanup` without `--run-id` leaves a run alone while that process still runs.
 */
export const LABEL_COORDINATOR = "gangplank.coordinator";

/** Label carrying the stage id on worker containers. */
export const LABEL_STAGE_ID = "gangplank.stage-id";

/**
 * Where the relay secret key is mounted as a file inside a container (lib/workspec's
 * `ENV_RELAY_SECRET_FILE` names it). The key never travels as plain environment in a
 * container spec: podman 4.3 shows `secret_env` values in `podman inspect`.
 */
export const RELAY_SECRET_FILE = "/run/secrets/gangplank-relay-secret-key";
