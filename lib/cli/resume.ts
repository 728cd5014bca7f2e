/**
 * `submit --resume <workDir>` on the command-line side: which flags go with it, the JobSpec a
 * resumed run uses (the recorded one, or `-s`), and the run state it resumes.
 *
 * @module
 */
import { resolve } from "node:path";
import { UsageError } from "../errors/mod.ts";
import { type JobSpec, parseJobSpec } from "../jobspec/mod.ts";
import { readRunState, RUN_STATE_FILE, type RunState } from "../coordinator/resume.ts";
import { EnvDigest, loadEnvDigestKey } from "../coordinator/env_digest.ts";
import { generatorFlagsGiven, resolveSpec } from "./resolve_spec.ts";
import { checkWorkDirFree } from "./work_lock.ts";
import type { SubmitOptions } from "./submit_options.ts";

/** What a resumed run starts from. */
export interface ResumeInputs {
  /** The work dir of the run being resumed (absolute). */
  workDir: string;
  state: RunState;
  /** The recorded JobSpec, or the `-s` one. */
  spec: JobSpec;
}

/**
 * Checks the flags that go with `--resume` and reads the run state and the JobSpec.
 *
 * @throws {UsageError} (exit code 2) for a flag that contradicts `--resume` (naming it), a
 *   work dir without a run state, a work dir a live run holds (`WorkDirBusyError`), or a
 *   run on an external store resumed without `-m`.
 */
export async function loadResume(
  opts: SubmitOptions,
  cwd: string,
  warn: (line: string) => void,
  signal: AbortSignal = new AbortController().signal,
): Promise<ResumeInputs> {
  const dir = opts.resume!;
  const workDir = resolve(cwd, dir);
  const bad = (m: string) => new UsageError(`--resume ${dir}: ${m}`);
  if (opts.command !== "run") throw bad(`${opts.command} does not run anything to resume`);
  if (opts.workDir !== undefined && resolve(cwd, opts.workDir) !== workDir) {
    throw bad(`-w ${opts.workDir}: a resumed run works in the work dir it resumes`);
  }
  if (opts.flags.remoteKubeconfig !== undefined) {
    throw bad("--remote-kubeconfig: the hop pod's work dir is in the cluster; resume there");
  }
  if (opts.cleanup) throw bad("--cleanup removes what runs left behind; it resumes nothing");
  const generated = generatorFlagsGiven(opts);
  if (!opts.spec && generated.length) {
    throw bad(
      `${generated.join(", ")}: the recorded JobSpec is used; give a new one with -s instead`,
    );
  }
  // A run still going on holds the work dir's lock from before it writes its state until after
  // it has cleaned up, so the lock alone says whether the recorded run is alive (see
  // work_lock.ts): no pid probe, no reused pid to be fooled by.
  await checkWorkDirFree(workDir, { flag: `--resume ${dir}`, signal });
  const state = await readRunState(workDir);
  if (state.store.external && !opts.minioConfig) {
    throw bad(
      `run ${state.runId} kept its objects in an external S3 endpoint (${
        state.store.endpoint ?? "?"
      }); give its config again with -m`,
    );
  }
  let spec: JobSpec;
  if (opts.spec) {
    spec = await resolveSpec({ ...opts, spec: resolve(cwd, opts.spec) }, warn);
  } else {
    spec = parseJobSpec(state.specYaml, {
      file: `${workDir}/${RUN_STATE_FILE} (recorded JobSpec)`,
    }).spec;
    if (opts.bucket) spec.minio.bucket = opts.bucket;
    if (opts.keyPathPrefix !== undefined) spec.minio.key_prefix = opts.keyPathPrefix;
  }
  return { workDir, state, spec };
}

/**
 * After the resumed run took the work dir's lock: the run state is still the one the resume was
 * planned from (another run may have come and gone between reading it and locking).
 *
 * @throws {UsageError} when it changed meanwhile (exit code 2).
 */
export async function recheckResume(r: ResumeInputs): Promise<void> {
  const now = await readRunState(r.workDir);
  if (now.runId !== r.state.runId || now.updatedAt !== r.state.updatedAt) {
    throw new UsageError(
      `--resume ${r.workDir}: run ${now.runId} changed it while this resume started; run --resume again`,
    );
  }
}

/**
 * Where the per-user digest key lives (see lib/coordinator/env_digest.ts):
 * `$XDG_STATE_HOME/gangplank`, else `$HOME/.local/state/gangplank`; `undefined` with neither.
 */
export function envKeyDir(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (env.XDG_STATE_HOME?.startsWith("/")) return `${env.XDG_STATE_HOME}/gangplank`;
  if (env.HOME?.startsWith("/")) return `${env.HOME}/.local/state/gangplank`;
  return undefined;
}

/**
 * The workers' environment with its digest key. An empty environment needs no key. The key is
 * made when missing only for a real run (`create`); a dry run reads it or does without. A key
 * that cannot be had is not fatal: the run goes on, warned that a resume will run again every
 * stage that had an environment (nothing can be verified without the key).
 */
export async function envDigestFor(
  workerEnv: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
  opts: { create: boolean; warn: (line: string) => void },
): Promise<EnvDigest> {
  if (!Object.keys(workerEnv).length) return new EnvDigest(workerEnv, undefined);
  const dir = envKeyDir(env);
  let key: Uint8Array | undefined;
  let why = "no HOME or XDG_STATE_HOME to keep a digest key in";
  if (dir) {
    try {
      key = await loadEnvDigestKey(dir, { create: opts.create });
      why = `no digest key in ${dir} yet`;
    } catch (e) {
      why = `cannot use the digest key in ${dir}: ${(e as Error).message}`;
    }
  }
  if (!key && opts.create) {
    opts.warn(
      `gangplank: warning: ${why}; a --resume of this run will run again every stage (its -e/--env-file values cannot be verified)`,
    );
  }
  return new EnvDigest(workerEnv, key);
}
