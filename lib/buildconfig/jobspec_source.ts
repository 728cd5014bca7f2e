/**
 * Where the BuildConfig role's JobSpec comes from (reference §3.4, §9), in Gangplank's intended
 * order with its inverted check fixed (§12.1.7): a JobSpec in the binary payload; else
 * `COSA_JOBSPEC_URL` cloned at `COSA_JOBSPEC_REF` (the ref, not the file name); else the file
 * in the srv dir; else none (implied stages only). Then the implied stages (§0 item 15) and the
 * recipe's source (JobSpec, then the Build's `spec.source.git`, then `SOURCE_URI`/`SOURCE_REF`).
 *
 * @module
 */

import { isAbsolute, join } from "node:path";
import { UsageError } from "../errors/mod.ts";
import type { JobSpec, Recipe, Stage } from "../jobspec/types.ts";
import { quote } from "../toolkit/shell.ts";
import type { BuildObject } from "./build.ts";

/** A git repository holding the JobSpec. */
export const ENV_JOBSPEC_URL = "COSA_JOBSPEC_URL";
/** The branch or tag of {@link ENV_JOBSPEC_URL} to clone. */
export const ENV_JOBSPEC_REF = "COSA_JOBSPEC_REF";
/** The JobSpec's file name (in the payload, the repository or the srv dir). */
export const ENV_JOBSPEC_FILE = "COSA_JOBSPEC_FILE";
/** Commands that become the implied stage `envVar`. */
export const ENV_COSA_CMDS = "COSA_CMDS";
/** OpenShift's source repository (the recipe's last fallback). */
export const ENV_SOURCE_URI = "SOURCE_URI";
/** OpenShift's source ref. */
export const ENV_SOURCE_REF = "SOURCE_REF";
/** Default of {@link ENV_JOBSPEC_FILE}. */
export const DEFAULT_JOBSPEC_FILE = "jobspec.yaml";

/** The implied stage made of `COSA_CMDS`. */
export const ENV_VAR_STAGE_ID = "envVar";
/** The implied stage made of the payload's `*.cosa.sh` scripts. */
export const COSA_SH_STAGE_ID = "cosa.sh";

/** Where the JobSpec is read from. */
export type JobSpecOrigin =
  | { kind: "payload"; path: string }
  | { kind: "repo"; url: string; ref?: string; file: string }
  | { kind: "srv"; path: string }
  | { kind: "none" };

/** Inputs of {@link jobSpecOrigin}. */
export interface OriginInput {
  /** The effective environment (strategy env overlaid by the process's). */
  env: Readonly<Record<string, string | undefined>>;
  srvDir: string;
  /** The directory the payload was received into, when there was a payload. */
  payloadDir?: string;
  /** A single-file payload (`--from-file`): its path. */
  payloadFile?: string;
  /** Whether a regular file exists at a path (a seam for tests). */
  isFile: (path: string) => boolean;
}

/** `COSA_JOBSPEC_FILE` checked: a relative path without `..`. */
export function jobSpecFileName(env: Readonly<Record<string, string | undefined>>): string {
  const f = env[ENV_JOBSPEC_FILE] || DEFAULT_JOBSPEC_FILE;
  if (isAbsolute(f) || f.split("/").includes("..") || f.includes("\0")) {
    throw new UsageError(`${ENV_JOBSPEC_FILE}: ${JSON.stringify(f)}: must be a relative path`);
  }
  return f;
}

/**
 * Where the JobSpec comes from, first match wins: the payload (a single file whose name ends in
 * `.yaml`/`.yml`, or `<payload>/<COSA_JOBSPEC_FILE>`), `COSA_JOBSPEC_URL` (cloned at
 * `COSA_JOBSPEC_REF`, reading `COSA_JOBSPEC_FILE` in it), `<srv>/<COSA_JOBSPEC_FILE>`, none.
 * @throws {UsageError} for a bad `COSA_JOBSPEC_FILE`, or a `COSA_JOBSPEC_REF` without a URL.
 */
