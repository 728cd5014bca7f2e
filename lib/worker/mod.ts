/**
 * The worker (Gangplank's "gangway"): what runs inside every worker process, container or pod.
 * `scripts/work.ts` reads the environment and calls {@link runWorker}.
 *
 * @example
 * const result = await runWorker(decodeWorkSpec(json), {
 *   srvDir: "/srv", env, secretKey, store, log: console.log, signal,
 * });
 * Deno.exit(result.exitCode);
 *
 * @module
 */

export { runWorker, type WorkerDeps } from "./worker.ts";
export { summaryLine, terminationMessage, type WorkerResult } from "./result.ts";
export { PathEscapeError } from "./context.ts";
export {
  BashRunner,
  type BashRunnerOptions,
  type CommandRunner,
  type RunScriptOptions,
  type RunScriptResult,
} from "./runner.ts";
export {
  type CommandFailure,
  commandLabel,
  runStage,
  type ScriptPart,
  type StageDeps,
  type StageRunOutcome,
} from "./stage.ts";
export type { ArtifactStoreLike, FetchExpect } from "../store/views.ts";
export {
  DEFAULT_REGISTRY,
  DEFAULT_SA_TOKEN_PATH,
  type ImageRef,
  ImageRefError,
  type OscontainerDeps,
  OscontainerPushError,
  parseImageRef,
  pushOscontainer,
  redactingLog,
  registrySecrets,
  shouldPushOscontainer,
} from "./oscontainer.ts";
