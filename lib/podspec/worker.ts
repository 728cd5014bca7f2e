/**
 * The worker pod (reference §7.1) and the per-run Secret, as pure functions returning fresh
 * objects. Differences from Gangplank (§12.1.16, §12.1.26): the CA-trust init container writes
 * the bundle into the `container-certs` volume that `SSL_CERT_FILE` points at, every mode is
 * octal, `activeDeadlineSeconds` is never shorter than the coordinator's pod timeout, the s390x
 * memory size applies, and secret values only ever appear in the Secret's `data`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type {
  V1Container,
  V1EnvVar,
  V1Pod,
  V1PodSecurityContext,
  V1ResourceRequirements,
  V1Secret,
  V1SecurityContext,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { WORKER_COMMAND, WORKER_ENV, WORKER_WORKDIR } from "../workspec/worker_image.ts";
import type { PodAdditions } from "../secrets/mod.ts";
import { stockWorkerParts } from "./stock_worker.ts";
import { runLabels, runSecretName, STAGE_ID_ANNOTATION, workerPodName } from "./names.ts";
import { secretFileVar } from "../workspec/env.ts";

/** Where the CA-trust init container writes the combined CA bundle (a volume). */
export const CERTS_DIR = "/etc/containers/certs.d";
/** The combined CA bundle `SSL_CERT_FILE` points at. */
export const CA_BUNDLE = `${CERTS_DIR}/ca.crt`;

/**
 * The CA anchors directory `update-ca-trust` reads (a volume; Gangplank mounted
 * `/etc/pki/ca-trust/anchors`, which nothing reads).
 */
export const ANCHORS_DIR = "/etc/pki/ca-trust/source/anchors";

/** Extended resource requested when the cluster offers KVM (KubeVirt device plugin). */
export const KVM_RESOURCE = "devices.kubevirt.io/kvm";

/** Seconds added to the pod timeout for `activeDeadlineSeconds`. */
export const DEADLINE_SLACK_SECONDS = 300;

/**
 * Where the worker finds its secret files: a memory-backed emptyDir the `secrets` init
 * container fills from the stage's Secret (mounted only in that init container). The worker
 * can delete them there once read; a Secret volume is read-only, and an env var from
 * `secretKeyRef` stays in `/proc/<worker pid>/environ` for the worker's whole life.
 */
export const SECRETS_DIR = "/run/gangplank/secrets";
/** Where the `secrets` init container sees the stage's Secret. */
export const SECRETS_SOURCE_DIR = "/run/gangplank/secrets-source";

/** The script of the `secrets` init container: copy every key into 0600 files. */
export function secretsCopyScript(): string {
  return [
    "umask 077",
    `for f in ${SECRETS_SOURCE_DIR}/*; do`,
    `  [ -f "$f" ] && cat "$f" > "${SECRETS_DIR}/\${f##*/}" || exit 1`,
    "done",
    "exit 0",
  ].join("\n") + "\n";
}

/** The four emptyDir volumes of every worker pod and where they are mounted. */
export const BASE_VOLUMES: readonly { name: string; mountPath: string }[] = [
  { name: "srv", mountPath: "/srv" },
  { name: "pki-trust", mountPath: "/etc/pki/ca-trust/extracted" },
  { name: "pki-anchors", mountPath: ANCHORS_DIR },
  { name: "container-certs", mountPath: CERTS_DIR },
];

/** CPU/memory for the worker container (requests == limits). */
export interface WorkerResources {
  cpu?: string;
  memory?: string;
}

