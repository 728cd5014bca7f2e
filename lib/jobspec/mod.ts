/**
 * JobSpecs: the typed model (YAML keys as property names), strict parsing with exact
 * `file:line:col` locations, Go-style command templates (plain text), build/kola/publish
 * shorthands, stage commands, spec generation from CLI shorthands, repo and override paths.
 *
 * @example
 * ```ts
 * import { loadJobSpec, stageCommands } from "./mod.ts";
 * const { spec } = await loadJobSpec("jobspec.yaml", {});
 * console.log(stageCommands(spec.stages[0], spec).main);
 * ```
 * @module
 */
export * from "./types.ts";
export * from "./errors.ts";
export {
  buildIdProblem,
  jobBucketProblem,
  loadJobSpec,
  MAX_ALIAS_EXPANSION,
  parseJobSpec,
  relativePathProblem,
} from "./parse.ts";
export type { ParseOptions, ParseResult } from "./parse.ts";
export * from "./shorthands.ts";
export * from "./repo.ts";
export * from "./override.ts";
export { checkTemplateSyntax, renderTemplate } from "./template.ts";
export type { RenderData } from "./template.ts";
export { generateJobSpec, jobSpecToYaml } from "./generate.ts";
export type { GenerateOptions } from "./generate.ts";
