/**
 * Glue between `scripts/submit.ts` and the Kubernetes backend: which cluster to talk to
 * (`--kubeconfig`, `$KUBECONFIG`, or the pod's service account when running in a cluster),
 * the executor for `--backend kube`, the objects `--dry-run -o yaml` shows, `--cleanup`, and
 * hop mode (`--remote-kubeconfig`). The environment is passed in by the script; nothing here
 * reads `Deno.env` or exits.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { UsageError } from "../errors/mod.ts";
import { KubeClient, type KubeTarget } from "../kube/mod.ts";
import { preflightKube } from "../kube/preflight.ts";
import { runningInCluster, SERVICE_ACCOUNT_DIR } from "../kube/in_cluster.ts";
import { DEFAULT_WORKER_IMAGE } from "../workspec/worker_image.ts";
import {
  DEFAULT_DENO_IMAGE,
  dryRunObjects,
  hopPod,
  hopSecret,
  redactSecret,
  type WorkerBundle,
} from "../podspec/mod.ts";
import { cleanupKube, DEFAULT_FS_GROUP, KubeExecutor } from "./kube.ts";

/** How long the hop pod's coordinator may run (and the pod's deadline, plus slack). */
export const HOP_TIMEOUT_SECONDS = 6 * 3600;
export { type KubeRelayPlan, kubeRelayPlan } from "./kube_relay.ts";

export { runningInCluster, SERVICE_ACCOUNT_DIR } from "../kube/in_cluster.ts";

/** The kube-related flags of `submit`. */
export interface KubeCliOptions {
  /** `--kubeconfig`. */
  kubeconfig?: string;
  /** `--namespace`. */
  namespace?: string;
  /** `--image`: worker image (and the hop pod's). */
  image?: string;
  /** `--serviceaccount`. */
  serviceAccount?: string;
  /** `--remote-kubeconfig`: run the coordinator itself in that cluster (hop pod). */
  remoteKubeconfig?: string;
  /** `--relay-address HOST[:PORT]`: where worker pods reach the relay (out of cluster). */
  relayAddress?: { host: string; port?: number };
  /** `-m`: an external S3 endpoint instead of the embedded relay. */
  minioConfig?: string;
  /** `--fs-group`. */
  fsGroup?: number | "none";
  /** `--run-as-user`. */
  runAsUser?: number;
  /** `--worker-source`: `stock` (default: deno image + the run's bundle) or `image`. */
  workerSource?: "stock" | "image";
  /** `--deno-image` (stock source; default lib/podspec's `DEFAULT_DENO_IMAGE`). */
  denoImage?: string;
}

/**
 * The run's worker bundle as stock-image workers receive it: gzip and sha256 of `work.js`.
 *
 * @throws {UsageError} naming the file when it cannot be read.
 */
export async function readWorkerBundle(path: string): Promise<WorkerBundle> {
  let js: Uint8Array;
  try {
    js = await Deno.readFile(path);
  } catch (e) {
    throw new UsageError(`worker bundle ${path}: ${(e as Error).message} (deno task bundle)`);
  }
  return {
    gzip: new Uint8Array(gzipSync(js, { level: 9 })),
    sha256: createHash("sha256").update(js).digest("hex"),
  };
}

/** The cluster target and namespace for the flags and environment. */
export function kubeTargetFor(
  opts: KubeCliOptions,
  env: Record<string, string | undefined>,
  exists: (p: string) => boolean = existsSync,
): { target: KubeTarget; namespace?: string; inCluster: boolean } {
  if (opts.kubeconfig) {
    if (!exists(opts.kubeconfig)) {
      throw new UsageError(`--kubeconfig ${opts.kubeconfig}: no such file`);
    }
    return {
      target: { kind: "kubeconfig", path: opts.kubeconfig },
      namespace: opts.namespace,
      inCluster: false,
    };
  }
  if (!env.KUBECONFIG && runningInCluster(env, exists)) {
    let ns = opts.namespace;
    if (!ns) {
      try {
        ns = readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, "utf8").trim() || undefined;
      } catch { /* default namespace */ }
    }
    return { target: { kind: "in-cluster" }, namespace: ns, inCluster: true };
  }
  if (env.KUBECONFIG) {
    const first = env.KUBECONFIG.split(":")[0];
    return {
      target: { kind: "kubeconfig", path: first },
      namespace: opts.namespace,
      inCluster: false,
    };
  }
  const home = env.HOME ?? "";
  if (!home || !exists(`${home}/.kube/config`)) {
    throw new UsageError(
      "kubernetes: no configuration: give --kubeconfig FILE, set KUBECONFIG, create " +
        "~/.kube/config (e.g. oc login / kubectl config), or run in a pod with a service account",
    );
  }
  return { target: { kind: "default" }, namespace: opts.namespace, inCluster: false };
}

/** A client for the flags and environment. */
export function kubeClientFor(
  opts: KubeCliOptions,
  env: Record<string, string | undefined>,
  log?: (msg: string) => void,
): KubeClient {
  const t = kubeTargetFor(opts, env);
  try {
    return KubeClient.connect({ target: t.target, namespace: t.namespace, log });
  } catch (e) {
    throw new UsageError(`kubernetes configuration: ${(e as Error).message}`);
  }
}

/**
 * Checks the cluster target before anything is created (see lib/kube's `preflightKube`): the
 * API answers, accepts the credentials, has the namespace, and the service account exists.
 *
 * @throws {UsageError} one line naming what is wrong and what to do.
 */
