/**
 * The Kubernetes / OpenShift backend: each stage's worker is a pod (reference §7.1, with the
 * §12 fixes), the relay secret key travels in a per-run Secret referenced by `secretKeyRef`,
 * labelled Secrets/ConfigMaps are mapped into workers by the §7.3/§7.4 tables (metadata only),
 * pods are watched and their logs streamed, and everything created is deleted on success,
 * failure, abort and dispose.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { arch as hostArch } from "node:os";
import type { V1Secret } from "@kubernetes/client-node";
import { UsageError } from "../errors/mod.ts";
import type { KubeOps } from "../kube/run_pod.ts";
import { DEFAULT_WORKER_IMAGE } from "../workspec/worker_image.ts";
import { KUBE_SECRET_MAX_BYTES } from "../workspec/transport.ts";
import type { KubeClient } from "../kube/client.ts";
import { isLoopback, RELAY_WAYS_OUT } from "./kube_relay.ts";
import { runPod } from "../kube/run_pod.ts";
import { KubeApiError } from "../kube/retry.ts";
import { type Clock, SYSTEM_CLOCK, timeoutSignal } from "../toolkit/clock.ts";
import {
  bundleConfigMaps,
  bundlePartCount,
  KVM_RESOURCE,
  runSecret,
  runSecretName,
  runSelector,
  type WorkerBundle,
  workerPod,
  type WorkerResources,
} from "../podspec/mod.ts";
import {
  metadataOf,
  MOUNT_REF_SELECTOR,
  mountRefs,
  type PodAdditions,
  SECRET_SELECTOR,
  secretMaps,
} from "../secrets/mod.ts";
import type { Executor, RelayEndpoint, StageOutcome, WorkerLaunch } from "./types.ts";

/** Options of {@link KubeExecutor}. */
export interface KubeExecutorOptions {
  /** The API client (a `KubeClient` from lib/kube, or a fake in tests). */
  client: KubeOps & Partial<Pick<KubeClient, "apiGroups" | "createConfigMap" | "deleteConfigMap">>;
  /**
   * Stock-image workers: deno copied from `denoImage`, the run's worker bundle delivered in a
   * per-run ConfigMap and checked by sha256 (lib/podspec's `stock_worker.ts`). Absent: the
   * image's own deno and worker (`command`).
   */
  stock?: { denoImage: string; bundle: WorkerBundle };
  /**
   * Worker image. Default: in a cluster (`selfPod`), the coordinator pod's own gangplank/cosa
   * image; otherwise lib/podman's `DEFAULT_WORKER_IMAGE`.
   */
  image?: string;
  /** Service account of the worker pods. Default: in a cluster, the coordinator pod's. */
  serviceAccount?: string;
  /**
   * Host workers use to reach the relay: in a cluster the coordinator pod's IP (scripts read
   * it from the environment); default: the relay's own host.
   */
  relayHost?: string;
  /** `--relay-address`: where workers reach the relay (port: the relay's own when absent). */
  relayAddress?: { host: string; port?: number };
  /**
   * In a cluster: the coordinator's own pod name (`$HOSTNAME`). Without `relayHost`, its
   * `status.podIP` is where workers reach the relay; it also supplies the default image and
   * service account.
   */
  selfPod?: string;
  /** Worker architecture; default: the nodes' `kubernetes.io/arch`, else this machine's. */
  arch?: string;
  /** Force OpenShift 3.11 behaviour on/off (default: detected from the server version). */
  ocp3?: boolean;
  /** Force the KVM device request on/off (default: requested when a node offers it). */
  kvm?: boolean;
  resources?: WorkerResources;
  /** Per-pod timeout in seconds (default 5400, Gangplank's 90 minutes). */
  timeoutSeconds?: number;
  /** How long a pod may stay Unschedulable (default 120 000 ms). */
  unschedulableTimeoutMs?: number;
  /** Bound on waiting for the logs after a pod ended (default 15 000 ms). */
  drainTimeoutMs?: number;
  /** Map labelled Secrets/ConfigMaps into workers (default true). */
  mapSecrets?: boolean;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /**
   * Pod `fsGroup`, so a non-root image user can read its secret files: a number, `"none"`, or
   * undefined for the default: {@link DEFAULT_FS_GROUP} on Kubernetes, none on OpenShift
   * (its security context constraints assign one, and reject others).
   */
  fsGroup?: number | "none";
  /** Pod `runAsUser` (default: the image's user). */
  runAsUser?: number;
  /** Worker command (default: lib/podman's `WORKER_COMMAND`). */
  command?: readonly string[];
  /** Diagnostics (never secret values). */
  log?: (msg: string) => void;
  /** Time and waits of the pods' runs (default: the real clock; tests pass a fake one). */
  clock?: Clock;
}

