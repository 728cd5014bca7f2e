/**
 * The run state a run keeps in its work dir while it runs (see ./resume.ts): which stages
 * ran with which definition and outcome, and the sha256 of every object they returned. The
 * file is rewritten atomically when a stage starts and when it ends, so a coordinator killed
 * at any moment (Ctrl-C, kill -9) leaves a state a later `--resume` can trust.
 *
 * @module
 */

import { jobSpecToYaml } from "../jobspec/mod.ts";
import type { JobSpec } from "../jobspec/mod.ts";
import type { CoordinatorStage } from "./plan_view.ts";
import type { StageReport } from "./report.ts";
import type { RecordedEnv } from "./env_digest.ts";
import { type RecordedStage, type RunState, stageFingerprint, writeRunState } from "./resume.ts";

/** Options of {@link RunStateTracker}. */
export interface RunStateTrackerOptions {
  workDir: string;
  runId: string;
  backend: string;
  arch: string;
  spec: JobSpec;
  /** The workers' environment as recorded (keyed digests, never values); absent: none. */
  env?: RecordedEnv;
  store: RunState["store"];
  /** Every stage of the plan. */
  stages: CoordinatorStage[];
  /** The state of the run being resumed: its objects and the records of skipped stages. */
  previous?: RunState;
  /** Stages skipped by a resume: their previous records are kept as they are. */
  skipped?: ReadonlySet<string>;
  /** Hashes a returned object (`undefined` when it is missing). */
  hash(key: string): Promise<{ sha256: string; size: number } | undefined>;
  /** Reports a state file that cannot be written (once; the run goes on). */
  warn(line: string): void;
  /** Writes the state file (default {@link writeRunState}). Seam for tests. */
  write?: (workDir: string, state: RunState) => Promise<void>;
}

/** Keeps `<workDir>/.gangplank-run.json` up to date as stages start and end. */
export class RunStateTracker {
  readonly #o: RunStateTrackerOptions;
  readonly #state: RunState;
  #writes: Promise<void> = Promise.resolve();
  /** The write not started yet that will carry the latest changes. */
  #next: Promise<void> | undefined;
  #warned = false;

  constructor(o: RunStateTrackerOptions) {
    this.#o = o;
    const stages: Record<string, RecordedStage> = {};
    for (const s of o.stages) {
      const prev = o.previous?.stages[s.id];
      stages[s.id] = o.skipped?.has(s.id) && prev ? prev : {
        fingerprint: stageFingerprint(o.spec, s.index),
        ...(o.env ? { env: o.env } : {}),
        result: "not-run",
        runId: o.runId,
        outputs: [],
      };
    }
    this.#state = {
      version: 1,
      runId: o.runId,
      backend: o.backend,
      arch: o.arch,
      specYaml: jobSpecToYaml(o.spec, { header: false }),
      store: o.store,
      objects: { ...o.previous?.objects },
      stages,
      updatedAt: new Date().toISOString(),
    };
  }

  /** Writes the initial state (every stage not run yet, skipped ones as they were). */
  begin(): Promise<void> {
    return this.#save();
  }

  /** A stage's worker is starting: recorded as `running` until it ends. */
  started(s: CoordinatorStage): Promise<void> {
    const r = this.#state.stages[s.id];
    r.result = "running";
    r.runId = this.#o.runId;
    r.outputs = [];
    delete r.report;
    return this.#save();
  }

  /**
   * A stage ended. The sha256 of every object it wrote is recorded, whatever its outcome (a
   * failed worker still returns what it built): the store as the run last saw it is what a
   * resume expects to find, so only changes made outside the run count as "changed".
   */
  async ended(s: CoordinatorStage, rep: StageReport): Promise<void> {
    const r = this.#state.stages[s.id];
    for (const key of rep.objects) {
      try {
        const h = await this.#o.hash(key);
        if (h) this.#state.objects[key] = h;
        else delete this.#state.objects[key];
      } catch {
        // Unverifiable: a resume will find it "changed" and run the stage again.
        delete this.#state.objects[key];
      }
    }
    if (rep.objects.length) {
      rep.returned = rep.objects.flatMap((key) => {
        const h = this.#state.objects[key];
        return h ? [{ key, size: h.size, sha256: h.sha256 }] : [];
      });
    }
    r.result = rep.result;
    r.runId = this.#o.runId;
    r.outputs = rep.result === "succeeded" ? [...rep.objects] : [];
    r.report = structuredClone(rep);
    await this.#save();
  }

  /** The run ended (however): pending writes are waited for. */
  async finish(): Promise<void> {
    await this.#writes;
  }

  /**
   * Writes the state after every change made so far. One write at a time; the changes made
   * while one runs go out together in the next (its snapshot is taken when it starts), so the
   * 50 stages of a group starting at once cost two writes, not 50 queued one behind another.
   */
  #save(): Promise<void> {
    this.#next ??= this.#writes.then(() => {
      this.#next = undefined;
      this.#state.updatedAt = new Date().toISOString();
      return (this.#o.write ?? writeRunState)(this.#o.workDir, structuredClone(this.#state));
    }).catch((e) => {
      if (!this.#warned) {
        this.#warned = true;
        this.#o.warn(
          `gangplank: warning: cannot write the run state (resume will not work): ${
            (e as Error).message
          }`,
        );
      }
    });
    this.#writes = this.#next;
    return this.#next;
  }
}
