/**
 * The per-stage steps of a run: each stage's report and log, the WorkSpec its worker gets,
 * launching the worker with the secrets kept apart, and accounting for what it moved when it
 * ends.
 *
 * @module
 */

import type { Executor, RelayEndpoint, StageOutcome } from "../executors/types.ts";
import type { JobSpec } from "../jobspec/mod.ts";
import { logNamesFor, openStageLog, type StageLog } from "../log/mod.ts";
import type { RelayConfig } from "../relay/config.ts";
import type { AccessGrant, ScopedCredential } from "../relay/server_access.ts";
import { stageGrant } from "./grant.ts";
import {
  encodeWorkSpec,
  ENV_FORCE_ARCH,
  ENV_REGISTRY_SECRETS,
  ENV_RELAY_SECRET_KEY,
  ENV_WORK_POD_JSON_PARTS,
  type RemoteFile,
  withoutRegistrySecrets,
  type WorkSpec,
  workSpecEnv,
} from "../workspec/mod.ts";
import { parseProgressLine, parseSummaryLine, type WorkerSummary } from "../workspec/summary.ts";
import { redactor } from "../toolkit/redact.ts";
import type { InputFile, JobLocation, StageInputs } from "./inputs.ts";
import type { CoordinatorStage } from "./plan_view.ts";
import type { StageReport } from "./report.ts";
import type { CoordinatorStore, ListedObject } from "./run_relay.ts";
import type { StageRecord } from "./schedule.ts";
import type { RunStateTracker } from "./run_state.ts";
import type { ResumeDecision } from "./resume.ts";

/** Follows a run stage by stage (the live terminal view). Every member is optional. */
export interface RunObserver {
  /** A group started: its stages wait for their dependencies. */
  groupStarted?(ids: string[]): void;
  /** A resumed run skips the stage (an earlier run did its work). */
  stageSkipped?(id: string, reason: string): void;
  /** A dependency check found `missing`. */
  stageWaiting?(id: string, missing: string[]): void;
  /** The stage's worker starts. */
  stageStarted?(id: string): void;
  /** One line of the stage's log (already redacted). */
  stageLine?(id: string, line: string): void;
  /** The worker's latest transfer progress (`builder/x.raw: 512.0 MiB / 1.0 GiB (50%) ...`). */
  stageProgress?(id: string, text: string): void;
  /** The stage ended (its report is final). */
  stageEnded?(id: string, report: StageReport): void;
}

/** What {@link RunStages} needs to know about the run. */
export interface RunStagesOptions {
  runId: string;
  spec: JobSpec;
  stages: CoordinatorStage[];
  logDir: string;
  executor: Executor;
  /** The worker-side address of the store. */
  endpoint: RelayEndpoint;
  cfg: RelayConfig;
  store: CoordinatorStore;
  /**
   * Mints a stage's credential (the embedded relay's `grant`). Absent for an external S3
   * endpoint: its workers then get the key of `cfg`.
   */
  mint?: (access: AccessGrant) => ScopedCredential;
  loc: JobLocation;
  log: (line: string) => void;
  now: () => number;
  /** The run's signal (no listing after an abort). */
  signal: AbortSignal;
  /** Extra environment of every worker (under the WorkSpec and the architecture). */
  workerEnv?: Record<string, string>;
  /** Keeps the run state file (resume) up to date. */
  tracker?: RunStateTracker;
  observer?: RunObserver;
  /**
   * More files for stages' workers, by stage id (their overrides tarball, the BuildConfig
   * payload); each stage's credential may read them.
   */
  extraFiles?: ReadonlyMap<string, RemoteFile[]>;
}

/** A stage still waiting says what for again after this long. */
export const WAITING_REPEAT_MS = 60_000;

