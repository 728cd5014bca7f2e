/**
 * `runJob`: the coordinator of one run. Opens the store (the embedded relay or an external S3
 * endpoint), prepares the executor, then runs the plan's groups in order — each stage waits
 * for its dependencies, gets a WorkSpec and runs in a worker — streaming every worker line to
 * the console and `<workDir>/logs/<stage>.log`, and ends with a summary table and a
 * {@link RunReport}.
 *
 * @module
 */

import { GangplankError, InterruptedError } from "../errors/mod.ts";
import type { Executor } from "../executors/types.ts";
import type { JobSpec } from "../jobspec/mod.ts";
import { latestBuild, normalizeArch, parseBuilds } from "../cosa/mod.ts";
import { normalizeKeyPrefix, type RemoteFile } from "../workspec/mod.ts";
import { type FetchLike, fetchOverrides, overridesKey, packOverrides } from "./overrides.ts";
import type { RelayConfig } from "../relay/config.ts";
import { type JobLocation, keyOf, resolveStageInputs, type StageInputs } from "./inputs.ts";
import { type CoordinatorStage, stagesOf } from "./plan_view.ts";
import { closingLines, errorInfo, type RunReport } from "./report.ts";
import {
  type CoordinatorStore,
  openRunStore,
  type OpenStore,
  relayBytes,
  type RunStore,
  type StartRelay,
} from "./run_relay.ts";
import { type RunObserver, RunStages } from "./run_stage.ts";
import { decideResume, type ResumeDecision, type RunState } from "./resume.ts";
import { RunStateTracker } from "./run_state.ts";
import { EnvDigest } from "./env_digest.ts";
import { schedule, type ScheduleResult } from "./schedule.ts";
import { sharedViews } from "./store_view.ts";
import { reconcileBuilds, reportedBuilds } from "./reconcile.ts";
import type { Plan } from "../plan/mod.ts";

export type { CoordinatorStore, ListedObject, RunningRelay } from "./run_relay.ts";

/** Options of {@link runJob}. */
export interface RunJobOptions {
  /** The JobSpec to run. */
  spec: JobSpec;
  /** Its plan (`planJob`). */
  plan: Plan;
  /** Where builds and logs land (the embedded relay serves it). Must exist. */
  workDir: string;
  /** Runs the workers. */
  executor: Executor;
  /** An external S3 endpoint (`-m/--minio-config`); when absent the embedded relay is started. */
  relay?: RelayConfig;
  /** Address the embedded relay binds to (default `127.0.0.1`; kube needs another). */
  relayHost?: string;
  /** Port the embedded relay binds to (default: any free one). */
  relayPort?: number;
  /** Build architecture (default: the executor's). */
  arch?: string;
  /**
   * Extra environment of every worker (`-e`, `--env-file`), on every backend. Ordinary
   * settings, not secrets: it is visible like the rest of a worker's environment.
   */
  workerEnv?: Record<string, string>;
  /**
   * `workerEnv` with the digest key (see {@link EnvDigest}): recorded in the run state per
   * stage, and compared by a resume. Default: `workerEnv` without a key (a resume can then
   * verify nothing and runs every stage that had an environment).
   */
  envDigest?: EnvDigest;
  /** Directory relative `file://` override URIs are resolved against (default: the cwd). */
  overridesBaseDir?: string;
  /**
   * Objects every stage's worker fetches besides its inputs, from buckets of the store other
   * than the job bucket (the BuildConfig payload: never in `builds/`). Each stage's credential
   * may read exactly these objects there.
   */
  workerFiles?: readonly RemoteFile[];
  /** Fetches `http(s)://` overrides (default: global fetch). Seam for tests. */
  fetch?: FetchLike;
  /** Default 1 h (Gangplank's `stageDependencyTimeOut`). */
  dependencyTimeoutMs?: number;
  /** Default 15 s. */
  pollIntervalMs?: number;
  /** Receives every console line (prefixed worker lines, coordinator messages, summary). */
  log: (line: string) => void;
  /** Aborting stops the run: workers are stopped, the report says interrupted. */
  signal: AbortSignal;
  /** Clock (default `Date.now`), for tests. */
  now?: () => number;
  /** Run id (default: generated). */
  runId?: string;
  /** Starts the embedded relay (default: `startRelay` of lib/relay). Seam for tests. */
  startRelay?: StartRelay;
  /** Opens the store for a relay config (default: `ArtifactStore.fromConfig`). Seam for tests. */
  openStore?: OpenStore;
  /**
   * The state of an earlier run in this work dir (`--resume`): stages it completed whose
   * outputs are intact are skipped; see {@link decideResume}.
   */
  resume?: RunState;
  /** Follows the run stage by stage (the live terminal view). */
  observer?: RunObserver;
}

