/**
 * `runJob`: the coordinator of one run. Starts the embedded relay (or uses an external S3
 * endpoint), prepares the executor, then runs the plan's groups in order — each stage waits
 * for its dependencies, gets a WorkSpec and runs in a worker — streaming every worker line to
 * the console and `<workDir>/logs/<stage>.log`, and ends with a summary table and a
 * {@link RunReport}.
 *
 * @module
 */

import { GangplankError, InterruptedError } from "../errors/mod.ts";
import type { Executor, RelayEndpoint } from "../executors/types.ts";
import type { JobSpec } from "../jobspec/mod.ts";
import { logNamesFor, openStageLog, type StageLog } from "../log/mod.ts";
import { latestBuild, normalizeArch, parseBuilds } from "../cosa/mod.ts";
import {
  encodeWorkSpec,
  ENV_FORCE_ARCH,
  ENV_REGISTRY_SECRETS,
  ENV_RELAY_SECRET_KEY,
  ENV_WORK_POD_JSON,
  normalizeKeyPrefix,
  type RemoteFile,
  withoutRegistrySecrets,
  type WorkSpec,
} from "../workspec/mod.ts";
import type { RelayConfig } from "../relay/config.ts";
import { ArtifactStore } from "../relay/client.ts";
import { parseSummaryLine } from "../worker/mod.ts";
import { generateCredentials, startRelay } from "../relay/server.ts";
import { DependencyTimeoutError, StageFailedError } from "./errors.ts";
import {
  type InputFile,
  type JobLocation,
  keyOf,
  resolveStageInputs,
  type StageInputs,
  type StoreReader,
} from "./inputs.ts";
import { type CoordinatorStage, stagesOf } from "./plan_view.ts";
import { type RunReport, type StageReport, summaryTable } from "./report.ts";
import { schedule } from "./schedule.ts";
import type { Plan } from "../plan/mod.ts";

/** A listing entry, as the report's "returned" detection needs it. */
export interface ListedObject {
  key: string;
  size: number;
  lastModified?: Date | number | string;
  etag?: string;
}

/** The store as the coordinator uses it: reads plus a recursive listing with stamps. */
export interface CoordinatorStore extends StoreReader {
  list(bucket: string, prefix: string, opts: { signal: AbortSignal }): Promise<ListedObject[]>;
}

/** A started relay, as the coordinator uses it. */
export interface RunningRelay extends AsyncDisposable {
  config(): RelayConfig;
  stats?: unknown;
}

/** Options of {@link runJob}. */
export interface RunJobOptions {
  spec: JobSpec;
  plan: Plan;
  /** Where builds and logs land (the embedded relay serves it). Must exist. */
  workDir: string;
  executor: Executor;
  /** An external S3 endpoint (`-m/--minio-config`); when absent the embedded relay is started. */
  relay?: RelayConfig;
  /** Address the embedded relay binds to (default `127.0.0.1`; kube needs another). */
  relayHost?: string;
  /** Build architecture (default: the executor's). */
  arch?: string;
  /** Default 1 h (Gangplank's `stageDependencyTimeOut`). */
  dependencyTimeoutMs?: number;
  /** Default 15 s. */
  pollIntervalMs?: number;
  /** Receives every console line (prefixed worker lines, coordinator messages, summary). */
  log: (line: string) => void;
  signal: AbortSignal;
  now?: () => number;
  /** Run id (default: generated). */
  runId?: string;
  /** Starts the embedded relay (default: `startRelay` of lib/relay). Seam for tests. */
  startRelay?: (opts: {
    root: string;
    hostname: string;
    bucket: string;
    signal: AbortSignal;
  }) => Promise<RunningRelay>;
  /** Opens the store for a relay config (default: `ArtifactStore.fromConfig`). Seam for tests. */
  openStore?: (cfg: RelayConfig) => CoordinatorStore | Promise<CoordinatorStore>;
}

/** The report plus the typed error that ended the run (not serialised). */
export type RunResult = RunReport & { readonly failure?: unknown };