function toRemoteFile(f: InputFile): RemoteFile {
  const rf: RemoteFile = { bucket: f.bucket, object: f.object };
  if (f.compressed) rf.compressed = true;
  else rf.force_path = f.path;
  if (f.artifact) {
    rf.artifact = { name: f.artifact.name, path: f.artifact.path, sha256: f.artifact.sha256 };
    if (f.artifact.size !== undefined) rf.artifact.size = f.artifact.size;
  }
  return rf;
}

function stampOf(o: ListedObject): string {
  const lm = o.lastModified instanceof Date ? o.lastModified.getTime() : o.lastModified;
  return `${o.size}:${lm ?? ""}:${o.etag ?? ""}`;
}

/**
 * The stages of one run: their reports and logs, and the scheduler's callbacks (`waiting`,
 * `launch`, `ended`). Dispose it to close the stage logs.
 */
export class RunStages implements Disposable {
  /** Each stage's report, filled in as it runs. */
  readonly reports: Map<CoordinatorStage, StageReport> = new Map();
  readonly #o: RunStagesOptions;
  readonly #logs = new Map<CoordinatorStage, StageLog>();
  readonly #lastMissing = new Map<CoordinatorStage, { what: string; at: number }>();
  /** The worker's own account (`gangway-summary:` line): exact bytes and artifacts. */
  readonly #summaries = new Map<CoordinatorStage, WorkerSummary>();
  readonly #wire: { spec: JobSpec; secrets: Record<string, string> };
  readonly #secretEnv: Record<string, string>;
  readonly #redact: (line: string) => string;
  /** What the store held, to tell which objects each stage returned. */
  #known = new Map<string, ListedObject>();

