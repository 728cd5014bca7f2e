/**
 * The coordinator's view of a plan: each stage's id, JobSpec position, execution group and
 * what it waits for. This is the one seam between lib/plan and the coordinator.
 *
 * @module
 */

import type { Plan } from "../plan/mod.ts";
import type { StageNeeds } from "./inputs.ts";

/** A stage ready to schedule. */
export interface CoordinatorStage {
  id: string;
  index: number;
  /** Execution group (order 0 already mapped to 2 by the planner). */
  order: number;
  needs: StageNeeds;
  /** What the stage returns besides builds (its credential may write exactly these). */
  returns: { cache: boolean; cacheRepo: boolean; files: string[] };
}

/** The plan's stages, group by group (ascending), in JobSpec order within a group. */
export function stagesOf(plan: Plan): CoordinatorStage[] {
  return [...plan.groups].sort((a, b) => a.order - b.order).flatMap((g) =>
    g.stages.map((s) => ({
      id: s.id,
      index: s.index,
      order: g.order,
      needs: {
        requireArtifacts: [...s.requires.artifacts],
        requestArtifacts: [...s.requests.artifacts],
        requireCache: s.requires.cache,
        requestCache: s.requests.cache,
        requireCacheRepo: s.requires.cacheRepo,
        requestCacheRepo: s.requests.cacheRepo,
      },
      returns: {
        cache: s.returns.cache,
        cacheRepo: s.returns.cacheRepo,
        files: [...s.returns.files],
      },
    }))
  );
}
