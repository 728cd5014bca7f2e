/**
 * The coordinator's view of a plan: each stage's id, JobSpec position, execution group and
 * what it waits for. This is the one seam between lib/plan and the coordinator.
 *
 * @module
 */

import type { JobSpec } from "../jobspec/mod.ts";
import type { Plan } from "../plan/mod.ts";
import type { StageNeeds } from "./inputs.ts";

/** A stage ready to schedule. */
export interface PlannedStage {
  id: string;
  index: number;
  /** Execution group (order 0 already mapped to 2). */
  order: number;
  needs: StageNeeds;
}

/** The plan's stages in JobSpec order. */
export function stagesOf(plan: Plan, spec: JobSpec): PlannedStage[] {
  void plan;
  return spec.stages.map((s, index) => ({
    id: s.id,
    index,
    order: s.execution_order || 2,
    needs: {
      requireArtifacts: [...(s.require_artifacts ?? [])],
      requestArtifacts: [...(s.request_artifacts ?? [])],
      requireCache: !!s.require_cache,
      requestCache: !!s.request_cache,
      requireCacheRepo: !!s.require_cache_repo,
      requestCacheRepo: !!s.request_cache_repo,
    },
  }));
}