/** Options of {@link workerPod}. */
export interface WorkerPodOptions {
  runId: string;
  stageId: string;
  stageIndex: number;
  image: string;
  serviceAccount?: string;
  /** Non-secret env (`COSA_WORK_POD_JSON`, `COSA_FORCE_ARCH`, ...). */
  env: Record<string, string>;
  /**
   * The stage's Secret (the relay key, registry secrets) and its keys: each key reaches the
   * worker as a 0600 file in a memory-backed volume, named by `<KEY>_FILE`-style env vars
   * ({@link SECRETS_DIR}), never as an env var the kubelet would fix in the worker's environ.
   */
  secretFiles: { secretName: string; keys: string[] };
  /** OpenShift 3.11: privileged root containers and `/dev/kvm` opened up by the init step. */
  ocp3?: boolean;
  /** Request one `devices.kubevirt.io/kvm` (only when the cluster's nodes offer it). */
  kvm?: boolean;
  /** Override the default `cpu: 2`, `memory: 4Gi` (12Gi on s390x). */
  resources?: WorkerResources;
  /** Architecture of the workers (s390x gets more memory by default). */
  arch?: string;
  /** Mount-ref volumes (§7.4), from `mountRefs()` of lib/secrets. */
  mounts?: PodAdditions;
  /** Secret mapping (§7.3), from `secretMaps()` of lib/secrets. */
  secretMaps?: PodAdditions;
  /** The coordinator's timeout for this pod; `activeDeadlineSeconds` is never shorter. */
  timeoutSeconds: number;
  /** Worker command (default lib/podman's `WORKER_COMMAND`). */
  command?: readonly string[];
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /**
   * Pod `securityContext.fsGroup`: needed on plain Kubernetes when the image runs as a non-root
   * user (the 0600 secret files then get that group and group-read). OpenShift assigns one.
   */
  fsGroup?: number;
  /** Pod `securityContext.runAsUser` (default: the image's user). */
  runAsUser?: number;
  /**
   * Stock-image workers: deno copied from `denoImage` by an init container, the worker bundle
   * from the run's ConfigMap, checked against `sha256` (see `stock_worker.ts`). Absent: the
   * image's own deno and worker (`command`).
   */
  stock?: { denoImage: string; sha256: string; parts?: number };
  /** Namespace to put in metadata (omitted by default: the client's namespace is used). */
  namespace?: string;
}

/** The shell script of the CA-trust init container (POSIX sh, every step tolerant). */
export function caTrustScript(ocp3: boolean): string {
  // Writes only into the pod's volumes: the anchors, the extracted trust, and the bundle.
  const lines = [
    "mkdir -p /etc/pki/ca-trust/extracted/openssl /etc/pki/ca-trust/extracted/pem " +
    `/etc/pki/ca-trust/extracted/java /etc/pki/ca-trust/extracted/edk2 ${ANCHORS_DIR} ${CERTS_DIR}`,
    "for f in /etc/pki/ca-trust/source/anchors2/*.crt /etc/pki/ca-trust/source/anchors2/*.pem; do " +
    `[ -f "$f" ] && cp "$f" ${ANCHORS_DIR}/; done`,
    "sa=/var/run/secrets/kubernetes.io/serviceaccount",
    `[ -f "$sa/ca.crt" ] && cp "$sa/ca.crt" ${ANCHORS_DIR}/cluster-ca.crt`,
    `[ -f "$sa/service-ca.crt" ] && cp "$sa/service-ca.crt" ${ANCHORS_DIR}/service-ca.crt`,
    "command -v update-ca-trust >/dev/null 2>&1 && update-ca-trust extract",
    `: > ${CA_BUNDLE}`,
    "for f in /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem /etc/ssl/certs/ca-certificates.crt; do " +
    `[ -f "$f" ] && { cat "$f" >> ${CA_BUNDLE}; break; }; done`,
    `for f in ${ANCHORS_DIR}/*; do [ -f "$f" ] && cat "$f" >> ${CA_BUNDLE}; done`,
  ];
  if (ocp3) {
    lines.push("chmod 0666 /dev/kvm || echo missing kvm", "stat /dev/kvm || :");
  }
  lines.push("exit 0");
  return lines.join("\n") + "\n";
}

