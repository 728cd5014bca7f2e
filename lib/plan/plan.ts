/**
 * Execution plans: which stages run together, what each waits for, receives, builds and
 * returns, and the commands it will run. Impossible plans are rejected before anything runs.
 *
 * @module
 */
import { ProblemListError } from "../errors/mod.ts";
import {
  effectiveOrder,
  type JobSpec,
  type Override,
  producedArtifacts,
  type Stage,
  type StageCommands,
  stageCommands,
} from "../jobspec/mod.ts";

/** Artifacts and caches a stage requires (must wait for) or requests (fetched if present). */
export interface PlanInputs {
  /** meta.json artifact names. */
  artifacts: string[];
  /** `cache.tar.gz` (`/srv/cache`). */
  cache: boolean;
  /** `repo.tar.gz` (`/srv/tmp/repo`). */
  cacheRepo: boolean;
}

/** What a stage sends back to the store. */
export interface PlanOutputs {
  /** meta.json artifacts its `build_artifacts` produce. */
  artifacts: string[];
  /** Returns the cache tarball. */
  cache: boolean;
  /** Returns the repo cache tarball. */
  cacheRepo: boolean;
  /** `return_files` (relative to /srv), uploaded as `[prefix/]cache/<path>`. */
  files: string[];
}

/** One stage as planned. */
export interface PlannedStage {
  /** Stage id. */
  id: string;
  /** Position in `spec.stages`. */
  index: number;
  /** Effective execution group (`execution_order`, 0 → 2). */
  order: number;
  /** The stage's description. */
  description?: string;
  /** The stage as written in the JobSpec. */
  stage: Stage;
  /** What must exist before it starts. */
  requires: PlanInputs;
  /** What it receives when it exists. */
  requests: PlanInputs;
  /** Build shorthands, as written. */
  builds: string[];
  /** What it returns. */
  returns: PlanOutputs;
  /** Stages of the same group this one must wait for (they produce what it requires). */
  waitsFor: string[];
  /** Stages of earlier groups that produce what it requires. */
  after: string[];
  /** Un-rendered commands (templates are rendered on the worker against meta.json). */
  commands: StageCommands;
  /** Main commands run in parallel. */
  concurrent: boolean;
  /** Post commands run after a failure too. */
  postAlways: boolean;
  /** Overrides put into `/srv/overrides`. */
  overrides: Override[];
}

/** Stages that start together; the next group starts when all of them have finished. */
export interface PlanGroup {
  /** Execution order of the group. */
  order: number;
  /** Its stages, in JobSpec order. */
  stages: PlannedStage[];
}

/** A validated plan. */
export interface Plan {
  /** Ascending by order. */
  groups: PlanGroup[];
  /** Every stage, in execution order (group by group, JobSpec order within a group). */
  stages: PlannedStage[];
  /** Things that will work but look unintended. */
  warnings: string[];
}

/** One reason a plan is impossible. */
export interface PlanProblem {
  /** The stages involved. */
  stageIds: string[];
  /** What is wrong. */
  message: string;
}

/** The JobSpec cannot run: requirements nothing produces, waits in a cycle, bad commands. */
export class PlanError extends ProblemListError {
  /** Every problem found. */
  constructor(readonly problems: PlanProblem[]) {
    super(problems.map((p) => p.message));
  }
}

/** Options of {@link planJob}. */
export interface PlanOptions {
  /** What the store already holds from earlier runs (the coordinator fills this in). */
  existing?: { artifacts?: string[]; cache?: boolean; cacheRepo?: boolean };
  /**
   * The store's contents are not known yet (a real run checks them while waiting): a
   * requirement no stage produces becomes a warning instead of a problem.
   */
  assumeExisting?: boolean;
}

const uniq = <T>(xs: T[]): T[] => [...new Set(xs)];

/**
 * Plans a JobSpec: groups by effective execution order (ascending, concurrent within a group),
 * resolves every `require_*` against stages of earlier groups, stages of the same group
 * (a wait) or `existing`, and expands commands.
 *
 * @throws {PlanError} naming the stage ids involved, for every impossible requirement, every
 *   wait cycle inside a group, duplicate or empty ids, and unexpandable commands.
 */
