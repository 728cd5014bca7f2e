/**
 * The command line of the four scripts, as functions: {@link submit}, {@link podmanRun} and
 * {@link relay} take a {@link CliIo} (argv, env, output, signal) and return an exit code;
 * {@link runCli} maps errors to exit codes. Argument parsing into typed options
 * ({@link parseSubmitArgs}, every flag a row of a table), the backend registry
 * ({@link BACKENDS}: local, podman, kube, loaded lazily), resolving the JobSpec, and the dry-run
 * document. Nothing here reads `Deno.env`/`Deno.args`, installs signal handlers or exits: the
 * scripts build the {@link CliIo} and exit with the code.
 *
 * @example
 * ```ts
 * import { runCli, submit } from "./mod.ts";
 * const code = await runCli("submit", submit, {
 *   argv: ["-s", "jobspec.yaml", "--dry-run"], env: {}, cwd: ".", uid: null,
 *   stdout: (t) => console.log(t), stderr: (t) => console.error(t),
 *   signal: AbortSignal.timeout(60_000), install: { kind: "source" },
 * });
 * ```
 * @module
 */
export { parseSubmitArgs, VERSION } from "./submit_args.ts";
export {
  type Backend,
  type OutputFormat,
  type Program,
  type SubmitOptions,
} from "./submit_options.ts";
export { isProblemList, problemLines, resolveSpec } from "./resolve_spec.ts";
export {
  type DryRunDocument,
  dryRunDocument,
  dryRunTable,
  formatDryRun,
  type ShownCommand,
} from "./dry_run.ts";
export { type CliIo, type CliMain, HelpShown, runCli } from "./harness.ts";
export { podmanRun, readEnvFiles, submit } from "./submit.ts";
export { relay } from "./relay.ts";
export { envDigestFor, envKeyDir, loadResume, type ResumeInputs } from "./resume.ts";
export {
  checkWorkDirFree,
  type LockHolder,
  lockWorkDir,
  WORK_LOCK_FILE,
  WorkDirBusyError,
  type WorkDirLock,
} from "./work_lock.ts";
export { isHtmlReport, writeOutputFile, writeReports } from "./reports.ts";
export { liveViewFor, type LiveViewForOptions, wantsLiveView } from "./live.ts";
export { type FlagDef, type FlagGroup, GROUP_TITLES, parseDuration } from "./flags.ts";
export {
  type BackendContext,
  type BackendDef,
  type BackendRuntime,
  BACKENDS,
  CREDENTIAL_VARS,
  type Installation,
  PROXY_VARS,
  workerBaseEnv,
} from "./backends/mod.ts";