/** The pod-level security context for `fsGroup`/`runAsUser`, or undefined for neither. */
export function podSecurityContext(
  opts: { fsGroup?: number; runAsUser?: number },
): V1PodSecurityContext | undefined {
  if (opts.fsGroup === undefined && opts.runAsUser === undefined) return undefined;
  return {
    ...(opts.fsGroup !== undefined ? { fsGroup: opts.fsGroup } : {}),
    ...(opts.runAsUser !== undefined ? { runAsUser: opts.runAsUser } : {}),
  };
}

/** Security context of both containers. */
export function securityContext(ocp3: boolean): V1SecurityContext | undefined {
  return ocp3 ? { runAsUser: 0, runAsGroup: 1000, privileged: true } : undefined;
}

/** requests == limits for the worker. */
export function workerResources(
  opts: { resources?: WorkerResources; kvm?: boolean; arch?: string },
): V1ResourceRequirements {
  const list: Record<string, string> = {
    cpu: opts.resources?.cpu ?? "2",
    memory: opts.resources?.memory ?? (opts.arch === "s390x" ? "12Gi" : "4Gi"),
  };
  if (opts.kvm) list[KVM_RESOURCE] = "1";
  return { requests: { ...list }, limits: { ...list } };
}

/** Env list with later entries replacing earlier ones of the same name. */
function dedupeEnv(entries: V1EnvVar[]): V1EnvVar[] {
  const m = new Map<string, V1EnvVar>();
  for (const e of entries) {
    m.delete(e.name);
    m.set(e.name, e);
  }
  return [...m.values()];
}

function baseMounts(): V1VolumeMount[] {
  return BASE_VOLUMES.map((v) => ({ name: v.name, mountPath: v.mountPath }));
}

/**
 * The worker pod of one stage. Pure: a fresh object every call.
 *
 * @example
 * ```ts
 * const pod = workerPod({ runId, stageId: "build", stageIndex: 0, image, env: {},
 *   secretFiles: { secretName: runSecretName(runId), keys: ["COSA_RELAY_SECRET_KEY"] },
 *   timeoutSeconds: 5400 });
 * ```
 */