/** The default `fsGroup` on Kubernetes: cosa's `builder` group (and the Containerfile's). */
export const DEFAULT_FS_GROUP = 1000;

/** Normalises Kubernetes/Go architecture names to cosa's (`amd64` → `x86_64`, ...). */
export function normalizeArch(a: string): string {
  switch (a) {
    case "amd64":
    case "x64":
      return "x86_64";
    case "arm64":
      return "aarch64";
    default:
      return a;
  }
}

/** OpenShift 3.11 is Kubernetes 1.11 (`minor` may carry a `+`). */
export function isOpenShift3(version: { major?: string; minor?: string }): boolean {
  return (version.major ?? "").replace(/\D/g, "") === "1" &&
    (version.minor ?? "").replace(/\+.*$/, "") === "11";
}

/** Runs stages as Kubernetes pods. */
export class KubeExecutor implements Executor {
  readonly name = "kube";
  readonly #o: KubeExecutorOptions;
  readonly #log: (msg: string) => void;
  #runId?: string;
  #ocp3 = false;
  #kvm = false;
  #arch?: string;
  #additions?: PodAdditions;
  #mounts?: PodAdditions;
  /** Secrets created, by content hash → name. */
  readonly #secrets = new Map<string, { created: Promise<string>; users: number }>();
  #secretsCreated = 0;
  readonly #secretNames = new Set<string>();
  readonly #pods = new Set<string>();
  #disposed = false;
  #image?: string;
  #serviceAccount?: string;
  #fsGroup?: number;
  readonly #configMaps: string[] = [];

  constructor(opts: KubeExecutorOptions) {
    this.#o = opts;
    this.#log = opts.log ?? (() => {});
  }

  /** The namespace pods are created in. */
  get namespace(): string {
    return this.#o.client.namespace;
  }

