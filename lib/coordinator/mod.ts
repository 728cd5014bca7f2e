/**
 * The coordinator: runs a planned JobSpec with any executor (local, podman, kube), the
 * embedded relay or an external S3 endpoint, and reports the outcome.
 *
 * @example
 * ```ts
 * await using executor = new LocalExecutor({ baseEnv });
 * const report = await runJob({ spec, plan, workDir, executor, log: console.log, signal });
 * if (report.exitCode !== 0) Deno.exit(report.exitCode);
 * ```
 *
 * @module
 */
export { DependencyTimeoutError, StageFailedError } from "./errors.ts";
export {
  BuildsLostError,
  reconcileBuilds,
  type ReconcileResult,
  type ReconcileStore,
  type ReportedBuilds,
  reportedBuilds,
} from "./reconcile.ts";
export {
  type CoordinatorStore,
  type ListedObject,
  newRunId,
  previewResume,
  runJob,
  type RunJobOptions,
  type RunningRelay,
  type RunResult,
} from "./run.ts";
export {
  decideResume,
  type HashObject,
  readRunState,
  type RecordedStage,
  type ResumeDecision,
  RUN_STATE_FILE,
  type RunState,
} from "./resume.ts";
export { ENV_KEY_FILE, EnvDigest, loadEnvDigestKey, type RecordedEnv } from "./env_digest.ts";
export { type RunObserver } from "./run_stage.ts";
export { formatBytes, type RunReport, type StageReport, summaryTable } from "./report.ts";
export {
  type InputFile,
  type JobLocation,
  resolveStageInputs,
  type StageInputs,
  type StageNeeds,
  type StoreReader,
} from "./inputs.ts";
export { type BuildView, sharedViews, StoreView } from "./store_view.ts";
export { type CoordinatorStage, stagesOf } from "./plan_view.ts";
export {
  type Readiness,
  schedule,
  type ScheduledGroup,
  type ScheduledStage,
  type ScheduleOptions,
  type ScheduleResult,
  type StageRecord,
  type StageResult,
} from "./schedule.ts";
