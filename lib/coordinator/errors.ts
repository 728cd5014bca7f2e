/**
 * Typed errors of a run: a stage that failed, a dependency that never appeared.
 *
 * @module
 */

import { GangplankError } from "../errors/mod.ts";

/** A stage's worker ended with a non-zero exit code (or could not be run). */
export class StageFailedError extends GangplankError {
  /** Exit code of the coordinator: the worker's code when it is a plain 1..125, else 1. */
  override readonly exitCode: number;
  /** The stage that failed. */
  readonly stageId: string;
  /** The worker's exit code (128+n when killed by signal n; -1 when it never started). */
  readonly workerExitCode: number;
  /** Why, in one line. */
  readonly reason?: string;
  /** Stage `stageId` ended with `workerExitCode`; `reason` says why in one line. */
  constructor(init: { stageId: string; workerExitCode: number; reason?: string }) {
    const { stageId, workerExitCode, reason } = init;
    super(
      `stage "${stageId}" failed: exit code ${workerExitCode}` + (reason ? ` (${reason})` : ""),
    );
    this.stageId = stageId;
    this.workerExitCode = workerExitCode;
    if (reason !== undefined) this.reason = reason;
    this.exitCode = 1;
  }
}

/** A stage's required artifacts or caches did not appear before the dependency timeout. */
export class DependencyTimeoutError extends GangplankError {
  /** The stage that waited. */
  readonly stageId: string;
  /** What was still missing, e.g. `artifact "qemu"`, `cache "cache.tar.gz"`. */
  readonly missing: string[];
  /** How long it waited. */
  readonly timeoutMs: number;
  /** Stage `stageId` waited `timeoutMs` for `missing`. */
  constructor(init: { stageId: string; missing: string[]; timeoutMs: number }) {
    const { stageId, missing, timeoutMs } = init;
    super(
      `stage "${stageId}": required ${missing.join(", ")} never appeared ` +
        `(waited ${Math.round(timeoutMs / 1000)}s)`,
    );
    this.stageId = stageId;
    this.missing = missing;
    this.timeoutMs = timeoutMs;
  }
}