  async prepare(
    relay: RelayEndpoint,
    opts: { runId: string; signal: AbortSignal },
  ): Promise<RelayEndpoint> {
    this.#runId = opts.runId;
    const client = this.#o.client;
    if (this.#o.ocp3 !== undefined) {
      this.#ocp3 = this.#o.ocp3;
    } else {
      const v = await client.serverVersion({ signal: opts.signal });
      this.#ocp3 = isOpenShift3(v);
      this.#log(
        `kube: server ${v.gitVersion ?? `${v.major}.${v.minor}`}` +
          (this.#ocp3 ? " (OpenShift 3.11 mode)" : ""),
      );
    }
    await this.#discoverNodes(opts.signal);
    if (typeof this.#o.fsGroup === "number") this.#fsGroup = this.#o.fsGroup;
    else if (this.#o.fsGroup === undefined && !this.#ocp3) {
      const groups = await client.apiGroups?.({ signal: opts.signal }) ?? [];
      const openshift = groups.includes("security.openshift.io");
      this.#fsGroup = openshift ? undefined : DEFAULT_FS_GROUP;
      this.#log(
        openshift
          ? "kube: OpenShift: the pods' fsGroup comes from its security context constraints"
          : `kube: pods get fsGroup ${DEFAULT_FS_GROUP} (--fs-group to change)`,
      );
    }
    if (this.#o.stock) await this.#createBundle(opts.runId, opts.signal);
    if (this.#o.mapSecrets ?? true) {
      const secrets = await client.listSecretMetadata(SECRET_SELECTOR, opts);
      const mountSecrets = await client.listSecretMetadata(MOUNT_REF_SELECTOR, opts);
      const mountMaps = await client.listConfigMapMetadata(MOUNT_REF_SELECTOR, opts);
      const sm = secretMaps(secrets.map((s) => metadataOf("Secret", s)));
      const mr = mountRefs([
        ...mountSecrets.map((s) => metadataOf("Secret", s)),
        ...mountMaps.map((c) => metadataOf("ConfigMap", c)),
      ]);
      for (const w of [...sm.warnings, ...mr.warnings]) this.#log(`kube: ${w}`);
      const names = [...sm.volumes, ...mr.volumes].map((v) =>
        v.secret?.secretName ?? v.configMap?.name
      );
      if (names.length) this.#log(`kube: mapping ${names.join(", ")} into workers`);
      this.#additions = { ...sm, warnings: [] };
      this.#mounts = mr;
    }
    let host = this.#o.relayAddress?.host ?? this.#o.relayHost;
    this.#image = this.#o.image;
    this.#serviceAccount = this.#o.serviceAccount;
    if (this.#o.selfPod && (!host || !this.#image || !this.#serviceAccount)) {
      const me = await client.readPod(this.#o.selfPod, opts);
      if (!this.#image) {
        // The container running gangplank/cosa (first match; Gangplank took the last, §12.1.18).
        const cs = me?.spec?.containers ?? [];
        const mine = cs.find((c) => /gangplank|coreos-assembler|cosa/.test(c.image ?? "")) ??
          cs[0];
        this.#image = mine?.image;
        if (this.#image) this.#log(`kube: worker image ${this.#image} (this pod's)`);
      }
      this.#serviceAccount ??= me?.spec?.serviceAccountName;
      host ??= me?.status?.podIP;
      if (!host) {
        throw new UsageError(
          `cannot find the IP of pod ${this.#o.selfPod} (set POD_IP or run without a cluster)`,
        );
      }
    }
    const endpoint = { host: host ?? relay.host, port: this.#o.relayAddress?.port ?? relay.port };
    if (isLoopback(endpoint.host)) {
      // A pod's loopback is its own: this address would reach nothing.
      throw new UsageError(
        `kube: worker pods cannot reach the relay at ${endpoint.host}:${endpoint.port} ` +
          `(a loopback address); ${RELAY_WAYS_OUT}`,
      );
    }
    return endpoint;
  }

  /** Creates the per-run ConfigMap with the worker bundle (stock-image workers). */
  async #createBundle(runId: string, signal: AbortSignal): Promise<void> {
    const { client } = this.#o;
    if (!client.createConfigMap) throw new Error("kube: this client cannot create ConfigMaps");
    for (const cm of bundleConfigMaps(runId, this.#o.stock!.bundle)) {
      this.#configMaps.push(cm.metadata!.name!);
      await client.createConfigMap(cm, { signal });
    }
    this.#log(
      `kube: workers run deno from ${this.#o.stock!.denoImage} and worker ` +
        `${this.#o.stock!.bundle.sha256.slice(0, 12)} (ConfigMap ${this.#configMaps.join(", ")}) ` +
        `on the worker image`,
    );
  }

  async #discoverNodes(signal: AbortSignal): Promise<void> {
    if (this.#o.kvm !== undefined && this.#o.arch !== undefined) {
      this.#kvm = this.#o.kvm;
      return;
    }
    let nodes: Awaited<ReturnType<KubeOps["listNodes"]>> = [];
    try {
      nodes = await this.#o.client.listNodes({ signal });
    } catch (e) {
      if (!(e instanceof KubeApiError) || (e.status !== 403 && e.status !== 401)) throw e;
      this.#log("kube: cannot list nodes (forbidden); no KVM request, default architecture");
    }
    const ready = nodes.filter((n) => !n.spec?.unschedulable);
    this.#kvm = this.#o.kvm ?? ready.some((n) => {
      const q = n.status?.allocatable?.[KVM_RESOURCE];
      return q !== undefined && q !== "0" && q !== "";
    });
    const arches = ready.map((n) => n.metadata?.labels?.["kubernetes.io/arch"]).filter(
      (a): a is string => !!a,
    );
    if (arches.length) {
      // The most common architecture among schedulable nodes.
      const count = new Map<string, number>();
      for (const a of arches) count.set(a, (count.get(a) ?? 0) + 1);
      this.#arch = normalizeArch([...count.entries()].sort((a, b) => b[1] - a[1])[0][0]);
    }
  }

