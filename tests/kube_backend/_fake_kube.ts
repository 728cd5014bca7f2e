/**
 * An in-memory fake of the Kubernetes operations runPod and KubeExecutor use ({@link KubeOps}),
 * on a {@link FakeClock}: the test scripts what the cluster does to a pod (status changes,
 * log output, watch and log stream failures, hanging or failing API calls) as a timeline, and
 * reads back what was created and deleted and which streams are still open.
 *
 * It behaves as `KubeClient` does at the seam: a watch resumes from the create answer's
 * `resourceVersion` (no event lost between create and watch) and throws once it gives up;
 * `streamLog` gives complete lines after `skipLines`, returns the unterminated tail as
 * `partial`, ends a follow when the container terminates (or the stream is cut), and answers
 * 404 for a pod that no longer exists; deletes answer `false` for what is already gone; every
 * call honours its signal.
 *
 * @module
 */

import type { V1ContainerStatus, V1Pod, V1PodStatus, V1Secret } from "@kubernetes/client-node";
import { KubeApiError, type KubeOps, type PodEvent } from "../../lib/kube/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

/** What the cluster does once a pod is created: schedule events with `k.clock.after`. */
export type PodScript = (k: FakeKube, name: string) => void;

interface LogBuf {
  text: string;
  /** Set when the container terminated: follows end once they have sent everything. */
  closed: boolean;
  /** Bumped by {@link FakeKube.cutLog}: follows opened before end at once. */
  cuts: number;
  /** Reads hang (send nothing, never end) until aborted: a kubelet that stopped answering. */
  hang: boolean;
}

const notFound = (op: string) =>
  new KubeApiError({ operation: op, status: 404, reason: "NotFound", detail: `${op}: not found` });

/** The fake cluster. `ops` is what the code under test gets. */
export class FakeKube {
  readonly clock: FakeClock;
  readonly pods = new Map<string, V1Pod>();
  readonly secrets = new Map<string, V1Secret>();
  /** Every pod create request (also those that failed). */
  readonly createdPods: V1Pod[] = [];
  readonly deletedPods: string[] = [];
  readonly deletedSecrets: string[] = [];
  /** Calls as `verb object` strings, in order (`log pod/c follow skip=2`). */
  readonly calls: string[] = [];
  /** Thrown by the next pod creates, in order (`{ afterCreate: true }`: the pod is created first). */
  createFaults: { error: unknown; afterCreate?: boolean }[] = [];
  /** Pod deletes hang until their signal aborts. */
  deleteHangs = false;
  /** Secret deletes hang until their signal aborts. */
  secretDeleteHangs = false;
  /** Pods that stay after a delete (a finalizer nobody removes). */
  readonly stuck = new Set<string>();
  /** Every log follow ends as soon as it has sent what there is (a proxy closing streams). */
  dropFollows = false;
  /** Thrown by the next log stream attempts, per `pod/container`. */
  readonly logFaults = new Map<string, unknown[]>();
  #rv = 1;
  #history = new Map<string, { rv: number; ev: PodEvent }[]>();
  #watchFailure = new Map<string, unknown>();
  #logs = new Map<string, LogBuf>();
  #wakers = new Set<() => void>();
  #open = 0;
  readonly #script: PodScript;

  constructor(script: PodScript = () => {}, clock = new FakeClock()) {
    this.#script = script;
    this.clock = clock;
  }

  /** Watches and log streams not yet ended (0 once the code under test has settled). */
  get openStreams(): number {
    return this.#open;
  }

  #wake(): void {
    const w = [...this.#wakers];
    this.#wakers.clear();
    for (const f of w) f();
  }