export function planJob(spec: JobSpec, opts: PlanOptions = {}): Plan {
  const problems: PlanProblem[] = [];
  const warnings: string[] = [];
  const existing = {
    artifacts: opts.existing?.artifacts ?? [],
    cache: !!opts.existing?.cache,
    cacheRepo: !!opts.existing?.cacheRepo,
  };

  const seen = new Set<string>();
  const planned: PlannedStage[] = spec.stages.map((stage, index) => {
    const id = stage.id ?? "";
    if (id.trim() === "") {
      problems.push({ stageIds: [id], message: `stages[${index}]: stage id must not be empty` });
    } else if (seen.has(id)) {
      problems.push({ stageIds: [id], message: `stage ${JSON.stringify(id)}: duplicate stage id` });
    }
    seen.add(id);
    let commands: StageCommands = { prep: [], main: [], post: [] };
    try {
      commands = stageCommands(stage, spec);
    } catch (e) {
      problems.push({
        stageIds: [id],
        message: `stage ${JSON.stringify(id)}: ${(e as Error).message}`,
      });
    }
    const builds = [...(stage.build_artifacts ?? [])];
    const requires: PlanInputs = {
      artifacts: uniq(stage.require_artifacts ?? []),
      cache: !!stage.require_cache,
      cacheRepo: !!stage.require_cache_repo,
    };
    return {
      id,
      index,
      order: effectiveOrder(stage),
      description: stage.description,
      stage,
      requires,
      requests: {
        artifacts: uniq(stage.request_artifacts ?? []).filter((a) =>
          !requires.artifacts.includes(a)
        ),
        cache: !!stage.request_cache && !requires.cache,
        cacheRepo: !!stage.request_cache_repo && !requires.cacheRepo,
      },
      builds,
      returns: {
        artifacts: uniq(builds.flatMap(producedArtifacts)),
        cache: !!stage.return_cache,
        cacheRepo: !!stage.return_cache_repo,
        files: [...(stage.return_files ?? [])],
      },
      waitsFor: [],
      after: [],
      commands,
      concurrent: !!stage.concurrent,
      postAlways: !!stage.post_always,
      overrides: [...(stage.overrides ?? [])],
    };
  });

  const orders = uniq(planned.map((s) => s.order)).sort((a, b) => a - b);
  const groups: PlanGroup[] = orders.map((order) => ({
    order,
    stages: planned.filter((s) => s.order === order),
  }));

  type Need = { what: string; provides: (p: PlannedStage) => boolean; exists: boolean };
  for (const s of planned) {
    const needs: Need[] = [
      ...s.requires.artifacts.map((a) => ({
        what: `artifact ${a}`,
        provides: (p: PlannedStage) => p.returns.artifacts.includes(a),
        exists: existing.artifacts.includes(a),
      })),
      ...(s.requires.cache
        ? [{
          what: "the cache (require_cache)",
          provides: (p: PlannedStage) => p.returns.cache,
          exists: existing.cache,
        }]
        : []),
      ...(s.requires.cacheRepo
        ? [{
          what: "the repo cache (require_cache_repo)",
          provides: (p: PlannedStage) => p.returns.cacheRepo,
          exists: existing.cacheRepo,
        }]
        : []),
    ];
    for (const n of needs) {
      const others = planned.filter((p) => p !== s && n.provides(p));
      const earlier = others.filter((p) => p.order < s.order);
      const same = others.filter((p) => p.order === s.order);
      if (earlier.length) s.after.push(...earlier.map((p) => p.id));
      else if (same.length) s.waitsFor.push(...same.map((p) => p.id));
      else if (!n.exists && opts.assumeExisting) {
        warnings.push(
          `stage ${JSON.stringify(s.id)} requires ${n.what}, which no stage of this JobSpec ` +
            `produces before it: it must already be in the store`,
        );
      } else if (!n.exists) {
        const later = others.filter((p) => p.order > s.order);
        const hint = later.length
          ? `; ${
            later.map((p) => `stage ${JSON.stringify(p.id)} (group ${p.order})`).join(", ")
          } ` +
            `produces it only in a later group`
          : "";
        problems.push({
          stageIds: [s.id, ...later.map((p) => p.id)],
          message: `stage ${JSON.stringify(s.id)} (group ${s.order}) requires ${n.what}, ` +
            `but no stage of an earlier or the same group produces it and the store has none${hint}`,
        });
      }
    }
    s.after = uniq(s.after);
    s.waitsFor = uniq(s.waitsFor);
  }

  // Wait cycles within a group.
  for (const g of groups) {
    const byId = new Map(g.stages.map((s) => [s.id, s]));
    const state = new Map<string, 1 | 2>();
    const reported = new Set<string>();
    const visit = (s: PlannedStage, stack: string[]) => {
      state.set(s.id, 1);
      for (const w of s.waitsFor) {
        const t = byId.get(w);
        if (!t) continue;
        if (state.get(w) === 1) {
          const cycle = [...stack.slice(stack.indexOf(w)), s.id].filter((x, i, a) =>
            a.indexOf(x) === i
          );
          const key = [...cycle].sort().join("\0");
          if (!reported.has(key)) {
            reported.add(key);
            problems.push({
              stageIds: cycle,
              message: `stages ${
                cycle.map((c) => JSON.stringify(c)).join(", ")
              } (group ${g.order}) ` +
                `wait for each other in a cycle`,
            });
          }
        } else if (!state.has(w)) visit(t, [...stack, s.id]);
      }
      state.set(s.id, 2);
    };
    for (const s of g.stages) if (!state.has(s.id)) visit(s, []);
  }

  for (const g of groups) {
    const producers = new Map<string, string[]>();
    for (const s of g.stages) {
      for (const a of s.returns.artifacts) producers.set(a, [...(producers.get(a) ?? []), s.id]);
    }
    for (const [a, ids] of producers) {
      if (ids.length > 1) {
        warnings.push(
          `group ${g.order}: stages ${ids.map((i) => JSON.stringify(i)).join(", ")} all build ${a}`,
        );
      }
    }
  }
  const fin = planned.filter((s) => s.builds.some((b) => b.toLowerCase() === "finalize"));
  for (const f of fin) {
    if (f.order !== orders[orders.length - 1]) {
      warnings.push(`stage ${JSON.stringify(f.id)} runs finalize before the last group`);
    }
  }

  if (problems.length) throw new PlanError(problems);
  return { groups, stages: groups.flatMap((g) => g.stages), warnings };
}
