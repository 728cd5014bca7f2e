/**
 * Log streaming for stage workers: `[stage-id +12.3s] line` on the console, the raw lines in
 * `<workDir>/logs/<stage>.log`, and line splitting of worker output.
 *
 * @module
 */
export {
  formatElapsed,
  logNamesFor,
  openStageLog,
  sanitizeStageId,
  type StageLog,
  type StageLogOptions,
} from "./stage_log.ts";
export { forEachLine } from "./lines.ts";
