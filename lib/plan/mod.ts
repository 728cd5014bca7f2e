/**
 * Execution plans for JobSpecs: groups, per-stage requirements/requests/outputs, waits and
 * commands, with impossible plans rejected up front ({@link PlanError}).
 *
 * @example
 * ```ts
 * import { planJob } from "./mod.ts";
 * const plan = planJob(spec, { existing: { artifacts: ["ostree"] } });
 * for (const g of plan.groups) console.log(g.order, g.stages.map((s) => s.id));
 * ```
 * @module
 */
export * from "./plan.ts";
