/**
 * Fault switches of the Kubernetes test API server: per-pod faults the simulated kubelet and
 * scheduler act out (chosen by label selector and/or pod name pattern, or `true` for every
 * pod), and API-level faults (dropped watches, bursts of 429/500 answers).
 *
 * @module
 */

import { type KObj } from "./store.ts";
import { matchLabels, parseLabelSelector } from "./selectors.ts";

/** Which pods a per-pod fault applies to. All given criteria must match. */
export interface PodMatch {
  /** A label selector (`gangplank.coreos-assembler.coreos.com/run=abc,stage in (build)`). */
  labelSelector?: string;
  /** A pod name pattern (a RegExp, or a string compiled as one). */
  namePattern?: RegExp | string;
  /** Only the first `times` matching pods get the fault (default: all of them). */
  times?: number;
}

/** A per-pod fault switch: `true` (every pod) or a {@link PodMatch}. */
export type PodFault<Extra = unknown> = true | (PodMatch & Extra);

/** Every fault switch. Unset or `undefined` means off. */
export interface FaultSwitches {
  /** The pod stays Pending: condition PodScheduled=False, reason Unschedulable. */
  unschedulable?: PodFault;
  /** The pod's containers wait with ErrImagePull, then ImagePullBackOff. */
  imagePullError?: PodFault;
  /** `afterMs` (default 300) after the pod runs: phase Failed, reason Evicted. */
  evict?: PodFault<{ afterMs?: number }>;
  /**
   * The pod's main containers (or those named in `containers`) are killed `afterMs`
   * (default 300) after they start and end `terminated { reason: OOMKilled, exitCode: 137 }`
   * (also when the process ended on its own before).
   */
  oomKill?: PodFault<{ afterMs?: number; containers?: string[] }>;
  /** `afterMs` (default 200) after the pod runs, it is deleted as someone else would. */
  externalDelete?: PodFault<{ afterMs?: number; gracePeriodSeconds?: number }>;
  /**
   * Watch streams end after `afterEvents` events and/or `afterMs` ms, for the next `times`
   * watches (default: all).
   */
  watchDrop?: { afterEvents?: number; afterMs?: number; times?: number };
  /**
   * RBAC denies the user every `/api/v1` request matching `pathPattern` and `methods` (when
   * given): 403 Forbidden with the authorizer's wording, for as long as the switch is on.
   */
  forbidden?: { pathPattern?: RegExp | string; methods?: string[] };
  /**
   * The next `count` API requests (matching `pathPattern` and `verbs`, when given) answer
   * `status` (429 with Retry-After: `retryAfterSeconds`, default 1; or 500) with a Status.
   */
  errorBurst?: {
    count: number;
    status?: 429 | 500 | 503;
    retryAfterSeconds?: number;
    pathPattern?: RegExp | string;
    /** HTTP methods (`GET`, `POST`, `DELETE`, ...). Default: all. */
    methods?: string[];
  };
}

/** The name of one fault switch. */
export type FaultName = keyof FaultSwitches;

/** Per-pod fault names. */
export const POD_FAULTS = [
  "unschedulable",
  "imagePullError",
  "evict",
  "oomKill",
  "externalDelete",
] as const;

/** A per-pod fault's name. */
export type PodFaultName = typeof POD_FAULTS[number];

/**
 * Mutable holder of the current switches, with per-switch counters (`times`). Pods are
 * matched once, when they are first seen, so the decision for a pod does not change later
 * (except `unschedulable`, re-evaluated while the pod is Pending).
 */
export class Faults {
  #switches: FaultSwitches;
  #used = new Map<string, number>();

  constructor(initial: FaultSwitches = {}) {
    this.#switches = { ...initial };
  }

  /** Turns one switch on (with a value) or off (`undefined`), resetting its counter. */
  set<K extends FaultName>(name: K, value: FaultSwitches[K] | undefined): void {
    if (value === undefined) delete this.#switches[name];
    else this.#switches[name] = value;
    this.#used.delete(name);
  }

  /** The current value of one switch. */
  get<K extends FaultName>(name: K): FaultSwitches[K] | undefined {
    return this.#switches[name];
  }

  /** Whether `pod` matches the per-pod fault `name`; counts the use when `consume`. */
  matchPod(name: PodFaultName, pod: KObj, consume = true): boolean {
    const f = this.#switches[name] as PodFault | undefined;
    if (!f) return false;
    if (f === true) return true;
    if (f.labelSelector !== undefined) {
      if (!matchLabels(parseLabelSelector(f.labelSelector), pod.metadata.labels)) return false;
    }
    if (f.namePattern !== undefined) {
      const re = typeof f.namePattern === "string" ? new RegExp(f.namePattern) : f.namePattern;
      if (!re.test(pod.metadata.name)) return false;
    }
    if (f.times !== undefined) {
      const used = this.#used.get(name) ?? 0;
      if (used >= f.times) return false;
      if (consume) this.#used.set(name, used + 1);
    }
    return true;
  }

  /** Options object of a per-pod fault (empty for `true`). */
  // deno-lint-ignore no-explicit-any
  options(name: PodFaultName): Record<string, any> {
    const f = this.#switches[name];
    return f && f !== true ? f : {};
  }

  /** Takes one watch-drop slot; returns its limits or undefined when off/exhausted. */
  takeWatchDrop(): { afterEvents?: number; afterMs?: number } | undefined {
    const f = this.#switches.watchDrop;
    if (!f) return undefined;
    if (f.times !== undefined) {
      const used = this.#used.get("watchDrop") ?? 0;
      if (used >= f.times) return undefined;
      this.#used.set("watchDrop", used + 1);
    }
    return f;
  }

  /** Whether RBAC (the `forbidden` switch) denies this request. */
  isForbidden(method: string, path: string): boolean {
    const f = this.#switches.forbidden;
    if (!f) return false;
    if (f.methods && !f.methods.includes(method)) return false;
    if (f.pathPattern === undefined) return true;
    const re = typeof f.pathPattern === "string" ? new RegExp(f.pathPattern) : f.pathPattern;
    return re.test(path);
  }

  /** Takes one error-burst slot for a request; returns the error to answer, or undefined. */
  takeErrorBurst(
    method: string,
    path: string,
  ): { status: number; retryAfterSeconds: number } | undefined {
    const f = this.#switches.errorBurst;
    if (!f) return undefined;
    if (f.methods && !f.methods.includes(method)) return undefined;
    if (f.pathPattern !== undefined) {
      const re = typeof f.pathPattern === "string" ? new RegExp(f.pathPattern) : f.pathPattern;
      if (!re.test(path)) return undefined;
    }
    const used = this.#used.get("errorBurst") ?? 0;
    if (used >= f.count) return undefined;
    this.#used.set("errorBurst", used + 1);
    return { status: f.status ?? 429, retryAfterSeconds: f.retryAfterSeconds ?? 1 };
  }
}
