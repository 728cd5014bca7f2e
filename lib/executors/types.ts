/**
 * The executor interface: how the coordinator starts one stage's worker somewhere (a local
 * process, a podman container on this or a remote host, a Kubernetes pod) and learns how it
 * ended. The coordinator never knows which backend it talks to.
 *
 * @module
 */

/** Where workers reach the relay (S3 endpoint), as seen from inside the worker. */
export interface RelayEndpoint {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
}

/** Everything an executor needs to start one stage's worker. */
export interface WorkerLaunch {
  /** Identifies the whole run; executors label what they create with it (for `--cleanup`). */
  runId: string;
  /** The JobSpec stage id this worker executes. */
  stageId: string;
  /** Position of the stage in the JobSpec (used in names such as `...-worker-<i>`). */
  stageIndex: number;
  /**
   * Non-secret environment of the worker, including `COSA_WORK_POD_JSON`, `COSA_FORCE_ARCH`.
   * Safe to show in a pod spec or `podman inspect`.
   */
  env: Record<string, string>;
  /**
   * Secret environment (the relay's secret key, as `COSA_RELAY_SECRET_KEY`). An executor must
   * pass these through a private channel (process env of a child, a podman secret, a
   * Kubernetes Secret referenced by `secretKeyRef`), never in argv, labels or a printed spec.
   */
  secretEnv: Record<string, string>;
  /** Receives the worker's output, one line at a time, without trailing newline. */
  onLine: (line: string, stream: "stdout" | "stderr") => void;
  /** Aborting stops the worker and releases everything the executor created for it. */
  signal: AbortSignal;
}

/** How a worker ended. */
export interface StageOutcome {
  /** The worker's exit code (128+n when killed by signal n; -1 when it never started). */
  exitCode: number;
  /** Set when the backend knows why it failed (e.g. `OOMKilled`, `ImagePullBackOff: ...`). */
  reason?: string;
}

/**
 * A backend that runs workers. Implementations: local processes, podman, Kubernetes.
 * Disposing an executor removes everything it still holds (containers, pods, secrets,
 * tunnels, temp dirs).
 */
export interface Executor extends AsyncDisposable {
  /** Short backend name for logs and reports: `local`, `podman`, `kube`. */
  readonly name: string;
  /**
   * Called once before any stage runs, with the relay's local address. Returns the address
   * workers must use (e.g. the far end of an SSH remote forward, or the pod IP).
   */
  prepare(
    relay: RelayEndpoint,
    /** `workDir`: the coordinator's work dir (the local executor records it for cleanup). */
    opts: { runId: string; workDir?: string; signal: AbortSignal },
  ): Promise<RelayEndpoint>;
  /** Architecture of the machines this executor runs workers on (e.g. `x86_64`). */
  arch(opts: { signal: AbortSignal }): Promise<string>;
  /** Runs one worker to completion. Resolves with its outcome; rejects only on infra errors. */
  runStage(launch: WorkerLaunch): Promise<StageOutcome>;
}
