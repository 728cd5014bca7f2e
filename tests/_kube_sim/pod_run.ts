/**
 * The shapes the simulated kubelet's parts share: its options, a pod's run state, a
 * container's launch description and handle, and the {@link KubeletHost} view of the kubelet
 * that the runtime, status and volume helpers are given.
 *
 * @module
 */

import type { KObj, ObjectStore } from "./store.ts";
import type { Faults } from "./faults.ts";
import type { LogBuffer } from "./logs.ts";
import type { PodAddress, PodNetwork } from "./network.ts";

/** Options of the simulated kubelet. */
export interface KubeletOptions {
  /**
   * `"pod"` (default, as root with iproute2): each pod in its own network namespace with its
   * own address (see `network.ts`); `"host"`: pods share the host's network and loopback.
   */
  network?: "pod" | "host";
  /** How containers run (see the module doc). Default `"auto"`. */
  mode?: "auto" | "process" | "podman";
  /** The node's name. Default `kube-sim-node`. */
  nodeName?: string;
  /** Whether the node offers `devices.kubevirt.io/kvm` (allocatable 1k). Default false. */
  kvm?: boolean;
  /** Node allocatable cpu / memory. Default `"16"` / `"64Gi"`. */
  cpu?: string;
  memory?: string;
  /** Upper bound of the grace period actually waited before SIGKILL, ms. Default 3000. */
  maxGraceMs?: number;
  /** Delay between status transitions, ms (so watchers see each step). Default 20. */
  stepMs?: number;
  /**
   * podman's global options, put before `run` (podman mode): e.g. `--hooks-dir` with an OCI
   * hook that never returns, to test a container start that hangs.
   */
  podmanGlobalArgs?: string[];
  /** Extra environment for process-mode containers (e.g. `DENO_DIR`). */
  processEnv?: Record<string, string>;
  /**
   * Last chance to change how a container is run (command, env, mounts, mode) before it
   * starts; return a replacement or nothing to keep it.
   */
  rewrite?: (launch: ContainerLaunch) => ContainerLaunch | void;
  /** Diagnostics of the simulator (never secret values). */
  log?: (msg: string) => void;
}

/** One bind mount of a container. */
export interface MountSpec {
  hostPath: string;
  mountPath: string;
  readOnly: boolean;
}

/** Everything needed to start one container. */
export interface ContainerLaunch {
  pod: KObj;
  container: string;
  init: boolean;
  image: string;
  /** `command` (entrypoint override) or undefined to use the image's. */
  command?: string[];
  args: string[];
  /** Values from the pod spec (`env[].value`, fieldRef). */
  env: Record<string, string>;
  /** Values taken from Secrets / ConfigMaps (never put in argv). */
  secretEnv: Record<string, string>;
  workingDir?: string;
  mounts: MountSpec[];
  mode: "process" | "podman";
  runAsUser?: number;
  runAsGroup?: number;
  /** The pod's `fsGroup` and `supplementalGroups`: supplementary groups of the process. */
  groups?: number[];
  privileged?: boolean;
  /**
   * Bytes the container reads on stdin, then end-of-file (process mode; set by `rewrite`): what
   * `oc start-build --from-*` streams into a build pod. Default: no stdin.
   */
  stdin?: Uint8Array;
}

/** How a container ended. */
export interface Termination {
  exitCode: number;
  reason: string;
  message?: string;
  signal?: number;
}

export interface Handle {
  /** SIGTERM, then SIGKILL after graceMs. */
  terminate(graceMs: number): void;
  kill(): void;
  exited: Promise<number>;
  /** Exit was caused by a signal (number) when known. */
  signal?: () => number | undefined;
  /** Why the container process could not be started at all (the runtime's message). */
  startError?: () => string | undefined;
}

export type CState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | {
    terminated: {
      exitCode: number;
      reason: string;
      message?: string;
      signal?: number;
      startedAt: string;
      finishedAt: string;
      containerID: string;
    };
  };

export interface PodRun {
  uid: string;
  ns: string;
  name: string;
  tmp?: string;
  stopped: boolean;
  /** Why the pod was stopped; sets phase/reason/message of the final status. */
  override?: { phase: string; reason: string; message: string };
  handles: Set<Handle>;
  graceMs: number;
  cstate: Map<
    string,
    { state: CState; ready: boolean; started: boolean; init: boolean; containerID?: string }
  >;
  logs: Map<string, LogBuffer>;
  /** Logs of the previous instance of a restarted container (`previous=true`). */
  prevLogs: Map<string, LogBuffer>;
  /** Restart count and last termination of restarted containers. */
  restarts: Map<string, { count: number; lastState: CState }>;
  timers: Set<ReturnType<typeof setTimeout>>;
  wake: Set<() => void>;
  done: Promise<void>;
  mountRefs: string[];
  podmanNames: Set<string>;
  /** Host dir of the service account token mount, when automounted. */
  saDir?: string;
  /** The pod's own network (undefined: the host's). */
  address?: PodAddress;
}

/** Where and how pods reach the API server (in-cluster config). */
export interface ClusterInfo {
  host: string;
  port: number;
  caCert: string;
  token: string;
}

/** Mount path of the service account token, CA and namespace files. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The current time as the API shows it (seconds precision). */
export function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

/** The kubelet as its helpers see it. */
export interface KubeletHost {
  readonly store: ObjectStore;
  readonly faults: Faults;
  readonly opts: KubeletOptions;
  readonly nodeName: string;
  /** Where pods reach the API server (undefined before the server listens). */
  readonly cluster: ClusterInfo | undefined;
  /** The pod network (undefined: pods share the host's network). */
  readonly network: PodNetwork | undefined;
  /** The node's address (`status.hostIP`): on the pod network, else 127.0.0.1. */
  readonly nodeIP: string;
  /** Changes a pod's status (and rewrites its container statuses from the run). */
  status(run: PodRun, fn: (status: KObj["status"], pod: KObj) => void): KObj | undefined;
  /** Records an Event about a pod. */
  event(pod: KObj, type: string, reason: string, message: string): void;
  /** Waits `ms`, or less when the pod is stopped. */
  sleep(run: PodRun, ms: number): Promise<void>;
  /** Stops a pod's containers (SIGTERM, SIGKILL after graceMs). */
  stop(run: PodRun, graceMs: number, override?: PodRun["override"]): void;
  /** Deletes a pod as the API does. */
  deletePod(ns: string, name: string, graceSeconds?: number): KObj | undefined;
  /** Keeps a promise alive until `close()`. */
  track<T>(p: Promise<T>): Promise<T>;
  /** Simulator diagnostics. */
  log(msg: string): void;
  /** Whether an image is in local podman storage. */
  imageExists(image: string): Promise<boolean>;
  /** How a container of this image runs. */
  modeFor(image: string): Promise<"process" | "podman">;
}
