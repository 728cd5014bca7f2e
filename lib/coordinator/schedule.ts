/**
 * The scheduling core of a run, independent of relays, stores and plans: execution groups in
 * ascending order, the stages of a group in parallel, each stage waiting (re-checking every
 * poll interval, reference §12.1.1 fixed) until its dependencies are satisfied or the timeout,
 * and the first failure stopping the run: the group's other stages are cancelled and later
 * groups never start.
 *
 * @module
 */

import type { StageOutcome } from "../executors/types.ts";
import { DependencyTimeoutError, StageFailedError } from "./errors.ts";
import { pause } from "../toolkit/delay.ts";

/** One stage as the scheduler sees it. */
export interface ScheduledStage {
  id: string;
  /** Position of the stage in the JobSpec. */
  index: number;
}

/** One execution group. */
export interface ScheduledGroup<S extends ScheduledStage = ScheduledStage> {
  order: number;
  stages: S[];
}

/** Result of a dependency check: ready with the inputs to send, or what is still missing. */
export type Readiness<T> = { ready: true; inputs: T } | { ready: false; missing: string[] };

/** How a stage ended, as recorded by the scheduler. */
export type StageResult =
  | "succeeded"
  | "failed"
  | "dependency-timeout"
  | "cancelled"
  | "not-run";

/** What the scheduler records per stage. */
export interface StageRecord {
  /** Stage id. */
  id: string;
  /** Position in the plan. */
  index: number;
  /** Execution group. */
  order: number;
  /** How the stage ended. */
  result: StageResult;
  /** Worker exit code; null when no worker ran. */
  exitCode: number | null;
  /** Why it did not succeed, in one line. */
  reason?: string;
  /** Epoch ms when the stage started waiting for its dependencies. */
  startedAt?: number;
  /** Time spent waiting for dependencies. */
  waitMs: number;
  /** Time from worker launch to its end. */
  runMs: number;
}

/** Options of {@link schedule}. */
export interface ScheduleOptions<S extends ScheduledStage, T> {
  groups: ScheduledGroup<S>[];
  /** Checks the stage's dependencies once. Throwing is an infrastructure error. */
  check(stage: S, opts: { signal: AbortSignal }): Promise<Readiness<T>>;
  /** Runs the stage's worker with the inputs `check` found. */
  launch(stage: S, inputs: T, opts: { signal: AbortSignal }): Promise<StageOutcome>;
  /** Called when a stage is still waiting after a check (once per check). */
  onWaiting?(stage: S, missing: string[], waitedMs: number): void;
  /** Called when a stage ends, whatever the result. */
  onStageEnd?(stage: S, record: StageRecord): void | Promise<void>;
  /** Called when a group starts. */
  onGroupStart?(group: ScheduledGroup<S>): void;
  /**
   * Called when every stage of a group has ended (also after a failure). A rejection ends the
   * run with that error (unless an earlier one already did); later groups do not start.
   */
  onGroupEnd?(group: ScheduledGroup<S>): void | Promise<void>;
  dependencyTimeoutMs: number;
  pollIntervalMs: number;
  signal: AbortSignal;
  now?: () => number;
  /** Waits `ms` or until `signal` aborts (resolves either way). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Outcome of {@link schedule}: every stage's record and the error that stopped the run. */
export interface ScheduleResult {
  records: StageRecord[];
  /** The first failure (StageFailedError, DependencyTimeoutError, an infra error, or the abort reason). */
  error?: unknown;
}

/** Runs the groups. Never throws: the first error is returned in the result. */
export async function schedule<S extends ScheduledStage, T>(
  opts: ScheduleOptions<S, T>,
): Promise<ScheduleResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? pause;
  const records = new Map<S, StageRecord>();
  for (const g of opts.groups) {
    for (const s of g.stages) {
      records.set(s, {
        id: s.id,
        index: s.index,
        order: g.order,
        result: "not-run",
        exitCode: null,
        waitMs: 0,
        runMs: 0,
      });
    }
  }
  let firstError: unknown;
  const fail = (e: unknown, group: AbortController) => {
    if (firstError === undefined) firstError = e;
    group.abort(e);
  };

  for (const group of opts.groups) {
    if (firstError !== undefined) break;
    if (opts.signal.aborted) {
      firstError = opts.signal.reason;
      break;
    }
    opts.onGroupStart?.(group);
    const ctl = new AbortController();
    const onOuter = () => fail(opts.signal.reason, ctl);
    opts.signal.addEventListener("abort", onOuter, { once: true });
    try {
      await Promise.all(group.stages.map(async (stage) => {
        const rec = records.get(stage)!;
        const signal = ctl.signal;
        try {
          rec.startedAt = now();
          // Dependency wait: re-check until satisfied, the timeout, or an abort.
          let inputs: T | undefined;
          for (;;) {
            if (signal.aborted) {
              rec.result = "cancelled";
              return;
            }
            const r = await opts.check(stage, { signal });
            const waited = now() - rec.startedAt;
            if (r.ready) {
              inputs = r.inputs;
              break;
            }
            if (waited >= opts.dependencyTimeoutMs) {
              rec.waitMs = waited;
              rec.result = "dependency-timeout";
              rec.reason = `missing ${r.missing.join(", ")}`;
              fail(
                new DependencyTimeoutError({
                  stageId: stage.id,
                  missing: r.missing,
                  timeoutMs: opts.dependencyTimeoutMs,
                }),
                ctl,
              );
              return;
            }
            opts.onWaiting?.(stage, r.missing, waited);
            await sleep(
              Math.min(opts.pollIntervalMs, opts.dependencyTimeoutMs - waited),
              signal,
            );
          }
          rec.waitMs = now() - rec.startedAt;
          if (signal.aborted) {
            rec.result = "cancelled";
            return;
          }
          const t0 = now();
          let outcome: StageOutcome;
          try {
            outcome = await opts.launch(stage, inputs as T, { signal });
          } finally {
            rec.runMs = now() - t0;
          }
          rec.exitCode = outcome.exitCode;
          if (outcome.reason) rec.reason = outcome.reason;
          if (signal.aborted) {
            rec.result = outcome.exitCode === 0 ? "succeeded" : "cancelled";
          } else if (outcome.exitCode === 0) {
            rec.result = "succeeded";
          } else {
            rec.result = "failed";
            fail(
              new StageFailedError({
                stageId: stage.id,
                workerExitCode: outcome.exitCode,
                ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
              }),
              ctl,
            );
          }
        } catch (e) {
          if (signal.aborted) {
            rec.result = "cancelled";
          } else {
            rec.result = "failed";
            rec.reason = e instanceof Error ? e.message : String(e);
            fail(e, ctl);
          }
        } finally {
          await opts.onStageEnd?.(stage, rec);
        }
      }));
    } finally {
      opts.signal.removeEventListener("abort", onOuter);
    }
    if (opts.onGroupEnd && !opts.signal.aborted) {
      try {
        await opts.onGroupEnd(group);
      } catch (e) {
        if (firstError === undefined) firstError = e;
      }
    }
  }
  return {
    records: opts.groups.flatMap((g) => g.stages.map((s) => records.get(s)!)),
    ...(firstError !== undefined ? { error: firstError } : {}),
  };
}