  arch(opts: { signal: AbortSignal }): Promise<string> {
    if (this.#o.arch) return Promise.resolve(normalizeArch(this.#o.arch));
    if (this.#arch) return Promise.resolve(this.#arch);
    return (async () => {
      await this.#discoverNodes(opts.signal);
      return this.#arch ?? normalizeArch(hostArch());
    })();
  }

  /**
   * Creates (once per distinct content) the Secret holding a stage's secret env; resolves its
   * name and a release that deletes it when no running stage uses it any more (a stage's
   * credential is per stage: its Secret goes when the stage ends).
   */
  async #acquireSecret(
    runId: string,
    env: Record<string, string>,
    signal: AbortSignal,
  ): Promise<{ name: string; release(): Promise<void> }> {
    const h = createHash("sha256");
    for (const k of Object.keys(env).sort()) h.update(k).update("\0").update(env[k]).update("\0");
    const digest = h.digest("hex");
    let entry = this.#secrets.get(digest);
    if (!entry) {
      const base = runSecretName(runId);
      const name = this.#secretsCreated++ === 0 ? base : `${base}-${digest.slice(0, 8)}`;
      const secret: V1Secret = runSecret(runId, env);
      secret.metadata!.name = name;
      const created = this.#o.client.createSecret(secret, { signal }).then(() => {
        this.#secretNames.add(name);
        return name;
      });
      entry = { created, users: 0 };
      const e = entry;
      created.catch(() => {
        if (this.#secrets.get(digest) === e) this.#secrets.delete(digest);
      });
      this.#secrets.set(digest, entry);
    }
    entry.users++;
    const e = entry;
    let name: string;
    try {
      name = await e.created;
    } catch (err) {
      e.users--;
      throw err;
    }
    let released = false;
    return {
      name,
      release: async () => {
        if (released || --e.users > 0) return;
        released = true;
        if (this.#secrets.get(digest) === e) this.#secrets.delete(digest);
        this.#secretNames.delete(name);
        using t = timeoutSignal(this.#o.clock ?? SYSTEM_CLOCK, 30_000);
        await this.#o.client.deleteSecret(name, { signal: t.signal })
          .catch((err) => this.#log(`kube: deleting Secret ${name}: ${(err as Error).message}`));
      },
    };
  }

  async runStage(launch: WorkerLaunch): Promise<StageOutcome> {
    if (this.#disposed) throw new Error("KubeExecutor: already disposed");
    const runId = this.#runId ?? launch.runId;
    const secretKeys = Object.keys(launch.secretEnv);
    // A Secret holds at most 1 MiB: say so rather than let the API server refuse it.
    const bytes = secretKeys.reduce(
      (n, k) => n + new TextEncoder().encode(launch.secretEnv[k]).length,
      0,
    );
    if (bytes > KUBE_SECRET_MAX_BYTES) {
      throw new UsageError(
        `stage ${JSON.stringify(launch.stageId)}: its WorkSpec and secrets (${bytes} bytes) do ` +
          `not fit in a Kubernetes Secret (at most ${KUBE_SECRET_MAX_BYTES} bytes): shrink the ` +
          `JobSpec (inline scripts) or use the local or podman backend`,
      );
    }
    const held = secretKeys.length
      ? await this.#acquireSecret(runId, launch.secretEnv, launch.signal)
      : undefined;
    const secretName = held?.name ?? runSecretName(runId);
    const timeoutSeconds = this.#o.timeoutSeconds ?? 5400;
    const pod = workerPod({
      runId,
      stageId: launch.stageId,
      stageIndex: launch.stageIndex,
      image: this.#image ?? this.#o.image ?? DEFAULT_WORKER_IMAGE,
      serviceAccount: this.#serviceAccount ?? this.#o.serviceAccount,
      env: launch.env,
      secretFiles: { secretName, keys: secretKeys },
      ocp3: this.#ocp3,
      kvm: this.#kvm,
      resources: this.#o.resources,
      arch: this.#arch ?? this.#o.arch,
      mounts: this.#mounts,
      secretMaps: this.#additions,
      timeoutSeconds,
      imagePullPolicy: this.#o.imagePullPolicy,
      command: this.#o.command,
      fsGroup: this.#fsGroup,
      runAsUser: this.#o.runAsUser,
      ...(this.#o.stock
        ? {
          stock: {
            denoImage: this.#o.stock.denoImage,
            sha256: this.#o.stock.bundle.sha256,
            parts: bundlePartCount(this.#o.stock.bundle.gzip.length),
          },
        }
        : {}),
    });
    const podName = pod.metadata!.name!;
    this.#pods.add(podName);
    const mainName = pod.spec!.containers[0].name;
    try {
      const out = await runPod(this.#o.client, pod, {
        signal: launch.signal,
        onLine: (line, container) =>
          launch.onLine(container === mainName ? line : `${container}: ${line}`, "stdout"),
        log: this.#log,
        timeoutMs: timeoutSeconds * 1000,
        unschedulableTimeoutMs: this.#o.unschedulableTimeoutMs,
        drainTimeoutMs: this.#o.drainTimeoutMs,
        clock: this.#o.clock,
      });
      return out.reason
        ? { exitCode: out.exitCode, reason: out.reason }
        : { exitCode: out.exitCode };
    } finally {
      this.#pods.delete(podName);
      await held?.release();
    }
  }

  /** Deletes leftovers of one run, or of every run (see {@link cleanupKube}). */
  cleanup(opts: { runId?: string; signal: AbortSignal }): Promise<CleanupResult> {
    return cleanupKube(this.#o.client, opts);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const signal = AbortSignal.timeout(60_000);
    const client = this.#o.client;
    // Secrets whose creation is still in flight are awaited so none is left behind.
    await Promise.allSettled([...this.#secrets.values()].map((e) => e.created));
    const errors: unknown[] = [];
    for (const p of this.#pods) {
      await client.deletePod(p, { signal }).catch((e) => errors.push(e));
    }
    for (const s of this.#secretNames) {
      await client.deleteSecret(s, { signal }).catch((e) => errors.push(e));
    }
    this.#secretNames.clear();
    for (const name of this.#configMaps.splice(0)) {
      await this.#o.client.deleteConfigMap?.(name, { signal }).catch((e) => errors.push(e));
    }
    for (const e of errors) this.#log(`kube: cleanup: ${e instanceof Error ? e.message : e}`);
  }
}

/** What {@link cleanupKube} removed. */
export interface CleanupResult {
  pods: string[];
  secrets: string[];
  configMaps: string[];
}

/**
 * Deletes the pods and Secrets gangplank left behind (by label): those of one run, or of
 * every run when `runId` is omitted (`submit --cleanup`).
 */
export async function cleanupKube(
  client: KubeOps & Partial<Pick<KubeClient, "deleteConfigMap">>,
  opts: { runId?: string; signal: AbortSignal },
): Promise<CleanupResult> {
  const selector = runSelector(opts.runId);
  const out: CleanupResult = { pods: [], secrets: [], configMaps: [] };
  for (const p of await client.listPods(selector, opts)) {
    const name = p.metadata?.name;
    if (name && await client.deletePod(name, opts)) out.pods.push(name);
  }
  for (const s of await client.listSecretMetadata(selector, opts)) {
    const name = s.metadata?.name;
    if (name && await client.deleteSecret(name, opts)) out.secrets.push(name);
  }
  if (client.deleteConfigMap) {
    for (const c of await client.listConfigMapMetadata(selector, opts)) {
      const name = c.metadata?.name;
      if (name && await client.deleteConfigMap(name, opts)) out.configMaps.push(name);
    }
  }
  return out;
}
