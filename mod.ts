/**
 * gangplank on Deno as a library: read and plan a JobSpec, run it with an executor (local
 * processes, podman, Kubernetes) against the embedded S3 relay, and the worker that runs a
 * stage. This module exports what a user of the library calls; the building blocks behind it
 * live in `lib/<area>/mod.ts` (see ARCHITECTURE.md).
 *
 * @example Read a JobSpec and look at its plan
 * ```ts
 * import { loadJobSpec, planJob } from "./mod.ts";
 * const { spec } = await loadJobSpec("examples/demo.jobspec.yaml", {});
 * const plan = planJob(spec);
 * if (plan.groups[0].stages[0].id !== "base") throw new Error("unexpected plan");
 * ```
 *
 * @example Map any error to the exit code the scripts use
 * ```ts
 * import { exitCodeOf, parseJobSpec } from "./mod.ts";
 * try {
 *   parseJobSpec("stages: {a: 1}\n", {});
 * } catch (e) {
 *   if (exitCodeOf(e) !== 2) throw new Error("a bad JobSpec is a usage error");
 * }
 * ```
 *
 * @module
 */

// Errors and exit codes.
export {
  exitCodeOf,
  GangplankError,
  InterruptedError,
  ProblemListError,
  UsageError,
} from "./lib/errors/mod.ts";

// JobSpecs: read, validate, generate, template.
export {
  defaultJobSpec,
  generateJobSpec,
  type GenerateOptions,
  type JobSpec,
  JobSpecError,
  type JobSpecIssue,
  jobSpecToYaml,
  loadJobSpec,
  parseJobSpec,
  type ParseOptions,
  type ParseResult,
  type RenderData,
  renderTemplate,
  type Stage,
} from "./lib/jobspec/mod.ts";

// The plan of a JobSpec.
export { type Plan, PlanError, planJob, type PlanOptions } from "./lib/plan/mod.ts";

// Running a job.
export {
  EnvDigest,
  type RecordedEnv,
  runJob,
  type RunJobOptions,
  type RunReport,
  type RunResult,
  StageFailedError,
} from "./lib/coordinator/mod.ts";
export {
  type Executor,
  LocalExecutor,
  type LocalExecutorOptions,
  type RelayEndpoint,
  type StageOutcome,
  type WorkerLaunch,
} from "./lib/executors/mod.ts";

// The relay and its client.
export {
  ArtifactStore,
  type Endpoint,
  type ExpectedContent,
  type ListEntry,
  type ObjectStat,
  type PutFileOptions,
  type PutOptions,
  readRelayConfig,
  type Relay,
  type RelayConfig,
  type RelayOptions,
  startRelay,
} from "./lib/relay/mod.ts";

// The worker side.
export { runWorker, type WorkerDeps, type WorkerResult } from "./lib/worker/mod.ts";
export { decodeWorkSpec, encodeWorkSpec, type WorkSpec } from "./lib/workspec/mod.ts";

// Types the functions and classes above take or return.
export type {
  AliyunCfg,
  Archives,
  AwsCfg,
  AzureCfg,
  CloudsCfgs,
  GcpCfg,
  Job,
  Minio,
  Override,
  PublishOscontainer,
  Recipe,
  Registry,
  Repo,
} from "./lib/jobspec/types.ts";
export type { StageCommands } from "./lib/jobspec/shorthands.ts";
export type { FetchLike } from "./lib/jobspec/mod.ts";
export type {
  PlanGroup,
  PlanInputs,
  PlannedStage,
  PlanOutputs,
  PlanProblem,
} from "./lib/plan/plan.ts";
export type { StageReport } from "./lib/coordinator/report.ts";
export type {
  CoordinatorStore,
  ListedObject,
  OpenStore,
  RunningRelay,
  StartRelay,
} from "./lib/coordinator/run_relay.ts";
export type { StageRecord, StageResult } from "./lib/coordinator/schedule.ts";
export type { StoreReader } from "./lib/coordinator/inputs.ts";
export type { RecordedStage, RunState } from "./lib/coordinator/resume.ts";
export type { RunObserver } from "./lib/coordinator/run_stage.ts";
export type { Credentials } from "./lib/relay/sigv4.ts";
export type { AccessGrant, ScopedCredential } from "./lib/relay/server_access.ts";
export type { UnverifiedBodyLimits } from "./lib/relay/server_body.ts";
export type {
  RelayLocation,
  RemoteArtifact,
  RemoteFile,
  ReturnTarget,
} from "./lib/workspec/workspec.ts";
export type { CommandFailure, ScriptPart } from "./lib/worker/stage.ts";
export type { CommandRunner, RunScriptOptions, RunScriptResult } from "./lib/worker/runner.ts";
export type {
  ArtifactStoreLike,
  FetchExpect,
  VersionedJSON,
  WriteCondition,
} from "./lib/store/views.ts";