/** The report plus the typed error that ended the run (not serialised). */
export type RunResult = RunReport & { readonly failure?: unknown };

/** Generates a run id: `gp-<yyyymmddhhmmss>-<6 hex>`. */
export function newRunId(now = Date.now()): string {
  const t = new Date(now).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const r = crypto.getRandomValues(new Uint8Array(3));
  return `gp-${t}-${[...r].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Runs a planned JobSpec to the end. Stage failures, dependency timeouts and interruptions do
 * not throw: they end the run and are in the result (`exitCode`, `error`, `failure`).
 * Infrastructure errors before the first stage (relay, executor preparation) throw.
 */
export async function runJob(opts: RunJobOptions): Promise<RunResult> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const runId = opts.runId ?? newRunId(t0);
  const { log, signal, executor } = opts;
  const bucket = opts.spec.minio?.bucket || "builder";
  const stages = stagesOf(opts.plan);
  const logDir = `${opts.workDir}/logs`;
  await Deno.mkdir(logDir, { recursive: true });

  await using stack = new AsyncDisposableStack();
  const rs = await openRunStore({ ...opts, bucket }, stack);
  const endpoint = await executor.prepare(
    { host: rs.cfg.host, port: rs.cfg.port },
    { runId, workDir: opts.workDir, signal },
  );
  const loc: JobLocation = {
    bucket,
    keyPrefix: normalizeKeyPrefix(opts.spec.minio?.key_prefix ?? "") ?? "",
    arch: normalizeArch(opts.arch ?? (await executor.arch({ signal }))),
    ...(opts.spec["copy-build"] ? { copyBuild: opts.spec["copy-build"] } : {}),
  };
  log(
    `gangplank: run ${runId}: ${stages.length} stage(s) in ${
      new Set(stages.map((s) => s.order)).size
    } group(s), backend ${executor.name}, arch ${loc.arch}`,
  );

  const hash = (key: string, o: { signal: AbortSignal }) => rs.store.sha256(bucket, key, o);
  const env = opts.envDigest ?? new EnvDigest(opts.workerEnv ?? {}, undefined);
  const decisions = opts.resume
    ? await decideResume({
      state: opts.resume,
      spec: opts.spec,
      plan: opts.plan,
      hash,
      env,
      signal,
    })
    : new Map<string, ResumeDecision>();
  const recordedEnv = env.record();
  const skipped = new Set([...decisions].filter(([, d]) => !d.run).map(([id]) => id));
  const tracker = new RunStateTracker({
    workDir: opts.workDir,
    runId,
    backend: executor.name,
    arch: loc.arch,
    spec: opts.spec,
    ...(recordedEnv ? { env: recordedEnv } : {}),
    store: {
      external: !!opts.relay,
      ...(opts.relay ? { endpoint: `${rs.cfg.host}:${rs.cfg.port}` } : {}),
      bucket,
      keyPrefix: loc.keyPrefix,
    },
    stages,
    ...(opts.resume ? { previous: opts.resume } : {}),
    skipped,
    hash: (key) => hash(key, { signal: AbortSignal.timeout(600_000) }),
    warn: log,
  });
  await tracker.begin();
  const overrideFiles = await deliverOverrides(opts, rs.store, loc.bucket, loc.keyPrefix);
  const extraFiles = new Map(
    stages.map((s) => [s.id, [...(opts.workerFiles ?? []), ...(overrideFiles.get(s.id) ?? [])]]),
  );
  const run = stack.use(
    new RunStages({
      runId,
      spec: opts.spec,
      stages,
      logDir,
      executor,
      endpoint,
      cfg: rs.cfg,
      store: rs.store,
      ...(rs.relay?.grant ? { mint: rs.relay.grant.bind(rs.relay) } : {}),
      loc,
      log,
      now,
      signal,
      workerEnv: opts.workerEnv ?? {},
      tracker,
      ...(opts.observer ? { observer: opts.observer } : {}),
      extraFiles,
    }),
  );
  await run.start();
  if (opts.resume) {
    log(
      `gangplank: resuming run ${opts.resume.runId}: ${skipped.size} stage(s) skipped, ${
        stages.length - skipped.size
      } to run`,
    );
  }
  for (const s of stages) {
    const d = decisions.get(s.id);
    if (d && !d.run) run.skip(s, d);
    else if (d) run.log(s).line(`gangplank: runs again (resume): ${d.reason}`);
  }
  const toRun = stages.filter((s) => !skipped.has(s.id));
  const result = await scheduleStages(opts, toRun, run, rs.store, loc, now);
  await tracker.finish();
  const report = await finishReport(opts, { runId, t0, now, rs, loc, run, stages, result });
  for (const line of closingLines(report, result.error)) log(line);
  const out = report as RunResult;
  if (result.error !== undefined) {
    Object.defineProperty(out, "failure", { value: result.error, enumerable: false });
  }
  return out;
}

/** The plan's groups through the scheduler, with the run's stage callbacks. */
function scheduleStages(
  opts: RunJobOptions,
  stages: CoordinatorStage[],
  run: RunStages,
  store: CoordinatorStore,
  loc: JobLocation,
  now: () => number,
): Promise<ScheduleResult> {
  const groups = [...new Set(stages.map((s) => s.order))].sort((a, b) => a - b).map((order) => ({
    order,
    stages: stages.filter((s) => s.order === order),
  }));
  // The stages of a group are checked at the same moment: they share one reading of the store.
  const view = sharedViews(store, loc);
  return schedule<CoordinatorStage, StageInputs>({
    groups,
    signal: opts.signal,
    now,
    dependencyTimeoutMs: opts.dependencyTimeoutMs ?? 3_600_000,
    pollIntervalMs: opts.pollIntervalMs ?? 15_000,
    onGroupStart: (g) => {
      opts.log(`gangplank: group ${g.order}: starting ${g.stages.map((s) => s.id).join(", ")}`);
      opts.observer?.groupStarted?.(g.stages.map((s) => s.id));
    },
    // Every build a worker of the group added must be in builds.json (see reconcile.ts).
    onGroupEnd: async (g) => {
      const reported = g.stages.map((s) => ({
        stageId: s.id,
        builds: reportedBuilds(run.summary(s)),
      })).filter((r) => r.builds.length);
      if (!reported.length) return;
      const r = await reconcileBuilds(store, loc, reported, {
        signal: AbortSignal.any([opts.signal, AbortSignal.timeout(60_000)]),
      });
      if (r.repaired.length) {
        opts.log(
          `gangplank: warning: builds.json had lost ${r.repaired.join(", ")} (the S3 endpoint ` +
            `does not honour conditional writes); merged back`,
        );
      }
    },
    check: (s, { signal }) =>
      resolveStageInputs(store, loc, s.needs, { signal, view: view(signal) }),
    onWaiting: (s, missing, waited) => run.waiting(s, missing, waited),
    launch: (s, inputs, o) => run.launch(s, inputs, o),
    onStageEnd: (s, rec) => run.ended(s, rec),
  });
}

/** The run's report: outcome, exit code, where the builds are, the latest build, each stage. */
async function finishReport(
  opts: RunJobOptions,
  r: {
    runId: string;
    t0: number;
    now: () => number;
    rs: RunStore;
    loc: JobLocation;
    run: RunStages;
    stages: CoordinatorStage[];
    result: ScheduleResult;
  },
): Promise<RunReport> {
  const { signal } = opts;
  const { cfg } = r.rs;
  const { bucket, keyPrefix, arch } = r.loc;
  const failure = r.result.error;
  let exitCode = 0;
  let res: RunReport["result"] = "succeeded";
  if (failure !== undefined) {
    res = failure instanceof InterruptedError || signal.aborted ? "interrupted" : "failed";
    exitCode = failure instanceof GangplankError ? failure.exitCode : 1;
  }
  let latest: string | undefined;
  if (!signal.aborted) {
    try {
      const b = await r.rs.store.getJSON(bucket, keyOf(r.loc, "builds.json"), {
        signal: AbortSignal.timeout(15_000),
      });
      if (b) latest = latestBuild(parseBuilds(b), arch)?.id;
    } catch { /* informational */ }
  }
  const buildsLocation = opts.relay
    ? `s3://${cfg.host}:${cfg.port}/${bucket}${keyPrefix ? `/${keyPrefix}` : ""}`
    : `${opts.workDir}/${bucket === "builder" ? "builds" : bucket}${
      keyPrefix ? `/${keyPrefix}` : ""
    }`;
  const t1 = r.now();
  return {
    runId: r.runId,
    backend: opts.executor.name,
    result: res,
    exitCode,
    ...(failure !== undefined ? { error: errorInfo(failure) } : {}),
    workDir: opts.workDir,
    buildsLocation,
    arch,
    relay: {
      external: !!opts.relay,
      host: cfg.host,
      port: cfg.port,
      bucket,
      keyPrefix,
      ...relayBytes(r.rs.relay?.stats),
    },
    ...(latest ? { latestBuild: latest } : {}),
    startedAt: new Date(r.t0).toISOString(),
    finishedAt: new Date(t1).toISOString(),
    durationMs: t1 - r.t0,
    stages: r.stages.map((s) => r.run.reports.get(s)!),
  };
}

