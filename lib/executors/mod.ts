/**
 * Executors run stage workers: locally, with podman, or as Kubernetes pods.
 *
 * @module
 */
export type * from "./types.ts";
export { LocalExecutor, type LocalExecutorOptions } from "./local.ts";
export {
  PodmanExecutor,
  type PodmanExecutorOptions,
  type PodmanSshOptions,
  WorkerImageError,
} from "./podman.ts";
export {
  DenoImageError,
  ensureStockVolumes,
  type PodmanWorkerBundle,
  readPodmanWorkerBundle,
  StockCacheError,
} from "./podman_stock.ts";
export {
  cleanupKube,
  type CleanupResult,
  isOpenShift3,
  KubeExecutor,
  type KubeExecutorOptions,
} from "./kube.ts";
