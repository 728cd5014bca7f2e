/**
 * The worker's run step: `cosa init` from the recipe (once per srv dir), the stages in order,
 * and the oscontainer push when a stage produced a new ostree.
 *
 * @module
 */

import { mkdtemp, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type BuildInfo, readLatestBuild } from "../cosa/meta.ts";
import type { Stage } from "../jobspec/mod.ts";
import { GangplankError } from "../errors/mod.ts";
import { quote } from "../toolkit/shell.ts";
import type { CommandRunner } from "./runner.ts";
import { OscontainerPushError, pushOscontainer, shouldPushOscontainer } from "./oscontainer.ts";
import { runScriptFile, runStage, type StageDeps } from "./stage.ts";
import { failWith, type WorkerContext } from "./context.ts";

/** The stage dependencies for scripts written to `dir`. */
export type StageDepsFor = (dir: string) => StageDeps;

/**
 * `cosa init` from the recipe unless `src/config` exists. False (after recording the failure)
 * when the clone failed.
 */
export async function initRecipe(
  ctx: WorkerContext,
  firstStageId: string,
  stageDeps: StageDepsFor,
): Promise<boolean> {
  const recipe = ctx.ws.jobspec.recipe ?? {};
  if (!recipe.git_url) return true;
  try {
    await stat(join(ctx.srv, "src", "config"));
    ctx.log("gangway: src/config exists, not running cosa init");
    return true;
  } catch { /* not initialised yet */ }
  const args = ["cosa", "init"];
  if (recipe.git_ref) args.push("--force", "--branch", recipe.git_ref);
  if (recipe.git_commit) args.push("--commit", recipe.git_commit);
  args.push(recipe.git_url);
  const source = args.map(quote).join(" ");
  const file = join(ctx.scratch, "init.sh");
  await writeFile(file, source + "\n", { mode: 0o700 });
  ctx.log(`gangway: ${source}`);
  const f = await runScriptFile(
    { part: "init", index: 0, source, file },
    firstStageId,
    stageDeps(ctx.scratch),
  );
  if (f) {
    ctx.result.failures.push(f);
    failWith(ctx, f.exitCode, `failed to clone recipe: ${f.message}`);
    return false;
  }
  return true;
}

/**
 * Runs the stages in order, stopping at the first failure. True when every stage ran and
 * succeeded.
 */
export async function runStages(
  ctx: WorkerContext,
  stages: readonly Stage[],
  before: BuildInfo | undefined,
  stageDeps: StageDepsFor,
): Promise<boolean> {
  for (const s of stages) {
    if (ctx.signal.aborted) break;
    const dir = await mkdtemp(join(ctx.scratch, "stage-"));
    const out = await runStage(s, ctx.ws.jobspec, before?.meta, stageDeps(dir));
    ctx.result.failures.push(...out.failures);
    if (out.exitCode !== 0) {
      const msg = out.error ?? out.failures.map((f) => f.message).join("; ");
      if (!ctx.signal.aborted) failWith(ctx, out.exitCode, msg);
      for (const f of out.failures.slice(1)) ctx.log(`gangway: also failed: ${f.message}`);
      return false;
    }
    ctx.log(`gangway: stage "${s.id}" succeeded`);
  }
  return true;
}

/** What {@link pushNewOscontainer} needs beyond the context. */
export interface PushDeps {
  runner: CommandRunner;
  env: Record<string, string>;
  saTokenPath?: string;
}

/**
 * Pushes the oscontainer when the latest build has a new ostree (and registries are
 * configured). False (after recording the failure) when the push failed.
 */
export async function pushNewOscontainer(
  ctx: WorkerContext,
  before: BuildInfo | undefined,
  deps: PushDeps,
): Promise<boolean> {
  const publish = ctx.ws.jobspec.publish_oscontainer;
  if (!(publish?.registries ?? []).length || ctx.signal.aborted) return true;
  try {
    const after = await readLatestBuild(join(ctx.srv, "builds"), ctx.arch);
    if (after && shouldPushOscontainer(before, after)) {
      await pushOscontainer(publish, after.id, {
        runner: deps.runner,
        env: deps.env,
        srvDir: ctx.srv,
        scriptDir: await mkdtemp(join(ctx.scratch, "push-")),
        log: ctx.log,
        signal: ctx.signal,
        ...(deps.saTokenPath ? { tokenPath: deps.saTokenPath } : {}),
      });
    } else {
      ctx.log("gangway: no new ostree in the latest build, not pushing the oscontainer");
    }
    return true;
  } catch (e) {
    if (!ctx.signal.aborted) {
      failWith(
        ctx,
        e instanceof GangplankError ? e.exitCode : 1,
        e instanceof OscontainerPushError ? e.message : `oscontainer push: ${(e as Error).message}`,
      );
    }
    return false;
  }
}