  /** Resolves at the next change, or rejects when `signal` aborts. */
  #changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.#wakers.delete(wake);
        reject(signal.reason);
      };
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#wakers.add(wake);
    });
  }

  #emit(name: string, type: PodEvent["type"], pod: V1Pod): void {
    const rv = ++this.#rv;
    pod.metadata!.resourceVersion = String(rv);
    const h = this.#history.get(name) ?? [];
    h.push({ rv, ev: { type, pod: structuredClone(pod) } });
    this.#history.set(name, h);
    this.#wake();
  }

  #buf(pod: string, c: string): LogBuf {
    const k = `${pod}/${c}`;
    let b = this.#logs.get(k);
    if (!b) this.#logs.set(k, b = { text: "", closed: false, cuts: 0, hang: false });
    return b;
  }

  /** Changes a pod's status as the kubelet would (a MODIFIED event). */
  status(name: string, edit: (s: V1PodStatus) => void): void {
    const pod = this.pods.get(name);
    if (!pod) return;
    pod.status ??= {};
    edit(pod.status);
    // A container's log ends with the container: terminated, waiting to restart, or the pod
    // over (the kubelet kills what still runs).
    const over = pod.status.phase === "Failed" || pod.status.phase === "Succeeded";
    for (
      const c of [...pod.status.initContainerStatuses ?? [], ...pod.status.containerStatuses ?? []]
    ) {
      if (over || !c.state?.running) {
        const b = this.#logs.get(`${name}/${c.name}`);
        if (b) b.closed = true;
      }
    }
    this.#emit(name, "MODIFIED", pod);
  }

  /** Sets one container's state (`init` for an init container). */
  container(name: string, c: string, state: V1ContainerStatus["state"], init = false): void {
    this.status(name, (s) => {
      const key = init ? "initContainerStatuses" : "containerStatuses";
      const list = s[key] ??= [];
      const cur = list.find((x) => x.name === c);
      if (cur) cur.state = state;
      else list.push({ name: c, state, image: "x", imageID: "", ready: false, restartCount: 0 });
    });
    if (state?.terminated) this.#buf(name, c).closed = true;
    this.#wake();
  }

  /** Appends output to a container's log. */
  write(pod: string, c: string, text: string): void {
    this.#buf(pod, c).text += text;
    this.#wake();
  }

  /** Ends the container's log follows now (a dropped connection); later ones work again. */
  cutLog(pod: string, c: string): void {
    this.#buf(pod, c).cuts++;
    this.#wake();
  }

  /** Log reads of the container send nothing and never end (until aborted). */
  hangLog(pod: string, c: string): void {
    this.#buf(pod, c).hang = true;
  }

  /** The watch of `name` gives up with `err` (as KubeClient does after its reconnects). */
  failWatch(name: string, err: unknown): void {
    this.#watchFailure.set(name, err);
    this.#wake();
  }

  /** Deletes a pod as someone else would: deletionTimestamp now, gone after `graceMs`. */
  deleteBySomeoneElse(name: string, graceMs: number | undefined): void {
    const pod = this.pods.get(name);
    if (!pod) return;
    pod.metadata!.deletionTimestamp = new Date(this.clock.now());
    this.#emit(name, "MODIFIED", pod);
    if (graceMs !== undefined) this.clock.after(graceMs, () => this.#remove(name));
  }

  #remove(name: string): void {
    const pod = this.pods.get(name);
    if (!pod || this.stuck.has(name)) return;
    this.pods.delete(name);
    for (const [k, b] of this.#logs) if (k.startsWith(`${name}/`)) b.closed = true;
    this.#emit(name, "DELETED", pod);
  }

  /** Waits until `signal` aborts, then rejects with its reason (a call that never answers). */
  #hang(signal: AbortSignal): Promise<never> {
    return new Promise((_, reject) => {
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  }

  readonly ops: KubeOps = {
    namespace: "ns",
    serverVersion: () => Promise.resolve({ major: "1", minor: "30" } as never),
    listNodes: () => Promise.resolve([]),
    listPods: () => Promise.resolve([...this.pods.values()]),
    listSecretMetadata: () => Promise.resolve([]),
    listConfigMapMetadata: () => Promise.resolve([]),
    createSecret: (s: V1Secret, { signal }: { signal: AbortSignal }) => {
      signal.throwIfAborted();
      this.calls.push(`create secret ${s.metadata!.name}`);
      this.secrets.set(s.metadata!.name!, structuredClone(s));
      return Promise.resolve({ metadata: s.metadata });
    },
    deleteSecret: async (name: string, { signal }: { signal: AbortSignal }) => {
      this.calls.push(`delete secret ${name}`);
      this.deletedSecrets.push(name);
      if (this.secretDeleteHangs) await this.#hang(signal);
      return this.secrets.delete(name);
    },
    createPod: (p: V1Pod, { signal }: { signal: AbortSignal }) => {
      signal.throwIfAborted();
      const name = p.metadata!.name!;
      this.calls.push(`create pod ${name}`);
      this.createdPods.push(structuredClone(p));
      const fault = this.createFaults.shift();
      if (fault && !fault.afterCreate) return Promise.reject(fault.error);
      if (this.pods.has(name)) {
        return Promise.reject(
          new KubeApiError({
            operation: `create pod ${name}`,
            status: 409,
            reason: "AlreadyExists",
            detail: `pods "${name}" already exists`,
          }),
        );
      }
      const pod: V1Pod = structuredClone(p);
      pod.metadata!.uid = crypto.randomUUID();
      pod.status = { phase: "Pending" };
      this.pods.set(name, pod);
      for (const k of [...this.#logs.keys()]) if (k.startsWith(`${name}/`)) this.#logs.delete(k);
      this.#emit(name, "ADDED", pod);
      this.#script(this, name);
      if (fault) return Promise.reject(fault.error);
      return Promise.resolve(structuredClone(pod));
    },
    readPod: (name: string, { signal }: { signal: AbortSignal }) => {
      signal.throwIfAborted();
      this.calls.push(`read pod ${name}`);
      const p = this.pods.get(name);
      return Promise.resolve(p ? structuredClone(p) : undefined);
    },
    deletePod: async (name: string, { signal }: { signal: AbortSignal }) => {
      this.calls.push(`delete pod ${name}`);
      this.deletedPods.push(name);
      if (this.deleteHangs) await this.#hang(signal);
      signal.throwIfAborted();
      const had = this.pods.has(name);
      this.#remove(name);
      return had;
    },
    watchPod: (name: string, opts: { signal: AbortSignal; resourceVersion?: string }) =>
      this.#watch(name, opts),
    streamLog: (
      pod: string,
      c: string,
      onLine: (line: string) => void,
      opts: { signal: AbortSignal; follow: boolean; skipLines?: number },
    ) => this.#streamLog(pod, c, onLine, opts),
  } as unknown as KubeOps;

  async *#watch(
    name: string,
    opts: { signal: AbortSignal; resourceVersion?: string },
  ): AsyncGenerator<PodEvent> {
    this.calls.push(`watch pod ${name} from ${opts.resourceVersion}`);
    this.#open++;
    try {
      let from = Number(opts.resourceVersion ?? 0);
      while (true) {
        opts.signal.throwIfAborted();
        const failure = this.#watchFailure.get(name);
        if (failure !== undefined) throw failure;
        const next = (this.#history.get(name) ?? []).find((h) => h.rv > from);
        if (!next) {
          await this.#changed(opts.signal);
          continue;
        }
        from = next.rv;
        yield structuredClone(next.ev);
        if (next.ev.type === "DELETED") return;
      }
    } finally {
      this.#open--;
    }
  }

  async #streamLog(
    pod: string,
    c: string,
    onLine: (line: string) => void,
    opts: { signal: AbortSignal; follow: boolean; skipLines?: number },
  ): Promise<{ lines: number; partial: string }> {
    const skip = opts.skipLines ?? 0;
    this.calls.push(`log ${pod}/${c}${opts.follow ? " follow" : ""} skip=${skip}`);
    opts.signal.throwIfAborted();
    const faults = this.logFaults.get(`${pod}/${c}`);
    if (faults?.length) throw faults.shift();
    if (!this.pods.has(pod)) throw notFound(`log ${pod}/${c}`);
    const b = this.#buf(pod, c);
    const cuts = b.cuts;
    let sent = 0; // characters of b.text already split into lines
    let lines = 0;
    const send = () => {
      for (;;) {
        const nl = b.text.indexOf("\n", sent);
        if (nl < 0) break;
        const line = b.text.slice(sent, nl);
        sent = nl + 1;
        if (++lines > skip) onLine(line);
      }
    };
    this.#open++;
    try {
      if (b.hang) {
        await this.#hang(opts.signal).catch(() => {});
        return { lines, partial: "" };
      }
      send();
      while (
        opts.follow && !this.dropFollows && !b.closed && b.cuts === cuts && !opts.signal.aborted
      ) {
        // Like KubeClient: an abort ends the stream (resolving with what was seen).
        await this.#changed(opts.signal).catch(() => {});
        send();
      }
      return { lines, partial: b.text.slice(sent) };
    } finally {
      this.#open--;
    }
  }
}

/** A pod status edit: phase Running with the main container `c` running. */
export function running(k: FakeKube, name: string, c = "worker"): void {
  k.container(name, c, { running: { startedAt: new Date(k.clock.now()) } });
  k.status(name, (s) => s.phase = "Running");
}

/** The container `c` terminates with `exitCode` (and `reason`), phase following as Kubernetes does. */
export function finish(
  k: FakeKube,
  name: string,
  exitCode: number,
  opts: { c?: string; reason?: string; message?: string; phase?: boolean } = {},
): void {
  const c = opts.c ?? "worker";
  k.container(name, c, {
    terminated: {
      exitCode,
      reason: opts.reason ?? (exitCode ? "Error" : "Completed"),
      ...(opts.message ? { message: opts.message } : {}),
    },
  });
  if (opts.phase ?? true) {
    k.status(name, (s) => s.phase = exitCode === 0 ? "Succeeded" : "Failed");
  }
}
