/**
 * Log streaming for stage workers: `[stage-id +12.3s] line` on the console, the raw lines in
 * `<workDir>/logs/<stage>.log`, and the one line splitter (bounded, linear) of the project.
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
export {
  DEFAULT_MAX_LINE_LENGTH,
  forEachLine,
  LINE_CONTINUES,
  type LineSplitOptions,
  LineSplitStream,
  LineSplitter,
  WORKER_MAX_LINE_LENGTH,
} from "./lines.ts";
export { type LiveStageEnd, LiveView, type LiveViewOptions } from "./live_view.ts";