  constructor(o: RunStagesOptions) {
    this.#o = o;
    const names = logNamesFor(o.stages.map((s) => s.id));
    o.stages.forEach((s, i) => {
      this.reports.set(s, {
        id: s.id,
        index: s.index,
        order: s.order,
        result: "not-run",
        exitCode: null,
        durationMs: 0,
        waitMs: 0,
        bytesIn: 0,
        bytesOut: 0,
        artifacts: [],
        objects: [],
        logFile: `${o.logDir}/${names[i]}.log`,
      });
    });
    // Inline registry secrets leave the JobSpec the workers see (a pod spec shows it) and
    // travel with the relay key through the executor's private channel.
    this.#wire = withoutRegistrySecrets(o.spec);
    this.#secretEnv = { [ENV_RELAY_SECRET_KEY]: o.cfg.secretkey };
    if (Object.keys(this.#wire.secrets).length) {
      this.#secretEnv[ENV_REGISTRY_SECRETS] = JSON.stringify(this.#wire.secrets);
    }
    this.#redact = redactor([o.cfg.secretkey, ...Object.values(this.#wire.secrets)]);
  }

  /** Takes the store's first listing (the baseline of "returned" detection). */
  async start(): Promise<void> {
    this.#known = await this.#snapshot().catch(() => new Map<string, ListedObject>());
  }

  /** The stage's log (opened on first use). */
  log(s: CoordinatorStage): StageLog {
    let l = this.#logs.get(s);
    if (!l) {
      const { runId, now } = this.#o;
      const observer = this.#o.observer;
      l = openStageLog({
        stageId: s.id,
        file: this.reports.get(s)!.logFile,
        console: observer?.stageLine
          ? (line) => {
            observer.stageLine!(s.id, line.slice(line.indexOf("] ") + 2));
            this.#o.log(line);
          }
          : this.#o.log,
        now,
        header: `=== run ${runId}, stage ${s.id}, ${new Date(now()).toISOString()} ===`,
      });
      this.#logs.set(s, l);
    }
    return l;
  }

  /** The worker's summary line of a stage that has ended, if it printed one. */
  summary(s: CoordinatorStage): WorkerSummary | undefined {
    return this.#summaries.get(s);
  }

  /** A dependency check found `missing`: logged when it changes and every minute. */
  waiting(s: CoordinatorStage, missing: string[], waitedMs = 0): void {
    const m = missing.join(", ");
    const last = this.#lastMissing.get(s);
    // Said when it changes, and again every minute while it lasts.
    if (last?.what !== m || waitedMs - last.at >= WAITING_REPEAT_MS) {
      const mins = Math.floor(waitedMs / 60_000);
      this.log(s).line(`gangplank: waiting for ${m}${mins > 0 ? ` (${mins} min so far)` : ""}`);
      this.#lastMissing.set(s, { what: m, at: waitedMs });
      this.#o.observer?.stageWaiting?.(s.id, missing);
    }
  }

  /**
   * A resumed run skips the stage: its report is the earlier run's (artifacts and objects
   * still in the store) with nothing moved in this run, and its log says so.
   */
  skip(s: CoordinatorStage, d: ResumeDecision & { run: false }): void {
    const rep = this.reports.get(s)!;
    const prev = d.previous.report;
    Object.assign(rep, {
      result: "skipped",
      exitCode: prev?.exitCode ?? 0,
      reason: d.reason,
      artifacts: [...(prev?.artifacts ?? [])],
      objects: [...d.previous.outputs],
      ...(prev?.returned ? { returned: structuredClone(prev.returned) } : {}),
    });
    this.log(s).line(`gangplank: skipped (resume): ${d.reason}`);
    this.#o.observer?.stageSkipped?.(s.id, d.reason);
  }

  /** The WorkSpec of a stage's worker (`accessKey`: the stage's own, default the run's). */
  workSpec(s: CoordinatorStage, inputs: StageInputs, accessKey?: string): WorkSpec {
    const { cfg, endpoint, loc } = this.#o;
    return {
      remotefiles: [...inputs.files.map(toRemoteFile), ...(this.#o.extraFiles?.get(s.id) ?? [])],
      jobspec: this.#wire.spec,
      executeStages: [s.id],
      return: { bucket: loc.bucket, key_prefix: loc.keyPrefix },
      relay: {
        host: endpoint.host,
        port: endpoint.port,
        region: cfg.region ?? "us-east-1",
        secure: cfg.secure ?? false,
        accesskey: accessKey ?? cfg.accesskey,
      },
    };
  }

  /** Runs the stage's worker with its inputs; every line is redacted, logged and parsed. */
  async launch(
    s: CoordinatorStage,
    inputs: StageInputs,
    { signal }: { signal: AbortSignal },
  ): Promise<StageOutcome> {
    const sl = this.log(s);
    const rep = this.reports.get(s)!;
    const { loc, mint } = this.#o;
    // The stage's own credential, valid while its worker runs (revoked when this returns:
    // success, failure or cancel) and only for what the plan lets the stage write.
    using cred = mint?.(stageGrant({
      bucket: loc.bucket,
      keyPrefix: loc.keyPrefix,
      arch: loc.arch,
      inputs: [
        ...inputs.files,
        ...(this.#o.extraFiles?.get(s.id) ?? []).map((f) => ({ ...f, path: "" })),
      ],
      returns: s.returns,
    }));
    const ws = this.workSpec(s, inputs, cred?.credentials.accessKey);
    // A WorkSpec too large for the environment travels as files, the way secrets do.
    const wire = workSpecEnv(encodeWorkSpec(ws));
    const secretEnv = {
      ...this.#secretEnv,
      ...(cred ? { [ENV_RELAY_SECRET_KEY]: cred.credentials.secretKey } : {}),
      ...wire.privateEnv,
    };
    const redactStage = redactor(cred ? [cred.credentials.secretKey] : []);
    rep.bytesIn = inputs.files.reduce((n, f) => n + (f.size ?? 0), 0);
    await this.#o.tracker?.started(s);
    this.#o.observer?.stageStarted?.(s.id);
    sl.line(
      `gangplank: starting worker (${inputs.files.length} input file(s)` +
        (inputs.buildId ? `, build ${inputs.buildId}` : "") + ")",
    );
    const parts = Object.keys(wire.privateEnv).length;
    if (parts > 0) {
      sl.line(
        `gangplank: the WorkSpec is too large for the environment: it travels as ${parts} ` +
          `file(s) (${ENV_WORK_POD_JSON_PARTS})`,
      );
    }
    return await this.#o.executor.runStage({
      runId: this.#o.runId,
      stageId: s.id,
      stageIndex: s.index,
      env: {
        ...this.#o.workerEnv,
        ...wire.env,
        [ENV_FORCE_ARCH]: this.#o.loc.arch,
      },
      secretEnv,
      onLine: (raw) => {
        // Defence in depth: no secret ever reaches the console or a log file.
        const line = redactStage(this.#redact(raw));
        const progress = parseProgressLine(line);
        if (progress !== undefined) {
          // For the live view only: the console and the log file stay as they were.
          this.#o.observer?.stageProgress?.(s.id, progress);
          return;
        }
        sl.line(line);
        const sum = parseSummaryLine(line);
        if (sum) this.#summaries.set(s, sum);
      },
      signal,
    });
  }

  /** Records how the stage ended and what it moved (the worker's account, or the listing). */
  async ended(s: CoordinatorStage, rec: StageRecord): Promise<void> {
    const rep = this.reports.get(s)!;
    Object.assign(rep, {
      result: rec.result,
      exitCode: rec.exitCode,
      waitMs: rec.waitMs,
      durationMs: rec.waitMs + rec.runMs,
      ...(rec.reason ? { reason: rec.reason } : {}),
      ...(rec.startedAt !== undefined ? { startedAt: new Date(rec.startedAt).toISOString() } : {}),
    });
    if (rec.result !== "not-run" && rec.result !== "dependency-timeout") {
      this.log(s).line(
        `gangplank: stage ${rec.result}` +
          (rec.exitCode !== null ? ` (exit code ${rec.exitCode})` : "") +
          (rec.reason ? `: ${rec.reason}` : ""),
      );
    } else if (rec.result === "dependency-timeout") {
      this.log(s).line(`gangplank: gave up waiting: ${rec.reason}`);
    }
    const sum = this.#summaries.get(s);
    if (sum) {
      if (typeof sum.bytesIn === "number") rep.bytesIn = sum.bytesIn;
      if (typeof sum.bytesOut === "number") rep.bytesOut = sum.bytesOut;
      if (Array.isArray(sum.artifactsReturned)) {
        rep.artifacts = sum.artifactsReturned.map(String).sort();
      }
      if (Array.isArray(sum.uploadedKeys)) rep.objects = sum.uploadedKeys.map(String).sort();
    }
    // The worker's own account (its summary line) says what it uploaded: the job bucket is
    // listed only for a worker that gave none (a bucket of years of builds is not re-listed
    // after every stage). A later stage without an account is then compared with the last
    // listing, so objects earlier accounted stages wrote may be counted for it too.
    if (rec.exitCode !== null && !this.#o.signal.aborted && !sum) {
      try {
        const cur = await this.#snapshot();
        for (const [k, o] of cur) {
          const before = this.#known.get(k);
          if (!before || stampOf(before) !== stampOf(o)) {
            rep.objects.push(k);
            rep.bytesOut += o.size;
          }
        }
        rep.objects.sort();
        this.#known = cur;
      } catch { /* the listing is informational */ }
    }
    if (rec.result !== "not-run") await this.#o.tracker?.ended(s, rep);
    this.#o.observer?.stageEnded?.(s.id, rep);
  }

  async #snapshot(): Promise<Map<string, ListedObject>> {
    const { store, loc } = this.#o;
    const m = new Map<string, ListedObject>();
    const prefix = loc.keyPrefix ? `${loc.keyPrefix}/` : "";
    for (const o of await store.list(loc.bucket, prefix, { signal: AbortSignal.timeout(15_000) })) {
      m.set(o.key, o);
    }
    return m;
  }

  /** Closes the stage logs. */
  [Symbol.dispose](): void {
    for (const l of this.#logs.values()) l.close();
  }
}
