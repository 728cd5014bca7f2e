/**
 * The worker entry's role decision (Gangplank's `gangway`, reference §0 item 1, §4.1): a
 * process with a WorkSpec is a worker; otherwise one with `BUILD` is the BuildConfig
 * coordinator; otherwise it refuses to run, naming both.
 *
 * @module
 */

import { UsageError } from "../errors/mod.ts";
import { ENV_WORK_POD_JSON, ENV_WORK_POD_JSON_PARTS } from "../workspec/mod.ts";

/**
 * The env var holding the Build object (JSON or YAML), set by OpenShift. Here, not in
 * build.ts: every worker reads it at start-up, and build.ts loads a YAML parser.
 */
export const ENV_BUILD = "BUILD";

/** What the entry point runs as. */
export type EntryRole = "worker" | "buildconfig";

/**
 * The role for `env`: `worker` when `COSA_WORK_POD_JSON` (or its parts variable) is set,
 * `buildconfig` when `BUILD` is, the worker winning when both are.
 * @throws {UsageError} (exit 2) when neither is set.
 */
export function entryRole(env: Readonly<Record<string, string | undefined>>): EntryRole {
  if (env[ENV_WORK_POD_JSON] || env[ENV_WORK_POD_JSON_PARTS]) return "worker";
  if (env[ENV_BUILD] !== undefined && env[ENV_BUILD] !== "") return "buildconfig";
  throw new UsageError(
    `neither ${ENV_WORK_POD_JSON} (a worker's WorkSpec) nor ${ENV_BUILD} ` +
      `(an OpenShift Build, BuildConfig mode) is set: no work found`,
  );
}
