/**
 * Progress reporting for transfers: a redrawn bar on a terminal, a periodic one-line log
 * otherwise.
 *
 * @module
 */
export {
  createProgress,
  longTransferProgress,
  type Progress,
  type ProgressFactory,
  progressFactory,
  type ProgressFactoryOptions,
  type ProgressOptions,
} from "./progress.ts";
