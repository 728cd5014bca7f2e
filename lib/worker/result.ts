/**
 * What a worker did ({@link WorkerResult}) and the two ways it leaves the worker: the summary
 * line (lib/workspec's contract) and the Kubernetes termination message.
 *
 * @module
 */

import { formatSummaryLine } from "../workspec/summary.ts";
import type { CommandFailure } from "./stage.ts";

/** What a worker did; {@link WorkerResult.exitCode} is the process exit code. */
export interface WorkerResult {
  /** The process exit code (0 on success). */
  exitCode: number;
  /** One line saying why it failed (absent on success). */
  message?: string;
  /** The stages this worker ran. */
  stageIds: string[];
  /** Every failed command (concurrent stages can have several). */
  failures: CommandFailure[];
  /** Bytes downloaded (transfers skipped because the file was already there count 0). */
  bytesIn: number;
  /** Bytes uploaded. */
  bytesOut: number;
  /** Files downloaded. */
  filesFetched: number;
  /** Downloads skipped because the destination already had the expected sha256. */
  filesSkipped: number;
  /** Object keys uploaded (with key prefix). */
  uploaded: string[];
  /** Names (`images` keys) of the artifacts uploaded. */
  artifactsReturned: string[];
  /** Upload problems (`<key>: <error>`); any makes the worker fail. */
  uploadErrors: string[];
  /** Latest build for the arch after the stage, if any. */
  buildId?: string;
  /** Entries this worker added to `builds.json` (see lib/workspec's `WorkerSummary`). */
  builds?: { id: string; arches: string[] }[];
  /** True when aborted (signal). */
  aborted: boolean;
}

/** The summary line for a result (no secrets in it): lib/workspec's `WorkerSummary`. */
export function summaryLine(r: WorkerResult): string {
  return formatSummaryLine({
    exitCode: r.exitCode,
    stageIds: r.stageIds,
    bytesIn: r.bytesIn,
    bytesOut: r.bytesOut,
    filesFetched: r.filesFetched,
    filesSkipped: r.filesSkipped,
    artifactsReturned: r.artifactsReturned,
    uploaded: r.uploaded.length,
    uploadedKeys: r.uploaded,
    uploadErrors: r.uploadErrors.length,
    ...(r.buildId ? { buildId: r.buildId } : {}),
    ...(r.builds?.length ? { builds: r.builds } : {}),
    ...(r.message ? { message: r.message } : {}),
  });
}

/**
 * A compact JSON outcome for a Kubernetes termination log (at most 4096 bytes: the artifact
 * list and message are shortened to fit).
 */
export function terminationMessage(r: WorkerResult): string {
  const msg = {
    exitCode: r.exitCode,
    ...(r.buildId ? { buildId: r.buildId } : {}),
    artifactsReturned: [...r.artifactsReturned],
    ...(r.message ? { message: r.message } : {}),
  };
  let text = JSON.stringify(msg);
  while (text.length > 4096 && msg.artifactsReturned.length) {
    msg.artifactsReturned.pop();
    text = JSON.stringify(msg);
  }
  if (text.length > 4096 && msg.message) {
    msg.message = msg.message.slice(0, 3500) + "...";
    text = JSON.stringify(msg);
  }
  return text;
}