/**
 * What `--dry-run --resume` shows: opens the run's store (the embedded relay over `workDir`,
 * or the external endpoint) just long enough to verify the recorded outputs, and returns each
 * stage's {@link ResumeDecision}. Runs nothing.
 */
export async function previewResume(
  opts:
    & Pick<
      RunJobOptions,
      "spec" | "plan" | "workDir" | "relay" | "startRelay" | "openStore" | "envDigest"
    >
    & {
      state: RunState;
      signal: AbortSignal;
    },
): Promise<Map<string, ResumeDecision>> {
  await using stack = new AsyncDisposableStack();
  const bucket = opts.spec.minio?.bucket || "builder";
  const rs = await openRunStore({ ...opts, bucket, log: () => {} }, stack);
  return await decideResume({
    state: opts.state,
    spec: opts.spec,
    plan: opts.plan,
    hash: (key, o) => rs.store.sha256(bucket, key, o),
    ...(opts.envDigest ? { env: opts.envDigest } : {}),
    signal: opts.signal,
  });
}

/**
 * Fetches, packs and uploads every stage's overrides (§3.9) before any worker starts; returns
 * the remote file each such stage's worker extracts into its srv dir (`/srv/overrides/...`).
 */
async function deliverOverrides(
  opts: RunJobOptions,
  store: CoordinatorStore,
  bucket: string,
  keyPrefix: string,
): Promise<Map<string, RemoteFile[]>> {
  const out = new Map<string, RemoteFile[]>();
  const withOverrides = opts.spec.stages.filter((s) => (s.overrides ?? []).length > 0);
  if (!withOverrides.length) return out;
  if (!store.putFile) throw new Error("this store cannot take uploads (stage overrides)");
  const scratch = await Deno.makeTempDir({ prefix: "gangplank-overrides-" });
  try {
    for (const stage of withOverrides) {
      const id = stage.id ?? "";
      const dir = `${scratch}/${crypto.randomUUID()}`;
      await fetchOverrides({
        stageId: id,
        overrides: stage.overrides!,
        dir,
        baseDir: opts.overridesBaseDir ?? ".",
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
        signal: opts.signal,
      });
      const tarball = `${dir}.tar.gz`;
      await packOverrides(dir, tarball, opts.signal);
      const key = overridesKey(keyPrefix);
      await store.putFile(bucket, key, tarball, { signal: opts.signal });
      opts.log(`gangplank: stage ${id}: ${stage.overrides!.length} override(s) in ${key}`);
      out.set(id, [{ bucket, object: key, compressed: true }]);
    }
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
  return out;
}