export function workerPod(opts: WorkerPodOptions): V1Pod {
  const ocp3 = opts.ocp3 ?? false;
  const sc = securityContext(ocp3);
  const extras = [opts.mounts, opts.secretMaps].filter((x): x is PodAdditions => !!x);
  const env = dedupeEnv([
    { name: "SSL_CERT_FILE", value: CA_BUNDLE },
    { name: "OSCONTAINER_CERT_DIR", value: CERTS_DIR },
    { name: "XDG_RUNTIME_DIR", value: "/srv" },
    ...Object.entries(WORKER_ENV).map(([name, value]) => ({ name, value })),
    ...Object.entries(opts.env).map(([name, value]) => ({ name, value })),
    ...extras.flatMap((x) => x.env.map((e) => structuredClone(e))),
    // The secret files last: nothing above can shadow them.
    ...opts.secretFiles.keys.map((key) => ({
      name: secretFileVar(key),
      value: `${SECRETS_DIR}/${key}`,
    })),
  ]);
  const volumes: V1Volume[] = [
    ...BASE_VOLUMES.map((v) => ({ name: v.name, emptyDir: {} })),
    ...extras.flatMap((x) => x.volumes.map((v) => structuredClone(v))),
  ];
  const hasSecrets = opts.secretFiles.keys.length > 0;
  const secretsMount = { name: "gangplank-secrets", mountPath: SECRETS_DIR };
  let secretsInit: V1Container | undefined;
  if (hasSecrets) {
    volumes.push(
      { name: "gangplank-secrets", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
      {
        name: "gangplank-secrets-source",
        // Mounted only into the init container below; 0444 so any image user can copy it.
        secret: {
          secretName: opts.secretFiles.secretName,
          defaultMode: 0o444,
          items: opts.secretFiles.keys.map((key) => ({ key, path: key })),
        },
      },
    );
    secretsInit = {
      name: "secrets",
      image: opts.image,
      command: ["/bin/sh", "-c", secretsCopyScript()],
      volumeMounts: [
        { ...secretsMount },
        { name: "gangplank-secrets-source", mountPath: SECRETS_SOURCE_DIR, readOnly: true },
      ],
      resources: {
        requests: { cpu: "10m", memory: "16Mi" },
        limits: { cpu: "100m", memory: "64Mi" },
      },
    };
  }
  const stock = opts.stock ? stockWorkerParts({ runId: opts.runId, ...opts.stock }) : undefined;
  if (stock) volumes.push(...stock.volumes);
  const init: V1Container = {
    name: "ca-trust",
    image: opts.image,
    command: ["/bin/sh", "-c", caTrustScript(ocp3)],
    workingDir: "/srv",
    volumeMounts: [
      ...baseMounts(),
      ...extras.flatMap((x) => x.initMounts.map((m) => ({ ...m }))),
    ],
    resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "1", memory: "256Mi" } },
  };
  const main: V1Container = {
    name: "worker",
    image: opts.image,
    command: stock ? stock.command : [...(opts.command ?? WORKER_COMMAND)],
    workingDir: WORKER_WORKDIR,
    env: stock ? dedupeEnv([...stock.env, ...env]) : env,
    volumeMounts: [
      ...baseMounts(),
      ...(stock ? [{ ...stock.mount }] : []),
      ...extras.flatMap((x) => x.mounts.map((m) => ({ ...m }))),
      ...(hasSecrets ? [{ ...secretsMount }] : []),
    ],
    resources: workerResources(opts),
  };
  for (const c of [stock?.init, secretsInit, init, main]) {
    if (!c) continue;
    if (opts.imagePullPolicy) c.imagePullPolicy = opts.imagePullPolicy;
    if (sc) c.securityContext = { ...sc };
  }
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: workerPodName(opts.runId, opts.stageIndex, opts.stageId),
      labels: runLabels(opts.runId, "worker", opts.stageId),
      annotations: { [STAGE_ID_ANNOTATION]: opts.stageId },
    },
    spec: {
      restartPolicy: "Never",
      activeDeadlineSeconds: Math.max(1, Math.ceil(opts.timeoutSeconds)) + DEADLINE_SLACK_SECONDS,
      terminationGracePeriodSeconds: 30,
      automountServiceAccountToken: true,
      initContainers: [
        ...(stock ? [stock.init] : []),
        init,
        ...(secretsInit ? [secretsInit] : []),
      ],
      containers: [main],
      volumes,
    },
  };
  if (opts.namespace) pod.metadata!.namespace = opts.namespace;
  if (opts.serviceAccount) pod.spec!.serviceAccountName = opts.serviceAccount;
  const podSc = podSecurityContext(opts);
  if (podSc) pod.spec!.securityContext = podSc;
  return pod;
}

/**
 * The per-run Secret holding the relay secret key (and any other secret env). Values are
 * base64-encoded into `data`: the only place a secret value appears in any object.
 */
export function runSecret(
  runId: string,
  data: Record<string, string>,
  opts: { namespace?: string } = {},
): V1Secret {
  const encoded: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) encoded[k] = Buffer.from(v, "utf8").toString("base64");
  const secret: V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: { name: runSecretName(runId), labels: runLabels(runId, "relay-secret") },
    data: encoded,
  };
  if (opts.namespace) secret.metadata!.namespace = opts.namespace;
  return secret;
}

/** Placeholder shown instead of a secret value in `--dry-run` output. */
export const SECRET_PLACEHOLDER = "<generated at run time>";

/**
 * A copy of a Secret fit for printing: every value replaced by {@link SECRET_PLACEHOLDER}
 * (in `stringData`, so the printed object stays a valid Secret).
 */
export function redactSecret(secret: V1Secret): V1Secret {
  const keys = [...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})];
  const out: V1Secret = structuredClone({ ...secret, data: undefined, stringData: undefined });
  delete out.data;
  out.stringData = Object.fromEntries([...new Set(keys)].map((k) => [k, SECRET_PLACEHOLDER]));
  return out;
}