export async function checkKubeTarget(
  opts: KubeCliOptions,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<void> {
  const t = kubeTargetFor(opts, env);
  const client = kubeClientFor(opts, env);
  const source = t.target.kind === "kubeconfig"
    ? (opts.kubeconfig ? `--kubeconfig ${opts.kubeconfig}` : `$KUBECONFIG (${t.target.path})`)
    : t.target.kind === "in-cluster"
    ? "the pod's service account"
    : "~/.kube/config";
  await preflightKube(client.kc, {
    source,
    namespace: client.namespace,
    serviceAccount: opts.serviceAccount,
    signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
  });
}

/**
 * The executor for `--backend kube`. Workers reach the relay at `relayHost` (in a cluster:
 * the coordinator pod's IP, `$POD_IP`).
 */
export function createKubeExecutor(
  opts: KubeCliOptions & {
    relayHost?: string;
    timeoutSeconds?: number;
    unschedulableTimeoutMs?: number;
    /** The run's worker bundle (stock-image workers; see {@link readWorkerBundle}). */
    bundle?: WorkerBundle;
  },
  env: Record<string, string | undefined>,
  log?: (msg: string) => void,
): KubeExecutor {
  if (opts.workerSource !== "image" && !opts.bundle) {
    throw new UsageError("--worker-source stock needs the run's worker bundle (deno task bundle)");
  }
  const t = kubeTargetFor(opts, env);
  const client = kubeClientFor(opts, env, log);
  return new KubeExecutor({
    client,
    selfPod: t.inCluster ? env.HOSTNAME : undefined,
    image: opts.image || (t.inCluster ? undefined : DEFAULT_WORKER_IMAGE),
    serviceAccount: opts.serviceAccount,
    relayHost: opts.relayHost,
    relayAddress: opts.relayAddress,
    fsGroup: opts.fsGroup,
    runAsUser: opts.runAsUser,
    ...(opts.workerSource !== "image"
      ? { stock: { denoImage: opts.denoImage || DEFAULT_DENO_IMAGE, bundle: opts.bundle! } }
      : {}),
    timeoutSeconds: opts.timeoutSeconds,
    unschedulableTimeoutMs: opts.unschedulableTimeoutMs,
    log,
  });
}

/** Shown instead of the bundle's sha256 when `--dry-run` has no bundle at hand. */
export const BUNDLE_SHA_PLACEHOLDER = "<sha256 of the run's worker bundle>";

/**
 * The objects a kube run would create, for `--dry-run -o yaml|json` (no API call): with
 * `--remote-kubeconfig`, the hop pod and its JobSpec Secret (value redacted); otherwise the
 * run Secret, the worker-bundle ConfigMap (stock source) and the worker pods.
 */
export function kubeDryRunResources(
  opts: KubeCliOptions & {
    runId?: string;
    arch?: string;
    bundle?: { sha256: string; parts: number };
  },
  stages: { id: string; index: number }[],
  hopArgs?: string[],
): unknown[] {
  const runId = opts.runId ?? "dry-run";
  if (opts.remoteKubeconfig) {
    const ns = { namespace: opts.namespace };
    return [
      redactSecret(hopSecret(runId, "", ns)),
      hopPod({
        runId,
        image: opts.image ?? "",
        serviceAccount: opts.serviceAccount ?? "",
        args: hopArgs ?? [],
        timeoutSeconds: HOP_TIMEOUT_SECONDS,
        ...(typeof opts.fsGroup === "number" ? { fsGroup: opts.fsGroup } : {}),
        ...(opts.fsGroup === undefined ? { fsGroup: DEFAULT_FS_GROUP } : {}),
        ...(opts.runAsUser !== undefined ? { runAsUser: opts.runAsUser } : {}),
        ...ns,
      }),
    ];
  }
  return dryRunObjects({
    runId: opts.runId ?? "dry-run",
    image: opts.image || DEFAULT_WORKER_IMAGE,
    serviceAccount: opts.serviceAccount,
    namespace: opts.namespace,
    arch: opts.arch,
    timeoutSeconds: 5400,
    stages: stages.map((s) => ({
      id: s.id,
      index: s.index,
      env: {
        COSA_WORK_POD_JSON: "<built at run time>",
        ...(opts.arch ? { COSA_FORCE_ARCH: opts.arch } : {}),
      },
    })),
    secretKeys: ["COSA_RELAY_SECRET_KEY"],
    ...(typeof opts.fsGroup === "number" ? { fsGroup: opts.fsGroup } : {}),
    ...(opts.fsGroup === undefined ? { fsGroup: DEFAULT_FS_GROUP } : {}),
    ...(opts.runAsUser !== undefined ? { runAsUser: opts.runAsUser } : {}),
    ...(opts.workerSource !== "image"
      ? {
        stock: {
          denoImage: opts.denoImage || DEFAULT_DENO_IMAGE,
          sha256: opts.bundle?.sha256 ?? BUNDLE_SHA_PLACEHOLDER,
          parts: opts.bundle?.parts ?? 1,
        },
      }
      : {}),
  });
}

/** `submit --cleanup --backend kube`: deletes every gangplank pod and Secret (by label). */
export async function kubeCleanup(
  opts: KubeCliOptions & { runId?: string },
  env: Record<string, string | undefined>,
  signal: AbortSignal,
  log: (msg: string) => void,
): Promise<{ pods: string[]; secrets: string[] }> {
  const client = kubeClientFor(opts, env, log);
  const r = await cleanupKube(client, { runId: opts.runId, signal });
  for (const p of r.pods) log(`deleted pod ${p}`);
  for (const s of r.secrets) log(`deleted secret ${s}`);
  for (const c of r.configMaps) log(`deleted configmap ${c}`);
  log(
    `cleanup: ${r.pods.length} pod(s), ${r.secrets.length} secret(s), ${r.configMaps.length} ` +
      `configmap(s) removed from namespace ${client.namespace}`,
  );
  return r;
}