export function jobSpecOrigin(i: OriginInput): JobSpecOrigin {
  const file = jobSpecFileName(i.env);
  if (i.payloadFile && /\.ya?ml$/.test(i.payloadFile)) {
    return { kind: "payload", path: i.payloadFile };
  }
  if (i.payloadDir && i.isFile(join(i.payloadDir, file))) {
    return { kind: "payload", path: join(i.payloadDir, file) };
  }
  const url = i.env[ENV_JOBSPEC_URL];
  const ref = i.env[ENV_JOBSPEC_REF];
  if (url) {
    if (ref !== undefined && (ref.startsWith("-") || /\s/.test(ref))) {
      throw new UsageError(`${ENV_JOBSPEC_REF}: ${JSON.stringify(ref)}: not a git ref`);
    }
    return { kind: "repo", url, ...(ref ? { ref } : {}), file };
  }
  if (ref) throw new UsageError(`${ENV_JOBSPEC_REF} is set without ${ENV_JOBSPEC_URL}`);
  if (i.isFile(join(i.srvDir, file))) return { kind: "srv", path: join(i.srvDir, file) };
  return { kind: "none" };
}

/** The argv cloning a JobSpec repository (no shell; `--` before the URL). */
export function cloneArgv(origin: { url: string; ref?: string }, dest: string): string[] {
  if (origin.url.startsWith("-")) {
    throw new UsageError(`${ENV_JOBSPEC_URL}: ${JSON.stringify(origin.url)}: not a URL`);
  }
  return [
    "git",
    "clone",
    "--depth=1",
    ...(origin.ref ? [`--branch=${origin.ref}`] : []),
    "--",
    origin.url,
    dest,
  ];
}

/** Inputs of {@link impliedStages}. */
export interface ImpliedInput {
  env: Readonly<Record<string, string | undefined>>;
  /** Names of the payload's `*.cosa.sh` files (top level), in any order. */
  scripts: readonly string[];
  /** How a worker's command names a payload file (relative to the worker's srv dir). */
  scriptPath: (name: string) => string;
  /** The JobSpec's stages (for id clashes). */
  existing: readonly Stage[];
}

/**
 * The stages a non-strict JobSpec gains (§0 item 15), with §12.1.14 fixed: `COSA_CMDS` runs
 * as a shell script (what `bash -c` gives), not as `bash <COSA_CMDS>`. Scripts run in name
 * order with `bash -xeu -o pipefail`. Callers skip this for `job.strict`.
 * @throws {UsageError} when an implied stage's id is taken by a JobSpec stage.
 */
export function impliedStages(i: ImpliedInput): Stage[] {
  const out: Stage[] = [];
  const cmds = i.env[ENV_COSA_CMDS];
  if (cmds && cmds.trim() !== "") {
    out.push({
      id: ENV_VAR_STAGE_ID,
      description: "envVar defined commands",
      direct_exec: true,
      commands: [cmds],
    });
  }
  const scripts = i.scripts.filter((n) => n.endsWith(".cosa.sh") && !n.includes("/")).sort();
  if (scripts.length) {
    out.push({
      id: COSA_SH_STAGE_ID,
      description: "*.cosa.sh scripts",
      direct_exec: true,
      commands: scripts.map((n) => `/bin/bash -xeu -o pipefail ${quote(i.scriptPath(n))}`),
    });
  }
  for (const s of out) {
    if (i.existing.some((e) => e.id === s.id)) {
      throw new UsageError(
        `stage id ${JSON.stringify(s.id)} is reserved for the implied stage (${
          s.id === ENV_VAR_STAGE_ID ? ENV_COSA_CMDS : "*.cosa.sh"
        }); rename the JobSpec's stage or set job.strict`,
      );
    }
  }
  return out;
}

/**
 * The recipe: the JobSpec's when it names a repository, else the Build's `spec.source.git`,
 * else `SOURCE_URI`/`SOURCE_REF`, else the JobSpec's as it is.
 */
export function effectiveRecipe(
  spec: Pick<JobSpec, "recipe">,
  build: Pick<BuildObject, "git">,
  env: Readonly<Record<string, string | undefined>>,
): Recipe {
  if (spec.recipe.git_url) return spec.recipe;
  const { git_url: _u, git_ref: _r, ...rest } = spec.recipe;
  if (build.git) {
    return {
      ...rest,
      git_url: build.git.uri,
      ...(build.git.ref ? { git_ref: build.git.ref } : {}),
    };
  }
  const uri = env[ENV_SOURCE_URI];
  if (uri) {
    const ref = env[ENV_SOURCE_REF];
    return { ...rest, git_url: uri, ...(ref ? { git_ref: ref } : {}) };
  }
  return spec.recipe;
}
