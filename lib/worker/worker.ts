/**
 * The worker ("gangway", reference §5, bugs of §12 fixed): `cosa init` from the recipe, fetch
 * inputs (verified, atomic, confined to srv), `.repo` files, `builds/latest`, run the stage,
 * then return results to the job bucket (builds.json merged, known meta files, new artifacts
 * of the latest build, kola logs, caches, `return_files`). The steps live in `fetch.ts`,
 * `run.ts` and `return.ts`; this file puts them in order.
 *
 * @module
 */

import { realpath, stat } from "node:fs/promises";
import { arch as hostArch } from "node:os";
import { join } from "node:path";
// Direct module imports (not mod.ts): see stage.ts (start-up time of every worker).
import { CosaFormatError, normalizeArch } from "../cosa/builds.ts";
import { type BuildInfo, readLatestBuild } from "../cosa/meta.ts";
import type { FetchLike, Stage } from "../jobspec/mod.ts";
import type { WorkSpec } from "../workspec/workspec.ts";
import { ENV_FORCE_ARCH } from "../workspec/env.ts";
import { BashRunner, type CommandRunner } from "./runner.ts";
import { redactingLog, registrySecrets } from "./oscontainer.ts";
import type { StageDeps } from "./stage.ts";
import type { ArtifactStoreLike } from "../store/views.ts";
import { failWith, type WorkerContext } from "./context.ts";
import { makeTempDir } from "../toolkit/fs.ts";
import { fetchRemoteFiles, updateLatestLink, writeRepoFiles } from "./fetch.ts";
import { initRecipe, pushNewOscontainer, runStages } from "./run.ts";
import { returnBuild, returnStageFiles } from "./return.ts";
import type { WorkerResult } from "./result.ts";

/** Dependencies of {@link runWorker}. */
export interface WorkerDeps {
  /** The worker's srv directory (`/srv` in a pod); must exist. */
  srvDir: string;
  /** The complete environment of the stage's commands (nothing else is inherited). */
  env: Record<string, string>;
  /** The relay secret: never logged; any output line containing it is redacted. */
  secretKey: string;
  /** The job's artifact store (the relay or another S3 endpoint). */
  store: ArtifactStoreLike;
  /** Default: {@link BashRunner}. */
  runner?: CommandRunner;
  /** Receives every log line (redacted). */
  log: (line: string) => void;
  /** Aborting stops the stage's commands; results still come back. */
  signal: AbortSignal;
  /** Architecture (default `env.COSA_FORCE_ARCH`, else this machine's). */
  arch?: string;
  /** HTTP client for URL repos (default global fetch). */
  fetch?: FetchLike;
  /** Delay between starts of concurrent commands (default 50 ms). */
  staggerMs?: number;
  /**
   * Service-account token file for oscontainer pushes with `secret_type: token` (default
   * `/var/run/secrets/kubernetes.io/serviceaccount/token`).
   */
  saTokenPath?: string;
  /**
   * Most bytes a cache tarball may expand to (default: 90% of the free space of srv's
   * filesystem); a larger one fails the fetch and leaves nothing extracted.
   */
  extractMaxBytes?: number;
}

/**
 * Runs the stages of a WorkSpec on this worker and returns their results to the store.
 * Never throws for stage, fetch or upload failures: they end up in the result's exit code and
 * message. Throws only when the srv dir is unusable.
 */
export async function runWorker(ws: WorkSpec, deps: WorkerDeps): Promise<WorkerResult> {
  // The relay secret and every registry secret of the JobSpec are redacted from every line.
  const log = redactingLog(deps.log, [
    deps.secretKey,
    ...registrySecrets(ws.jobspec.publish_oscontainer),
  ]);
  const result: WorkerResult = {
    exitCode: 0,
    stageIds: [...ws.executeStages],
    failures: [],
    bytesIn: 0,
    bytesOut: 0,
    filesFetched: 0,
    filesSkipped: 0,
    uploaded: [],
    artifactsReturned: [],
    uploadErrors: [],
    aborted: false,
  };

  const stages: Stage[] = [];
  for (const id of ws.executeStages) {
    const s = ws.jobspec.stages.find((x) => x.id === id);
    if (!s) {
      result.exitCode = 2;
      result.message = `stage "${id}" is not in the jobspec`;
      log(`gangway: ERROR: ${result.message}`);
      return result;
    }
    stages.push(s);
  }
  const st = await stat(deps.srvDir);
  if (!st.isDirectory()) throw new Error(`${deps.srvDir}: not a directory`);
  const srvReal = await realpath(deps.srvDir);
  const arch = normalizeArch(deps.arch ?? (deps.env[ENV_FORCE_ARCH] || hostArch()));
  await using scratchDir = await makeTempDir({ prefix: "gangway-" });
  const scratch = scratchDir.path;
  const ctx: WorkerContext = {
    ws,
    store: deps.store,
    signal: deps.signal,
    srv: deps.srvDir,
    srvReal,
    arch,
    scratch,
    log,
    fetched: new Map(),
    result,
    ...(deps.extractMaxBytes !== undefined ? { extractMaxBytes: deps.extractMaxBytes } : {}),
  };
  const runner = deps.runner ?? new BashRunner();
  const stageDeps = (dir: string): StageDeps => ({
    runner,
    env: deps.env,
    cwd: deps.srvDir,
    scriptDir: dir,
    log,
    signal: deps.signal,
    staggerMs: deps.staggerMs,
  });
  log(`gangway: running as a worker for stage(s) ${ws.executeStages.join(", ")} (arch ${arch})`);
  // 1. Fetch: cosa init from the recipe (once per srv dir), remote files, .repo files.
  if (!await initRecipe(ctx, stages[0].id, stageDeps)) return result;
  if (!await fetchRemoteFiles(ctx)) return result;
  if (!await writeRepoFiles(ctx, ws.jobspec.recipe?.repos ?? [], deps.fetch)) return result;

  // 2. .Meta for templates and the builds/latest symlink.
  let before: BuildInfo | undefined;
  try {
    before = await readLatestBuild(join(deps.srvDir, "builds"), arch);
  } catch (e) {
    if (e instanceof CosaFormatError) {
      // A hostile or broken builds.json or meta.json (an id climbing out of srv, say):
      // refuse it before anything uses it as a path or runs against it.
      failWith(ctx, e.exitCode, e.message);
      return result;
    }
    log(`gangway: warning: cannot read the latest build: ${(e as Error).message}`);
  }
  if (before) {
    await updateLatestLink(ctx, before.id);
    log(`gangway: latest build for ${arch} is ${before.id}`);
  }

  // 3. Run: the stages, then the oscontainer push when they produced a new ostree.
  let stageOk = await runStages(ctx, stages, before, stageDeps);
  if (stageOk) {
    stageOk = await pushNewOscontainer(ctx, before, {
      runner,
      env: deps.env,
      ...(deps.saTokenPath ? { saTokenPath: deps.saTokenPath } : {}),
    });
  }

  if (deps.signal.aborted) {
    result.aborted = true;
    failWith(ctx, 130, "aborted");
    return result;
  }

  // 4. Return: always (logs and metadata come back after a failure too).
  await returnBuild(ctx);
  if (stageOk) {
    for (const s of stages) await returnStageFiles(ctx, s);
  }
  if (result.uploadErrors.length) {
    failWith(
      ctx,
      1,
      `${result.uploadErrors.length} upload(s) failed: ${result.uploadErrors.join("; ")}`,
    );
  }
  if (deps.signal.aborted) {
    result.aborted = true;
    failWith(ctx, 130, "aborted");
  }
  return result;
}
