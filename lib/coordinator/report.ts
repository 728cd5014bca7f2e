/**
 * The run report (`--report run.json`) and the summary table printed at the end of a run.
 *
 * @module
 */

import { formatElapsed } from "../log/stage_log.ts";
import { DependencyTimeoutError, StageFailedError } from "./errors.ts";
import type { StageRecord } from "./schedule.ts";

/** One stage in the report: the scheduler's record plus what the worker moved. */
export interface StageReport
  extends Pick<StageRecord, "id" | "index" | "order" | "exitCode" | "reason"> {
  /**
   * How the stage ended; `skipped` when a resumed run reused an earlier run's work (`reason`
   * says which run, and the other fields are that run's).
   */
  result: StageRecord["result"] | "skipped";
  /** When the stage started waiting for its dependencies (ISO 8601), when it started. */
  startedAt?: string;
  /** Dependency wait plus worker run, ms. */
  durationMs: number;
  /** Time spent waiting for dependencies, in ms. */
  waitMs: number;
  /**
   * Bytes the worker downloaded (its own account; transfers skipped because the file was
   * already there count 0), or the size of its inputs when the worker gave no account.
   */
  bytesIn: number;
  /**
   * Bytes the worker uploaded (its own account), or the size of the objects written while it
   * ran when the worker gave no account.
   */
  bytesOut: number;
  /** Artifact names (meta.json `images` keys) the worker returned, sorted. */
  artifacts: string[];
  /**
   * Object keys the worker uploaded (its own account), sorted. When the worker gave no account
   * (it died), the keys new or rewritten in the store since the previous stage ended.
   */
  objects: string[];
  /**
   * Every object the stage returned, as it was in the store when the stage ended (recorded for
   * succeeded stages; a skipped stage shows the earlier run's).
   */
  returned?: { key: string; size: number; sha256: string }[];
  /** The stage's log file (absolute). */
  logFile: string;
}

/** The serialisable outcome of a run. */
export interface RunReport {
  /** The run id (labels of everything the run created). */
  runId: string;
  /** The executor's name. */
  backend: string;
  /** How the run ended. */
  result: "succeeded" | "failed" | "interrupted";
  /** Exit code the coordinator ends with: 0 only when every stage succeeded. */
  exitCode: number;
  /** Why the run failed: the error's class and message, and its data. */
  error?: {
    type: string;
    message: string;
    stageId?: string;
    workerExitCode?: number;
    missing?: string[];
  };
  /** The work dir the builds were gathered into. */
  workDir: string;
  /** Where the builds landed (a directory, or an `s3://` location for an external relay). */
  buildsLocation: string;
  /** The architecture the run built for. */
  arch: string;
  /** The relay the workers used. */
  relay: {
    external: boolean;
    host: string;
    port: number;
    bucket: string;
    keyPrefix: string;
    /** Bytes the relay received (uploads) and sent (downloads) during the run, when known. */
    bytesReceived?: number;
    bytesSent?: number;
  };
  /** Latest build id for the arch at the end of the run. */
  latestBuild?: string;
  /** ISO time the run started. */
  startedAt: string;
  /** ISO time the run ended. */
  finishedAt: string;
  /** Wall time of the run, in ms. */
  durationMs: number;
  /** One report per stage, in plan order. */
  stages: StageReport[];
}

/** Human-readable byte count (`1.5 MiB`). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** The summary table: one row per stage (result, exit code, duration, bytes, artifacts). */
export function summaryTable(report: RunReport): string[] {
  const rows = [["STAGE", "RESULT", "EXIT", "DURATION", "IN", "OUT", "RETURNED"]];
  for (const s of report.stages) {
    const names = s.artifacts.length > 0
      ? s.artifacts
      : s.objects.map((k) => k.slice(k.lastIndexOf("/") + 1));
    rows.push([
      s.id,
      s.result,
      s.exitCode === null ? "-" : String(s.exitCode),
      s.result === "not-run" || s.result === "skipped" ? "-" : formatElapsed(s.durationMs),
      formatBytes(s.bytesIn),
      formatBytes(s.bytesOut),
      names.length === 0
        ? "-"
        : names.length <= 4
        ? names.join(", ")
        : `${names.slice(0, 3).join(", ")} +${names.length - 3} more`,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r.map((cell, c) => c === r.length - 1 ? cell : cell.padEnd(widths[c])).join("  ")
  );
}

/** The report's `error` for the error that ended a run (its class, message and data). */
export function errorInfo(e: unknown): RunReport["error"] {
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

/** The lines a run ends with: the summary table and the verdict. */
export function closingLines(report: RunReport, failure: unknown): string[] {
  const verdict = failure !== undefined
    ? `gangplank: run ${report.result}: ${
      failure instanceof Error ? failure.message : String(failure)
    }`
    : `gangplank: run succeeded: builds are in ${report.buildsLocation}` +
      (report.latestBuild ? ` (latest ${report.latestBuild})` : "");
  return ["", ...summaryTable(report), "", verdict];
}