/** Generates a run id: `gp-<yyyymmddhhmmss>-<6 hex>`. */
export function newRunId(now = Date.now()): string {
  const t = new Date(now).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const r = crypto.getRandomValues(new Uint8Array(3));
  return `gp-${t}-${[...r].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

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

function errorInfo(e: unknown): RunReport["error"] {
  if (e === undefined) return undefined;
  const err = e instanceof Error ? e : new Error(String(e));
  const info: NonNullable<RunReport["error"]> = { type: err.name, message: err.message };
  if (e instanceof StageFailedError) {
    info.stageId = e.stageId;
    info.workerExitCode = e.workerExitCode;
  } else if (e instanceof DependencyTimeoutError) {
    info.stageId = e.stageId;
    info.missing = e.missing;
  }
  return info;
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
  const keyPrefix = normalizeKeyPrefix(opts.spec.minio?.key_prefix ?? "") ?? "";
  const stages = stagesOf(opts.plan);
  const logDir = `${opts.workDir}/logs`;
  await Deno.mkdir(logDir, { recursive: true });

  await using stack = new AsyncDisposableStack();
  // Relay: external, or embedded over the work dir.
  let cfg: RelayConfig;
  let relay: RunningRelay | undefined;
  if (opts.relay) {
    cfg = opts.relay;
    log(`gangplank: using the external S3 endpoint ${cfg.host}:${cfg.port}`);
  } else {
    const start = opts.startRelay ?? defaultStartRelay;
    relay = stack.use(
      await start({
        root: opts.workDir,
        hostname: opts.relayHost ?? "127.0.0.1",
        bucket,
        signal,
      }),
    );
    cfg = relay.config();
    log(`gangplank: relay listening on ${cfg.host}:${cfg.port}, serving ${opts.workDir}`);
  }
  signal.throwIfAborted();
  const store = await (opts.openStore ?? defaultOpenStore)(cfg);
  if (Symbol.asyncDispose in store) stack.use(store as CoordinatorStore & AsyncDisposable);
  const endpoint: RelayEndpoint = await executor.prepare(
    { host: cfg.host, port: cfg.port },
    { runId, signal },
  );
  const arch = normalizeArch(opts.arch ?? (await executor.arch({ signal })));
  const loc: JobLocation = {
    bucket,
    keyPrefix,
    arch,
    ...(opts.spec["copy-build"] ? { copyBuild: opts.spec["copy-build"] } : {}),
  };
  log(
    `gangplank: run ${runId}: ${stages.length} stage(s) in ${
      new Set(stages.map((s) => s.order)).size
    } group(s), backend ${executor.name}, arch ${arch}`,
  );

  // What the store held, to tell which objects each stage returned.
  const listPrefix = keyPrefix ? `${keyPrefix}/` : "";
  const snapshot = async (): Promise<Map<string, ListedObject>> => {
    const m = new Map<string, ListedObject>();
    for (const o of await store.list(bucket, listPrefix, { signal: AbortSignal.timeout(15_000) })) {
      m.set(o.key, o);
    }
    return m;
  };
  let known = await snapshot().catch(() => new Map<string, ListedObject>());

  const names = logNamesFor(stages.map((s) => s.id));
  const reports = new Map<CoordinatorStage, StageReport>();
  const logs = new Map<CoordinatorStage, StageLog>();
  stages.forEach((s, i) => {
    reports.set(s, {
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
      logFile: `${logDir}/${names[i]}.log`,
    });
  });
  const stageLog = (s: CoordinatorStage): StageLog => {
    let l = logs.get(s);
    if (!l) {
      l = openStageLog({
        stageId: s.id,
        file: reports.get(s)!.logFile,
        console: log,
        now,
        header: `=== run ${runId}, stage ${s.id}, ${new Date(now()).toISOString()} ===`,
      });
      logs.set(s, l);
    }
    return l;
  };
  stack.defer(() => {
    for (const l of logs.values()) l.close();
  });
  const lastMissing = new Map<CoordinatorStage, string>();
  /** The worker's own account (`gangway-summary:` line): exact bytes and artifacts. */
  const summaries = new Map<CoordinatorStage, Record<string, unknown>>();

  const groups = [...new Set(stages.map((s) => s.order))].sort((a, b) => a - b).map((order) => ({
    order,
    stages: stages.filter((s) => s.order === order),
  }));

  // Inline registry secrets leave the JobSpec the workers see (a pod spec shows it) and travel
  // with the relay key through the executor's private channel.
  const wire = withoutRegistrySecrets(opts.spec);
  const secretEnv: Record<string, string> = { [ENV_RELAY_SECRET_KEY]: cfg.secretkey };
  if (Object.keys(wire.secrets).length) {
    secretEnv[ENV_REGISTRY_SECRETS] = JSON.stringify(wire.secrets);
  }
  const secretValues = [cfg.secretkey, ...Object.values(wire.secrets)].filter((v) => v);

  const result = await schedule<CoordinatorStage, StageInputs>({
    groups,
    signal,
    now,
    dependencyTimeoutMs: opts.dependencyTimeoutMs ?? 3_600_000,
    pollIntervalMs: opts.pollIntervalMs ?? 15_000,
    onGroupStart: (g) =>
      log(`gangplank: group ${g.order}: starting ${g.stages.map((s) => s.id).join(", ")}`),
    check: (s, { signal }) => resolveStageInputs(store, loc, s.needs, { signal }),
    onWaiting: (s, missing) => {
      const m = missing.join(", ");
      if (lastMissing.get(s) !== m) {
        stageLog(s).line(`gangplank: waiting for ${m}`);
        lastMissing.set(s, m);
      }
    },
    launch: async (s, inputs, { signal }) => {
      const sl = stageLog(s);
      const rep = reports.get(s)!;
      const ws: WorkSpec = {
        remotefiles: inputs.files.map(toRemoteFile),
        jobspec: wire.spec,
        executeStages: [s.id],
        return: { bucket, key_prefix: keyPrefix },
        relay: {
          host: endpoint.host,
          port: endpoint.port,
          region: cfg.region ?? "us-east-1",
          secure: cfg.secure ?? false,
          accesskey: cfg.accesskey,
        },
      };
      rep.bytesIn = inputs.files.reduce((n, f) => n + (f.size ?? 0), 0);
      sl.line(
        `gangplank: starting worker (${inputs.files.length} input file(s)` +
          (inputs.buildId ? `, build ${inputs.buildId}` : "") + ")",
      );
      return await executor.runStage({
        runId,
        stageId: s.id,
        stageIndex: s.index,
        env: { [ENV_WORK_POD_JSON]: encodeWorkSpec(ws), [ENV_FORCE_ARCH]: arch },
        secretEnv,
        onLine: (raw) => {
          // Defence in depth: no secret ever reaches the console or a log file.
          const line = secretValues.reduce((l, v) => l.replaceAll(v, "***"), raw);
          sl.line(line);
          const sum = parseSummaryLine(line);
          if (sum) summaries.set(s, sum);
        },
        signal,
      });
    },
    onStageEnd: async (s, rec) => {
      const rep = reports.get(s)!;
      Object.assign(rep, {
        result: rec.result,
        exitCode: rec.exitCode,
        waitMs: rec.waitMs,
        durationMs: rec.waitMs + rec.runMs,
        ...(rec.reason ? { reason: rec.reason } : {}),
      });
      if (rec.result !== "not-run" && rec.result !== "dependency-timeout") {
        const l = stageLog(s);
        l.line(
          `gangplank: stage ${rec.result}` +
            (rec.exitCode !== null ? ` (exit code ${rec.exitCode})` : "") +
            (rec.reason ? `: ${rec.reason}` : ""),
        );
      } else if (rec.result === "dependency-timeout") {
        stageLog(s).line(`gangplank: gave up waiting: ${rec.reason}`);
      }
      const sum = summaries.get(s);
      if (sum) {
        if (typeof sum.bytesIn === "number") rep.bytesIn = sum.bytesIn;
        if (typeof sum.bytesOut === "number") rep.bytesOut = sum.bytesOut;
        if (Array.isArray(sum.artifactsReturned)) {
          rep.artifacts = sum.artifactsReturned.map(String).sort();
        }
        if (Array.isArray(sum.uploadedKeys)) rep.objects = sum.uploadedKeys.map(String).sort();
      }
      if (rec.exitCode !== null && !signal.aborted) {
        try {
          const cur = await snapshot();
          for (const [k, o] of cur) {
            const before = known.get(k);
            if (!sum && (!before || stampOf(before) !== stampOf(o))) {
              rep.objects.push(k);
              rep.bytesOut += o.size;
            }
          }
          rep.objects.sort();
          known = cur;
        } catch { /* the listing is informational */ }
      }
    },
  });

  const failure = result.error;
  let exitCode = 0;
  let res: RunReport["result"] = "succeeded";
  if (failure !== undefined) {
    res = failure instanceof InterruptedError || signal.aborted ? "interrupted" : "failed";
    exitCode = failure instanceof GangplankError ? failure.exitCode : 1;
  }
  let latest: string | undefined;
  if (!signal.aborted) {
    try {
      const b = await store.getJSON(bucket, keyOf(loc, "builds.json"), {
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
  const stats = relayBytes(relay?.stats);
  const t1 = now();
  const report: RunReport = {
    runId,
    backend: executor.name,
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
      ...stats,
    },
    ...(latest ? { latestBuild: latest } : {}),
    startedAt: new Date(t0).toISOString(),
    finishedAt: new Date(t1).toISOString(),
    durationMs: t1 - t0,
    stages: stages.map((s) => reports.get(s)!),
  };
  log("");
  for (const line of summaryTable(report)) log(line);
  log("");
  if (failure !== undefined) {
    log(`gangplank: run ${res}: ${failure instanceof Error ? failure.message : String(failure)}`);
  } else {
    log(
      `gangplank: run succeeded: builds are in ${buildsLocation}` +
        (latest ? ` (latest ${latest})` : ""),
    );
  }
  const out = report as RunResult;
  if (failure !== undefined) {
    Object.defineProperty(out, "failure", { value: failure, enumerable: false });
  }
  return out;
}

function relayBytes(stats: unknown): { bytesReceived?: number; bytesSent?: number } {
  if (!stats || typeof stats !== "object") return {};
  const s = stats as Record<string, unknown>;
  const pick = (...ks: string[]) => {
    for (const k of ks) if (typeof s[k] === "number") return s[k] as number;
    return undefined;
  };
  const rx = pick("bytesReceived", "bytesIn", "bytesUploaded", "bytesWritten");
  const tx = pick("bytesSent", "bytesOut", "bytesDownloaded", "bytesRead");
  return {
    ...(rx !== undefined ? { bytesReceived: rx } : {}),
    ...(tx !== undefined ? { bytesSent: tx } : {}),
  };
}

async function defaultStartRelay(o: {
  root: string;
  hostname: string;
  bucket: string;
  signal: AbortSignal;
}): Promise<RunningRelay> {
  o.signal.throwIfAborted();
  // The job bucket exists from the start: workers and the coordinator read it before any upload.
  await Deno.mkdir(`${o.root}/${o.bucket === "builder" ? "builds" : o.bucket}`, {
    recursive: true,
  });
  return await startRelay({
    root: o.root,
    hostname: o.hostname,
    port: 0,
    credentials: generateCredentials(),
    region: "us-east-1",
    ...(o.bucket === "builder" ? { bucketDirs: { builder: "builds" } } : {}),
    // No signal: the run closes the relay itself, after its workers have stopped (closing it
    // on abort would make the workers' and the coordinator's last requests fail and retry).
  });
}

/** The coordinator's store over {@link ArtifactStore} (closed when the run ends). */
function defaultOpenStore(cfg: RelayConfig): CoordinatorStore & AsyncDisposable {
  const store = ArtifactStore.fromConfig(cfg);
  return {
    getJSON: (b, k, { signal }) => store.getJSON(b, k, { signal }),
    stat: (b, k, { signal }) => store.stat(b, k, { signal }),
    list: async (b, prefix, { signal }) => {
      const out: ListedObject[] = [];
      for await (const o of store.list(b, prefix, { recursive: true, signal })) {
        if (!o.isPrefix) {
          out.push({ key: o.key, size: o.size, lastModified: o.lastModified, etag: o.etag });
        }
      }
      return out;
    },
    [Symbol.asyncDispose]: () => store.close(),
  };
}
