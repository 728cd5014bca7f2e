/**
 * An in-memory Kubernetes API server for tests, speaking the real wire protocol closely
 * enough for `npm:@kubernetes/client-node` and the real `kubectl`: discovery, core/v1 Pods,
 * Secrets, ConfigMaps, ServiceAccounts, Events, Namespaces and Nodes with
 * create/get/list/update/patch/delete/deletecollection/watch, `Status` errors, label and
 * field selectors, paging, resourceVersions, chunked watch streams with a bounded history,
 * `pods/log` with follow, Table output for kubectl, bearer-token auth, and a simulated
 * kubelet (see `kubelet.ts`) that runs the pods. Fault switches (`faults.ts`) make the
 * scheduler, kubelet or API misbehave on purpose.
 *
 * ```ts
 * await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
 * const kc = new KubeConfig();
 * kc.loadFromFile(kube.kubeconfigPath);
 * ```
 *
 * @module
 */

import {
  ApiError,
  type KObj,
  notFound,
  ObjectStore,
  resourceInfo,
  RESOURCES,
  statusObject,
} from "./store.ts";
import {
  type LabelSelector,
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from "./selectors.ts";
import { type FaultName, Faults, type FaultSwitches } from "./faults.ts";
import { Kubelet, type KubeletOptions, parseQuantity } from "./kubelet.ts";
import { logStream } from "./logs.ts";
import * as https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Buffer } from "node:buffer";

export type { FaultName, FaultSwitches, PodFault, PodMatch } from "./faults.ts";
export type { ContainerLaunch, KubeletOptions, MountSpec } from "./kubelet.ts";
export type { KObj } from "./store.ts";

/** Options of {@link startKubeApiServer}. */
export interface KubeApiOptions {
  /** Aborting closes the server (like `close()`). */
  signal?: AbortSignal;
  /** Initial fault switches (change later with `setFault`). */
  faults?: FaultSwitches;
  /** Options of the simulated kubelet. */
  kubelet?: KubeletOptions;
  /** Bearer token clients must send. Default: a random one (in the kubeconfig). */
  token?: string;
  /** Watch history size (older resourceVersions answer 410 Gone). Default 1000. */
  historySize?: number;
  /**
   * Reject pods whose service account does not exist (403 Forbidden, as the
   * ServiceAccount admission plugin). Each namespace has a `default` one. Default false.
   */
  requireServiceAccounts?: boolean;
  /** Receives one line per request (`GET /api/v1/... 200`) and simulator diagnostics. */
  log?: (line: string) => void;
}

/** One request the server answered (for assertions). */
export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  status: number;
  accept: string;
  contentType: string;
}

/** A running test API server. */
export interface KubeApi extends AsyncDisposable {
  /** `https://127.0.0.1:<port>` (its CA is in the kubeconfig and in `caCert`). */
  readonly url: string;
  /** A kubeconfig (0600) whose current context points at this server with a token user. */
  readonly kubeconfigPath: string;
  /** The namespace of the kubeconfig's context: `default`. */
  readonly namespace: string;
  /** The bearer token. */
  readonly token: string;
  /** PEM of the CA that signed the server's certificate. */
  readonly caCert: string;
  /** Direct access to the objects (for assertions and setup without the API). */
  readonly store: ObjectStore;
  /** The simulated kubelet. */
  readonly kubelet: Kubelet;
  /** Every request answered so far. */
  readonly requests: RequestRecord[];
  /** Pods (copies), optionally filtered by namespace and label selector. */
  pods(opts?: { namespace?: string; labelSelector?: string }): KObj[];
  /** Secrets (copies), optionally filtered by namespace and label selector. */
  secrets(opts?: { namespace?: string; labelSelector?: string }): KObj[];
  /** Any resource's objects (copies). */
  list(resource: string, opts?: { namespace?: string; labelSelector?: string }): KObj[];
  /** Everything a container of a pod has logged so far (undefined before it started). */
  podLog(namespace: string, pod: string, container: string): string | undefined;
  /** Turns a fault switch on (value) or off (undefined). */
  setFault<K extends FaultName>(name: K, value: FaultSwitches[K] | undefined): void;
  /** Stops the kubelet (killing containers), closes streams and the listener, removes files. */
  close(): Promise<void>;
}

const WATCH_DEFAULT_TIMEOUT_S = 1800;
const BOOKMARK_INTERVAL_MS = 10_000;

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

function invalid(kind: string, name: string, causes: { field: string; message: string }[]) {
  return new ApiError(
    422,
    "Invalid",
    `${kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`,
    {
      name,
      kind,
      causes: causes.map((c) => ({ reason: "FieldValueInvalid", ...c })),
    },
  );
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function validateMeta(kind: string, o: KObj, causes: { field: string; message: string }[]) {
  const name = o.metadata.name;
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    causes.push({
      field: "metadata.name",
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower ` +
        `case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric ` +
        `character`,
    });
  }
  for (const [k, v] of Object.entries((o.metadata.labels ?? {}) as Record<string, unknown>)) {
    const slash = k.lastIndexOf("/");
    const prefix = slash >= 0 ? k.slice(0, slash) : "";
    const nm = slash >= 0 ? k.slice(slash + 1) : k;
    if (
      (prefix && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) || nm.length > 63 ||
      !LABEL_NAME.test(nm)
    ) {
      causes.push({
        field: "metadata.labels",
        message: `Invalid value: "${k}": invalid label key`,
      });
    }
    if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) {
      causes.push({
        field: "metadata.labels",
        message: `Invalid value: "${v}": a valid label must be an empty string or consist of ` +
          `alphanumeric characters, '-', '_' or '.', and must start and end with an ` +
          `alphanumeric character (max 63 characters)`,
      });
    }
  }
  void kind;
}

function validatePod(o: KObj): void {
  const causes: { field: string; message: string }[] = [];
  validateMeta("Pod", o, causes);
  const spec = o.spec;
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    causes.push({ field: "spec.containers", message: "Required value" });
  }
  const vols = new Set<string>();
  for (const [i, v] of ((spec?.volumes ?? []) as KObj[]).entries()) {
    if (!v.name || !DNS_LABEL.test(v.name) || v.name.length > 63) {
      causes.push({ field: `spec.volumes[${i}].name`, message: `Invalid value: "${v.name}"` });
    }
    if (vols.has(v.name)) {
      causes.push({ field: `spec.volumes[${i}].name`, message: `Duplicate value: "${v.name}"` });
    }
    vols.add(v.name);
    for (const src of [v.secret, v.configMap]) {
      if (!src) continue;
      const modes = [src.defaultMode, ...((src.items ?? []) as KObj[]).map((it) => it.mode)];
      for (const m of modes) {
        if (m !== undefined && (typeof m !== "number" || m < 0 || m > 0o777)) {
          causes.push({
            field: `spec.volumes[${i}]`,
            message: `Invalid value: ${m}: must be a number between 0 and 0777 (octal), both ` +
              `inclusive`,
          });
        }
      }
    }
  }
  const names = new Set<string>();
  const check = (list: KObj[] | undefined, field: string) => {
    for (const [i, c] of (list ?? []).entries()) {
      const f = `spec.${field}[${i}]`;
      if (!c.name || c.name.length > 63 || !DNS_LABEL.test(c.name)) {
        causes.push({ field: `${f}.name`, message: `Invalid value: "${c.name ?? ""}"` });
      }
      if (names.has(c.name)) {
        causes.push({ field: `${f}.name`, message: `Duplicate value: "${c.name}"` });
      }
      names.add(c.name);
      if (!c.image) causes.push({ field: `${f}.image`, message: "Required value" });
      const limits = (c.resources?.limits ?? {}) as Record<string, unknown>;
      const requests = (c.resources?.requests ?? {}) as Record<string, unknown>;
      for (const [kind, list] of [["limits", limits], ["requests", requests]] as const) {
        for (const [k, v] of Object.entries(list)) {
          if (
            (typeof v !== "string" && typeof v !== "number") || Number.isNaN(parseQuantity(v))
          ) {
            causes.push({
              field: `${f}.resources.${kind}[${k}]`,
              message: `Invalid value: "${v}": quantities must match the regular expression ` +
                `'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
            });
          }
        }
      }
      for (const [k, v] of Object.entries(requests)) {
        if (k in limits && parseQuantity(v as string) > parseQuantity(limits[k] as string)) {
          causes.push({
            field: `${f}.resources.requests`,
            message: `Invalid value: "${v}": must be less than or equal to ${k} limit of ` +
              `${limits[k]}`,
          });
        }
      }
      for (const [j, m] of ((c.volumeMounts ?? []) as KObj[]).entries()) {
        if (!vols.has(m.name)) {
          causes.push({ field: `${f}.volumeMounts[${j}].name`, message: `Not found: "${m.name}"` });
        }
        if (!m.mountPath) {
          causes.push({ field: `${f}.volumeMounts[${j}].mountPath`, message: "Required value" });
        }
      }
      for (const [j, e] of ((c.env ?? []) as KObj[]).entries()) {
        if (!e.name) causes.push({ field: `${f}.env[${j}].name`, message: "Required value" });
        else if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(e.name)) {
          causes.push({
            field: `${f}.env[${j}].name`,
            message: `Invalid value: "${e.name}": a valid environment variable name must consist ` +
              `of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit`,
          });
        }
        if (e.value !== undefined && e.valueFrom !== undefined) {
          causes.push({
            field: `${f}.env[${j}].valueFrom`,
            message: 'Invalid value: "": may not be specified when `value` is not empty',
          });
        }
      }
    }
  };
  check(spec?.initContainers, "initContainers");
  check(spec?.containers, "containers");
  if (
    spec?.restartPolicy !== undefined &&
    !["Always", "OnFailure", "Never"].includes(spec.restartPolicy)
  ) {
    causes.push({
      field: "spec.restartPolicy",
      message: `Unsupported value: "${spec.restartPolicy}"`,
    });
  }
  if (causes.length) throw invalid("Pod", o.metadata.name, causes);
}

function validateSecret(o: KObj): void {
  const causes: { field: string; message: string }[] = [];
  validateMeta("Secret", o, causes);
  for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, unknown>)) {
    if (!/^[-._a-zA-Z0-9]+$/.test(k)) {
      causes.push({ field: `data[${k}]`, message: `Invalid value: "${k}": invalid key` });
    }
    try {
      if (typeof v !== "string") throw new Error();
      atob(v);
    } catch {
      throw badRequest(`illegal base64 data in Secret data key "${k}"`);
    }
  }
  if (causes.length) throw invalid("Secret", o.metadata.name, causes);
}

function b64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === "object" &&
      !Array.isArray(target)
    ? { ...(target as Record<string, unknown>) }
    : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, test, copy, move). */
function jsonPatch(doc: unknown, ops: KObj[]): unknown {
  let root = structuredClone(doc);
  const parse = (p: string) =>
    p === "" ? [] : p.slice(1).split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  const get = (path: string[]) => {
    let cur: unknown = root;
    for (const k of path) {
      if (cur === null || typeof cur !== "object") throw badRequest(`path not found: ${k}`);
      cur = (cur as Record<string, unknown>)[k];
    }
    return cur;
  };
  const parentOf = (path: string[]) => {
    const parent = get(path.slice(0, -1));
    if (parent === null || typeof parent !== "object") {
      throw new ApiError(422, "Invalid", `doc is missing path: /${path.join("/")}`);
    }
    return parent as Record<string, unknown> | unknown[];
  };
  const add = (path: string[], value: unknown) => {
    if (!path.length) {
      root = value;
      return;
    }
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent)) {
      parent.splice(last === "-" ? parent.length : Number(last), 0, value);
    } else parent[last] = value;
  };
  const remove = (path: string[]) => {
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else {
      if (!(last in parent)) {
        throw new ApiError(422, "Invalid", `doc is missing path: /${path.join("/")}`);
      }
      delete parent[last];
    }
  };
  for (const op of ops) {
    const path = parse(op.path ?? "");
    switch (op.op) {
      case "add":
        add(path, op.value);
        break;
      case "remove":
        remove(path);
        break;
      case "replace":
        remove(path);
        add(path, op.value);
        break;
      case "test":
        if (JSON.stringify(get(path)) !== JSON.stringify(op.value)) {
          throw new ApiError(422, "Invalid", `testing value /${path.join("/")} failed`);
        }
        break;
      case "copy":
        add(path, structuredClone(get(parse(op.from))));
        break;
      case "move": {
        const v = get(parse(op.from));
        remove(parse(op.from));
        add(path, v);
        break;
      }
      default:
        throw badRequest(`unknown JSON patch op "${op.op}"`);
    }
  }
  return root;
}

function age(ts: string | undefined): string {
  if (!ts) return "<unknown>";
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** The STATUS column of `kubectl get pods`, computed as kubectl's printer does. */
export function podStatusReason(pod: KObj): string {
  const st = pod.status ?? {};
  let reason: string = st.reason ?? st.phase ?? "Unknown";
  const inits = (st.initContainerStatuses ?? []) as KObj[];
  const nInit = (pod.spec?.initContainers ?? []).length;
  let initializing = false;
  for (const [i, c] of inits.entries()) {
    const s = c.state ?? {};
    if (s.terminated && s.terminated.exitCode === 0) continue;
    if (s.terminated) {
      reason = s.terminated.reason
        ? `Init:${s.terminated.reason}`
        : `Init:ExitCode:${s.terminated.exitCode}`;
    } else if (s.waiting?.reason && s.waiting.reason !== "PodInitializing") {
      reason = `Init:${s.waiting.reason}`;
    } else reason = `Init:${i}/${nInit}`;
    initializing = true;
    break;
  }
  if (!initializing) {
    let hasRunning = false;
    for (const c of [...((st.containerStatuses ?? []) as KObj[])].reverse()) {
      const s = c.state ?? {};
      if (s.waiting?.reason) reason = s.waiting.reason;
      else if (s.terminated?.reason) reason = s.terminated.reason;
      else if (s.terminated) {
        reason = s.terminated.signal
          ? `Signal:${s.terminated.signal}`
          : `ExitCode:${s.terminated.exitCode}`;
      } else if (s.running && c.ready) hasRunning = true;
    }
    if (reason === "Completed" && hasRunning) reason = "Running";
    if (st.reason) reason = st.reason;
  }
  if (pod.metadata.deletionTimestamp) reason = "Terminating";
  return reason;
}

function tableFor(resource: string, objs: KObj[], rv: string, includeObject: string): KObj {
  const col = (name: string, type: string, description: string, priority = 0, format = "") => ({
    name,
    type,
    format,
    description,
    priority,
  });
  let columns = [
    col("Name", "string", "Name must be unique within a namespace.", 0, "name"),
  ];
  let cells: (o: KObj) => unknown[] = (o) => [o.metadata.name];
  if (resource === "pods") {
    columns = [
      col("Name", "string", "Name must be unique within a namespace.", 0, "name"),
      col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
      col("Status", "string", "The aggregate status of the containers in this pod."),
      col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted.",
      ),
      col(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
      ),
      col("IP", "string", "IP address allocated to the pod.", 1),
      col("Node", "string", "Name of the node this pod is assigned to.", 1),
    ];
    cells = (o) => {
      const cs = (o.status?.containerStatuses ?? []) as KObj[];
      const total = (o.spec?.containers ?? []).length;
      const ready = cs.filter((c) => c.ready).length;
      const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
      return [
        o.metadata.name,
        `${ready}/${total}`,
        podStatusReason(o),
        String(restarts),
        age(o.metadata.creationTimestamp),
        o.status?.podIP ?? "<none>",
        o.spec?.nodeName ?? "<none>",
      ];
    };
  } else if (resource === "secrets") {
    columns.push(
      col("Type", "string", "The type of the secret"),
      col("Data", "string", "The number of entries in the data"),
    );
    cells = (o) => [o.metadata.name, o.type ?? "Opaque", Object.keys(o.data ?? {}).length];
  } else if (resource === "configmaps") {
    columns.push(col("Data", "string", "The number of entries in the data"));
    cells = (o) => [
      o.metadata.name,
      Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length,
    ];
  } else if (resource === "namespaces") {
    columns.push(col("Status", "string", "The status of the namespace"));
    cells = (o) => [o.metadata.name, o.status?.phase ?? "Active"];
  } else if (resource === "events") {
    columns = [
      col("Last Seen", "string", "Time of the last occurrence"),
      col("Type", "string", "Type of this event (Normal, Warning)"),
      col("Reason", "string", "Why the action was taken"),
      col("Object", "string", "The object this event is about"),
      col("Message", "string", "A human-readable description of the status of this operation"),
    ];
    cells = (o) => [
      age(o.lastTimestamp ?? o.metadata.creationTimestamp),
      o.type ?? "",
      o.reason ?? "",
      `${String(o.involvedObject?.kind ?? "").toLowerCase()}/${o.involvedObject?.name ?? ""}`,
      o.message ?? "",
    ];
  } else if (resource === "nodes") {
    columns.push(
      col("Status", "string", "The status of the node"),
      col("Roles", "string", "The roles of the node"),
      col("Version", "string", "Kubelet Version reported by the node."),
    );
    cells = (o) => [o.metadata.name, "Ready", "<none>", o.status?.nodeInfo?.kubeletVersion ?? ""];
  }
  columns.push(
    ...(resource === "pods" || resource === "events" ? [] : [
      col(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
      ),
    ]),
  );
  const fullCells = resource === "pods" || resource === "events"
    ? cells
    : (o: KObj) => [...cells(o), age(o.metadata.creationTimestamp)];
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion: rv } as KObj["metadata"],
    columnDefinitions: columns,
    rows: objs.map((o) => ({
      cells: fullCells(o),
      object: includeObject === "None"
        ? undefined
        : includeObject === "Object"
        ? { kind: resourceInfo(resource)?.kind, apiVersion: "v1", ...o }
        : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}

interface Selectors {
  labels: LabelSelector;
  fields: ReturnType<typeof parseFieldSelector>;
}

function selects(sel: Selectors, o: KObj): boolean {
  return matchLabels(sel.labels, o.metadata.labels) && matchFields(sel.fields, o);
}

const OPENAPI_HASH = "4B1D0C0FFEE0KUBESIM";

/**
 * A minimal OpenAPI v3 document of core/v1: paths with the operations and query parameters
 * kubectl probes (`fieldValidation` on POST/PUT/PATCH, with `x-kubernetes-group-version-kind`)
 * so `kubectl create -f`/`apply` use server-side field validation; no schemas.
 */
function openApiV3CoreV1(): Record<string, unknown> {
  const params = ["fieldValidation", "dryRun", "fieldManager", "pretty"].map((name) => ({
    name,
    in: "query",
    schema: { type: "string", uniqueItems: true },
  }));
  const paths: Record<string, unknown> = {};
  for (const r of RESOURCES) {
    const gvk = { group: "", version: "v1", kind: r.kind };
    const op = (action: string, id: string) => ({
      operationId: `${id}CoreV1${r.namespaced ? "Namespaced" : ""}${r.kind}`,
      parameters: params,
      responses: { "200": { description: "OK" } },
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": gvk,
    });
    const base = r.namespaced ? `/api/v1/namespaces/{namespace}/${r.name}` : `/api/v1/${r.name}`;
    paths[base] = { post: op("post", "create") };
    paths[`${base}/{name}`] = { put: op("put", "replace"), patch: op("patch", "patch") };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.32.0" },
    paths,
    components: { schemas: {} },
  };
}

let certs: Promise<{ ca: string; cert: string; key: string }> | undefined;

/**
 * A throwaway CA and a server certificate for 127.0.0.1/localhost (EC P-256, made with the
 * `openssl` CLI once per process). kubectl sends bearer tokens only over TLS, so the server
 * speaks HTTPS and the kubeconfig carries the CA.
 */
export function testCertificates(): Promise<{ ca: string; cert: string; key: string }> {
  certs ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "kube-sim-tls-" });
    try {
      const ssl = async (...args: string[]) => {
        const o = await new Deno.Command("openssl", {
          args,
          cwd: dir,
          stdout: "piped",
          stderr: "piped",
        })
          .output();
        if (!o.success) {
          throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(o.stderr)}`);
        }
      };
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
      await ssl(
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3",
        "-subj",
        "/CN=kube-sim-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      );
      await ssl(
        "req",
        ...ec,
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=kube-apiserver",
      );
      await Deno.writeTextFile(
        `${dir}/ext.cnf`,
        [
          "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc",
          "basicConstraints=critical,CA:FALSE",
          "keyUsage=critical,digitalSignature,keyEncipherment",
          "extendedKeyUsage=serverAuth",
          "",
        ].join("\n"),
      );
      await ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "3",
        "-extfile",
        "ext.cnf",
      );
      return {
        ca: await Deno.readTextFile(`${dir}/ca.crt`),
        cert: await Deno.readTextFile(`${dir}/server.crt`),
        key: await Deno.readTextFile(`${dir}/server.key`),
      };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  })();
  return certs;
}

/** Starts the test API server (and its kubelet) on 127.0.0.1 with a random port. */
export async function startKubeApiServer(opts: KubeApiOptions = {}): Promise<KubeApi> {
  opts.signal?.throwIfAborted();
  const tls = await testCertificates();
  const token = opts.token ?? crypto.randomUUID().replaceAll("-", "");
  const store = new ObjectStore({ historySize: opts.historySize });
  const faults = new Faults(opts.faults);
  const log = opts.log ?? (() => {});
  const kubelet = new Kubelet(store, faults, { log, ...opts.kubelet });
  const requests: RequestRecord[] = [];
  const streamsClosed = new AbortController();
  for (const ns of ["default", "kube-system", "kube-public"]) {
    store.create("namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns, labels: { "kubernetes.io/metadata.name": ns } },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
    store.create("serviceaccounts", {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default", namespace: ns },
    });
  }
  kubelet.start();

  const dispatch = async (req: Request, url: URL): Promise<Response> => {
    let res: Response;
    try {
      res = await handle(req, url);
    } catch (e) {
      if (e instanceof ApiError) res = json(e.toStatus(), e.code, e.headers);
      else if (e instanceof SelectorError) res = json(badRequest(e.message).toStatus(), 400);
      else {
        log(`internal error: ${e instanceof Error ? e.stack : e}`);
        res = json(statusObject(500, "InternalError", `internal error: ${e}`), 500);
      }
    }
    requests.push({
      method: req.method,
      path: url.pathname,
      query: url.search,
      status: res.status,
      accept: req.headers.get("accept") ?? "",
      contentType: req.headers.get("content-type") ?? "",
    });
    log(`${req.method} ${url.pathname}${url.search} ${res.status}`);
    return res;
  };
  // node:https rather than Deno.serve: it offers only HTTP/1.1, while an h2 offer makes
  // client-node (undici) use Deno's node:http2 client, which crashes on the server's GOAWAY.
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (nreq, nres) => {
    serveNode(nreq, nres).catch((e) => {
      log(`serving ${nreq.method} ${nreq.url} failed: ${e}`);
      nres.destroy();
    });
  });
  const sockets = new Set<import("node:net").Socket>();
  server.on("secureConnection", (sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
  });
  async function serveNode(nreq: IncomingMessage, nres: ServerResponse): Promise<void> {
    const url = new URL(nreq.url ?? "/", `https://127.0.0.1:${port}`);
    const headers = new Headers();
    for (const [k, v] of Object.entries(nreq.headers)) {
      if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
    }
    const chunks: Uint8Array[] = [];
    for await (const c of nreq) chunks.push(c as Uint8Array);
    const hasBody = !["GET", "HEAD"].includes(nreq.method ?? "GET") && chunks.length > 0;
    const request = new Request(url, {
      method: nreq.method,
      headers,
      body: hasBody ? Buffer.concat(chunks) : undefined,
    });
    const res = await dispatch(request, url);
    nres.writeHead(res.status, Object.fromEntries(res.headers));
    nres.flushHeaders();
    if (!res.body) return void nres.end();
    const reader = res.body.getReader();
    nres.on("close", () => void reader.cancel().catch(() => {}));
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (nres.destroyed) break;
        nres.write(value);
      }
    } catch { /* client went away */ }
    nres.end();
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as import("node:net").AddressInfo).port;
  const baseUrl = `https://127.0.0.1:${port}`;
  kubelet.setCluster({ host: "127.0.0.1", port, caCert: tls.ca, token });

  const kubeDir = await Deno.makeTempDir({ prefix: "kube-sim-" });
  const kubeconfigPath = `${kubeDir}/kubeconfig`;
  const kubeconfig = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: kube-sim",
    "  cluster:",
    `    server: ${baseUrl}`,
    `    certificate-authority-data: ${btoa(tls.ca)}`,
    "users:",
    "- name: kube-sim-user",
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: kube-sim",
    "  context:",
    "    cluster: kube-sim",
    "    user: kube-sim-user",
    "    namespace: default",
    "current-context: kube-sim",
    "",
  ].join("\n");
  await Deno.writeTextFile(kubeconfigPath, kubeconfig, { mode: 0o600 });
  await Deno.chmod(kubeconfigPath, 0o600);

  function handle(req: Request, url: URL): Promise<Response> | Response {
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const segs = path.split("/").filter(Boolean);
    if (["/healthz", "/livez", "/readyz"].includes(path)) {
      return new Response("ok", { headers: { "content-type": "text/plain" } });
    }
    const auth = req.headers.get("authorization") ?? "";
    if (auth !== `Bearer ${token}`) {
      throw new ApiError(401, "Unauthorized", "Unauthorized");
    }
    if (path === "/version") {
      return json({
        major: "1",
        minor: "32",
        gitVersion: "v1.32.0",
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2024-12-11T00:00:00Z",
        goVersion: "go1.23.4",
        compiler: "gc",
        platform: `linux/${Deno.build.arch === "x86_64" ? "amd64" : "arm64"}`,
      });
    }
    if (path === "/api") {
      return json({
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{
          clientCIDR: "0.0.0.0/0",
          serverAddress: `127.0.0.1:${port}`,
        }],
      });
    }
    if (path === "/apis") return json({ kind: "APIGroupList", apiVersion: "v1", groups: [] });
    if (path === "/api/v1") {
      const resources: KObj[] = [];
      for (const r of RESOURCES) {
        resources.push({
          name: r.name,
          singularName: r.kind.toLowerCase(),
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: r.verbs,
          ...(r.shortNames ? { shortNames: r.shortNames } : {}),
        } as unknown as KObj);
        if (r.name === "pods") {
          for (const sub of ["log", "status"]) {
            resources.push({
              name: `pods/${sub}`,
              singularName: "",
              namespaced: true,
              kind: sub === "log" ? "Pod" : "Pod",
              verbs: sub === "log" ? ["get"] : ["get", "patch", "update"],
            } as unknown as KObj);
          }
        }
      }
      return json({ kind: "APIResourceList", groupVersion: "v1", resources });
    }
    if (path === "/openapi/v3") {
      return json({
        paths: { "api/v1": { serverRelativeURL: `/openapi/v3/api/v1?hash=${OPENAPI_HASH}` } },
      });
    }
    if (path === "/openapi/v3/api/v1") return json(openApiV3CoreV1());
    if (segs[0] === "openapi") {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    if (segs[0] !== "api" || segs[1] !== "v1") {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    const burst = faults.takeErrorBurst(req.method, path);
    if (burst) {
      const code = burst.status;
      const reason = code === 429
        ? "TooManyRequests"
        : code === 503
        ? "ServiceUnavailable"
        : "InternalError";
      const msg = code === 429
        ? "the server has received too many requests and has asked us to try again later"
        : code === 503
        ? "the server is currently unable to handle the request"
        : 'an error on the server ("injected by kube-sim errorBurst") has prevented the request from succeeding';
      const details = { retryAfterSeconds: burst.retryAfterSeconds, causes: [] };
      const headers: Record<string, string> = code === 500
        ? {}
        : { "retry-after": String(burst.retryAfterSeconds) };
      return json(statusObject(code, reason, msg, details), code, headers);
    }
    const rest = segs.slice(2);
    let ns: string | undefined;
    let resource: string;
    let name: string | undefined;
    let sub: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3) {
      ns = rest[1];
      [resource, name, sub] = [rest[2], rest[3], rest[4]];
      if (rest.length > 5) {
        throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      }
    } else {
      [resource, name, sub] = [rest[0], rest[1], rest[2]];
      if (rest.length > 3) {
        throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      }
    }
    const info = resource ? resourceInfo(resource) : undefined;
    if (!info) {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    if (info.namespaced && ns !== undefined && resource !== "namespaces") {
      if (!store.get("namespaces", undefined, ns)) throw notFound("namespaces", ns);
    }
    if (!info.namespaced && ns !== undefined) {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    const q = url.searchParams;
    if (name === undefined) {
      switch (req.method) {
        case "GET":
          if (q.get("watch") === "true" || q.get("watch") === "1") {
            return watch(req, resource, ns, q);
          }
          return list(req, resource, ns, q);
        case "POST":
          if (!ns && info.namespaced) {
            throw new ApiError(
              405,
              "MethodNotAllowed",
              "the server does not allow this method on the requested resource",
            );
          }
          return create(req, resource, ns, q);
        case "DELETE":
          return deleteCollection(req, resource, ns, q);
        default:
          throw new ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
          );
      }
    }
    if (info.namespaced && ns === undefined) {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    if (sub === "log") {
      if (resource !== "pods" || req.method !== "GET") {
        throw new ApiError(
          405,
          "MethodNotAllowed",
          "the server does not allow this method on the requested resource",
        );
      }
      return podLog(ns!, name, q);
    }
    if (sub !== undefined && sub !== "status") {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    switch (req.method) {
      case "GET": {
        const o = store.get(resource, ns, name);
        if (!o) throw notFound(resource, name);
        return respondObject(req, resource, o, q);
      }
      case "PUT":
        return update(req, resource, ns, name, sub === "status");
      case "PATCH":
        return patch(req, resource, ns, name, sub === "status");
      case "DELETE":
        return deleteOne(req, resource, ns, name, q);
      default:
        throw new ApiError(
          405,
          "MethodNotAllowed",
          "the server does not allow this method on the requested resource",
        );
    }
  }

  function withKind(resource: string, o: KObj): KObj {
    const info = resourceInfo(resource)!;
    return { ...o, kind: info.kind, apiVersion: "v1" } as KObj;
  }

  function wantsTable(req: Request): boolean {
    return (req.headers.get("accept") ?? "").includes("as=Table");
  }

  function respondObject(
    req: Request,
    resource: string,
    o: KObj,
    q: URLSearchParams,
    status = 200,
  ) {
    if (wantsTable(req)) {
      return json(
        tableFor(
          resource,
          [o],
          o.metadata.resourceVersion ?? "",
          q.get("includeObject") ?? "Metadata",
        ),
        status,
      );
    }
    return json(withKind(resource, o), status);
  }

  function selectorsOf(resource: string, q: URLSearchParams): Selectors {
    return {
      labels: parseLabelSelector(q.get("labelSelector")),
      fields: parseFieldSelector(q.get("fieldSelector"), resource),
    };
  }

  function list(req: Request, resource: string, ns: string | undefined, q: URLSearchParams) {
    const sel = selectorsOf(resource, q);
    let items = store.list(resource, ns).filter((o) => selects(sel, o));
    const rv = String(store.resourceVersion);
    const limit = q.get("limit") ? Number(q.get("limit")) : 0;
    let cont: string | undefined;
    let remaining: number | undefined;
    const keyOf = (o: KObj) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
    const c = q.get("continue");
    if (c) {
      let start: string;
      try {
        const parsed = JSON.parse(atob(c));
        start = parsed.start;
        if (typeof start !== "string") throw new Error();
        if (Number(parsed.rv) < store.oldestResumable) {
          throw new ApiError(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
          );
        }
      } catch (e) {
        if (e instanceof ApiError) throw e;
        throw badRequest(`continue key is not valid: ${c}`);
      }
      items = items.filter((o) => keyOf(o) > start);
    }
    if (limit > 0 && items.length > limit) {
      remaining = items.length - limit;
      items = items.slice(0, limit);
      cont = btoa(JSON.stringify({ rv, start: keyOf(items[items.length - 1]) }));
    }
    if (wantsTable(req)) {
      const t = tableFor(resource, items, rv, q.get("includeObject") ?? "Metadata");
      if (cont) t.metadata.continue = cont;
      return json(t);
    }
    const info = resourceInfo(resource)!;
    const metadata: Record<string, unknown> = { resourceVersion: rv };
    if (cont) {
      metadata.continue = cont;
      metadata.remainingItemCount = remaining;
    }
    return json({ kind: `${info.kind}List`, apiVersion: "v1", metadata, items });
  }

  async function body(req: Request): Promise<KObj> {
    const text = await req.text();
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      const ct = req.headers.get("content-type") ?? "";
      if (ct.includes("yaml")) {
        const YAML = await import("yaml");
        try {
          o = YAML.parse(text);
        } catch (e) {
          throw badRequest(`error decoding YAML: ${e}`);
        }
      } else {throw badRequest(
          `the object provided is unrecognized (must be of type JSON): ${text.slice(0, 80)}`,
        );}
    }
    if (!o || typeof o !== "object") throw badRequest("the body of the request was not an object");
    return o as KObj;
  }

  function prepareNew(resource: string, ns: string | undefined, o: KObj): KObj {
    const info = resourceInfo(resource)!;
    if (o.kind !== undefined && o.kind !== info.kind) {
      throw badRequest(
        `the API version in the data (${o.apiVersion}) does not match the expected API version (v1) or kind ${o.kind} != ${info.kind}`,
      );
    }
    o.kind = info.kind;
    o.apiVersion = "v1";
    o.metadata ??= {} as KObj["metadata"];
    if (info.namespaced) {
      if (
        o.metadata.namespace !== undefined && o.metadata.namespace !== "" &&
        o.metadata.namespace !== ns
      ) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      o.metadata.namespace = ns;
    } else delete o.metadata.namespace;
    if (!o.metadata.name && o.metadata.generateName) {
      const chars = "bcdfghjklmnpqrstvwxz2456789";
      let sfx = "";
      for (let i = 0; i < 5; i++) sfx += chars[Math.floor(Math.random() * chars.length)];
      o.metadata.name = `${o.metadata.generateName}${sfx}`;
    }
    if (!o.metadata.name) {
      throw invalid(info.kind, "", [{
        field: "metadata.name",
        message: "Required value: name or generateName is required",
      }]);
    }
    delete o.metadata.deletionTimestamp;
    if (resource === "pods") {
      o.spec ??= {};
      o.spec.restartPolicy ??= "Always";
      o.spec.terminationGracePeriodSeconds ??= 30;
      o.spec.dnsPolicy ??= "ClusterFirst";
      o.spec.schedulerName ??= "default-scheduler";
      o.spec.serviceAccountName ??= o.spec.serviceAccount ?? "default";
      o.spec.serviceAccount = o.spec.serviceAccountName;
      for (const c of [...(o.spec.containers ?? []), ...(o.spec.initContainers ?? [])]) {
        c.terminationMessagePath ??= "/dev/termination-log";
        c.terminationMessagePolicy ??= "File";
        c.imagePullPolicy ??= /:latest$|^[^:]*$/.test(c.image ?? "") ? "Always" : "IfNotPresent";
        c.resources ??= {};
      }
      o.status = { phase: "Pending", qosClass: "BestEffort" };
      validatePod(o);
    } else if (resource === "secrets") {
      o.type ??= "Opaque";
      if (o.stringData) {
        o.data = { ...(o.data ?? {}) };
        for (const [k, v] of Object.entries(o.stringData as Record<string, string>)) {
          o.data[k] = b64(v);
        }
        delete o.stringData;
      }
      validateSecret(o);
    } else if (resource === "namespaces") {
      o.spec ??= { finalizers: ["kubernetes"] };
      o.status = { phase: "Active" };
      o.metadata.labels = {
        ...(o.metadata.labels ?? {}),
        "kubernetes.io/metadata.name": o.metadata.name,
      };
    } else {
      const causes: { field: string; message: string }[] = [];
      validateMeta(info.kind, o, causes);
      if (causes.length && resource !== "events") throw invalid(info.kind, o.metadata.name, causes);
    }
    return o;
  }

  async function create(
    req: Request,
    resource: string,
    ns: string | undefined,
    q: URLSearchParams,
  ) {
    const o = prepareNew(resource, ns, await body(req));
    if (resource === "pods" && opts.requireServiceAccounts) {
      const sa = o.spec.serviceAccountName as string;
      if (!store.get("serviceaccounts", ns, sa)) {
        throw new ApiError(
          403,
          "Forbidden",
          `pods "${o.metadata.name}" is forbidden: error looking up service account ${ns}/${sa}: ` +
            `serviceaccount "${sa}" not found`,
          { name: o.metadata.name, kind: "pods" },
        );
      }
    }
    if (q.get("dryRun") === "All") {
      return json(
        withKind(resource, {
          ...o,
          metadata: {
            ...o.metadata,
            uid: crypto.randomUUID(),
            creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          },
        }),
        201,
      );
    }
    const created = store.create(resource, o);
    if (resource === "namespaces") {
      try {
        store.create("serviceaccounts", {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name: "default", namespace: created.metadata.name },
        });
      } catch { /* exists */ }
    }
    return respondObject(req, resource, created, q, 201);
  }

  function applyUpdate(resource: string, cur: KObj, next: KObj, statusOnly: boolean): KObj {
    const info = resourceInfo(resource)!;
    next.kind = info.kind;
    next.apiVersion = "v1";
    next.metadata ??= {} as KObj["metadata"];
    if (next.metadata.name !== undefined && next.metadata.name !== cur.metadata.name) {
      throw badRequest(
        `the name of the object (${next.metadata.name}) does not match the name on the URL (${cur.metadata.name})`,
      );
    }
    next.metadata.name = cur.metadata.name;
    if (info.namespaced) next.metadata.namespace = cur.metadata.namespace;
    if (statusOnly) {
      const o = structuredClone(cur);
      o.status = next.status;
      o.metadata.resourceVersion = next.metadata.resourceVersion;
      return o;
    }
    if (resource === "pods") {
      next.status = cur.status; // status changes go through pods/status
      if (JSON.stringify(withoutMutable(next.spec)) !== JSON.stringify(withoutMutable(cur.spec))) {
        throw invalid("Pod", cur.metadata.name, [{
          field: "spec",
          message:
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        }]);
      }
      validatePod(next);
    } else if (resource === "secrets") {
      if (next.stringData) {
        next.data = { ...(next.data ?? {}) };
        for (const [k, v] of Object.entries(next.stringData as Record<string, string>)) {
          next.data[k] = b64(v);
        }
        delete next.stringData;
      }
      next.type ??= cur.type;
      validateSecret(next);
    }
    return next;
  }

  function withoutMutable(spec: KObj | undefined): unknown {
    if (!spec) return spec;
    const s = structuredClone(spec);
    delete s.activeDeadlineSeconds;
    delete s.tolerations;
    for (const c of [...(s.containers ?? []), ...(s.initContainers ?? [])]) delete c.image;
    return s;
  }

  async function update(
    req: Request,
    resource: string,
    ns: string | undefined,
    name: string,
    statusOnly: boolean,
  ) {
    const cur = store.get(resource, ns, name);
    if (!cur) throw notFound(resource, name);
    const next = applyUpdate(resource, cur, await body(req), statusOnly);
    const saved = store.update(resource, next);
    return json(withKind(resource, saved));
  }

  async function patch(
    req: Request,
    resource: string,
    ns: string | undefined,
    name: string,
    statusOnly: boolean,
  ) {
    const cur = store.get(resource, ns, name);
    if (!cur) throw notFound(resource, name);
    const ct = (req.headers.get("content-type") ?? "").split(";")[0].trim();
    const p = await body(req);
    let next: KObj;
    if (ct === "application/merge-patch+json" || ct === "application/strategic-merge-patch+json") {
      next = mergePatch(cur, p) as KObj;
    } else if (ct === "application/json-patch+json") {
      if (!Array.isArray(p)) throw badRequest("json patch must be an array of operations");
      next = jsonPatch(cur, p as unknown as KObj[]) as KObj;
    } else {
      throw new ApiError(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
      );
    }
    // A patch carrying a resourceVersion is a precondition; otherwise it applies to the latest.
    const explicitRv = (p as KObj).metadata?.resourceVersion;
    next.metadata ??= {} as KObj["metadata"];
    next.metadata.resourceVersion = explicitRv ?? cur.metadata.resourceVersion;
    const saved = store.update(resource, applyUpdate(resource, cur, next, statusOnly));
    return json(withKind(resource, saved));
  }

  async function deleteOptions(
    req: Request,
    q: URLSearchParams,
  ): Promise<{ grace?: number; uid?: string; rv?: string }> {
    let opts: KObj | undefined;
    const text = req.body ? await req.text() : "";
    if (text.trim()) {
      try {
        opts = JSON.parse(text);
      } catch {
        throw badRequest("the DeleteOptions body is not valid JSON");
      }
    }
    const g = q.get("gracePeriodSeconds") ?? opts?.gracePeriodSeconds;
    const grace = g === undefined || g === null ? undefined : Number(g);
    if (grace !== undefined && (!Number.isFinite(grace) || grace < 0)) {
      throw badRequest(`invalid gracePeriodSeconds: ${g}`);
    }
    return { grace, uid: opts?.preconditions?.uid, rv: opts?.preconditions?.resourceVersion };
  }

  function removeOne(
    resource: string,
    ns: string | undefined,
    name: string,
    grace?: number,
  ): KObj | undefined {
    if (resource === "pods") return kubelet.deletePod(ns!, name, grace);
    if (resource === "namespaces") {
      for (const r of RESOURCES.filter((x) => x.namespaced)) {
        for (const o of store.list(r.name, name)) {
          if (r.name === "pods") kubelet.deletePod(name, o.metadata.name, 0);
          else store.remove(r.name, name, o.metadata.name);
        }
      }
    }
    return store.remove(resource, ns, name);
  }

  async function deleteOne(
    req: Request,
    resource: string,
    ns: string | undefined,
    name: string,
    q: URLSearchParams,
  ) {
    const o = await deleteOptions(req, q);
    const cur = store.get(resource, ns, name);
    if (!cur) throw notFound(resource, name);
    if ((o.uid && o.uid !== cur.metadata.uid) || (o.rv && o.rv !== cur.metadata.resourceVersion)) {
      throw new ApiError(
        409,
        "Conflict",
        `Precondition failed: UID in precondition: ${o.uid}, UID in object meta: ${cur.metadata.uid}`,
        { name, kind: resource },
      );
    }
    if (q.get("dryRun") === "All") return json(withKind(resource, cur));
    const removed = removeOne(resource, ns, name, o.grace);
    if (!removed) throw notFound(resource, name);
    if (resource === "pods") return json(withKind(resource, removed));
    return json(statusObject(200, "", "", { name, kind: resource, uid: cur.metadata.uid }) as KObj);
  }

  async function deleteCollection(
    req: Request,
    resource: string,
    ns: string | undefined,
    q: URLSearchParams,
  ) {
    const o = await deleteOptions(req, q);
    const sel = selectorsOf(resource, q);
    const items: KObj[] = [];
    for (const obj of store.list(resource, ns).filter((x) => selects(sel, x))) {
      const r = removeOne(resource, obj.metadata.namespace, obj.metadata.name, o.grace);
      if (r) items.push(r);
    }
    const info = resourceInfo(resource)!;
    return json({
      kind: `${info.kind}List`,
      apiVersion: "v1",
      metadata: { resourceVersion: String(store.resourceVersion) },
      items,
    });
  }

  function podLog(ns: string, name: string, q: URLSearchParams): Response {
    const pod = store.get("pods", ns, name);
    if (!pod) throw notFound("pods", name);
    const containers = ((pod.spec?.containers ?? []) as KObj[]).map((c) => c.name as string);
    const inits = ((pod.spec?.initContainers ?? []) as KObj[]).map((c) => c.name as string);
    let container = q.get("container") ?? undefined;
    if (!container) {
      const def = pod.metadata.annotations?.["kubectl.kubernetes.io/default-container"];
      if (containers.length === 1) container = containers[0];
      else if (def) container = def;
      else {
        throw badRequest(
          `a container name must be specified for pod ${name}, choose one of: [${
            containers.join(" ")
          }] or one of the init containers: [${inits.join(" ")}]`,
        );
      }
    }
    if (!containers.includes(container) && !inits.includes(container)) {
      throw badRequest(`container ${container} is not valid for pod ${name}`);
    }
    const previous = q.get("previous") === "true";
    const buf = previous
      ? kubelet.previousLogBuffer(pod.metadata.uid!, container)
      : kubelet.logBuffer(pod.metadata.uid!, container);
    if (previous && !buf) {
      throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
    }
    if (!buf) {
      const statuses = [
        ...(pod.status?.initContainerStatuses ?? []),
        ...(pod.status?.containerStatuses ?? []),
      ] as KObj[];
      const st = statuses.find((s) => s.name === container);
      const reason = st?.state?.waiting?.reason ??
        (inits.length && !inits.includes(container) ? "PodInitializing" : "ContainerCreating");
      throw badRequest(`container "${container}" in pod "${name}" is waiting to start: ${reason}`);
    }
    const num = (k: string) => {
      const v = q.get(k);
      if (v === null || v === "") return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw badRequest(`invalid ${k}: ${v}`);
      return n;
    };
    const sinceTime = q.get("sinceTime");
    const stream = logStream(buf, {
      follow: q.get("follow") === "true" || q.get("follow") === "1",
      tailLines: num("tailLines"),
      sinceSeconds: num("sinceSeconds"),
      sinceTime: sinceTime ? new Date(sinceTime) : undefined,
      timestamps: q.get("timestamps") === "true" || q.get("timestamps") === "1",
      limitBytes: num("limitBytes"),
    }, streamsClosed.signal);
    return new Response(stream, { headers: { "content-type": "text/plain" } });
  }

  function watch(
    req: Request,
    resource: string,
    ns: string | undefined,
    q: URLSearchParams,
  ): Response {
    const asTable = wantsTable(req);
    const includeObject = q.get("includeObject") ?? "Metadata";
    const sel = selectorsOf(resource, q);
    const rvParam = q.get("resourceVersion");
    const timeoutS = q.get("timeoutSeconds")
      ? Number(q.get("timeoutSeconds"))
      : WATCH_DEFAULT_TIMEOUT_S;
    const bookmarks = q.get("allowWatchBookmarks") === "true";
    const drop = faults.takeWatchDrop();
    const info = resourceInfo(resource)!;
    const enc = new TextEncoder();
    let cleanup = () => {};
    const inScope = (o: KObj) => ns === undefined || o.metadata.namespace === ns;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let closed = false;
        let sent = 0;
        const timers: ReturnType<typeof setTimeout>[] = [];
        let unsub = () => {};
        const close = () => {
          if (closed) return;
          closed = true;
          unsub();
          for (const t of timers) clearTimeout(t), clearInterval(t);
          streamsClosed.signal.removeEventListener("abort", close);
          try {
            controller.close();
          } catch { /* cancelled */ }
        };
        cleanup = close;
        const send = (type: string, object: KObj) => {
          if (closed) return;
          const obj = type === "ERROR" || type === "BOOKMARK"
            ? object
            : asTable
            ? tableFor(resource, [object], object.metadata.resourceVersion ?? "", includeObject)
            : withKind(resource, object);
          controller.enqueue(enc.encode(JSON.stringify({ type, object: obj }) + "\n"));
          if (type !== "BOOKMARK") sent++;
          if (drop?.afterEvents !== undefined && sent >= drop.afterEvents) close();
        };
        const deliver = (ev: { type: string; object: KObj; old?: KObj; resource: string }) => {
          if (ev.resource !== resource || !inScope(ev.object)) return;
          const now = selects(sel, ev.object);
          if (ev.type === "MODIFIED" && ev.old) {
            const before = selects(sel, ev.old);
            if (before && now) send("MODIFIED", ev.object);
            else if (!before && now) send("ADDED", ev.object);
            else if (before && !now) send("DELETED", ev.object);
          } else if (now) send(ev.type, ev.object);
        };
        streamsClosed.signal.addEventListener("abort", close);
        if (!rvParam || rvParam === "0") {
          for (const o of store.list(resource, ns)) if (selects(sel, o)) send("ADDED", o);
        } else {
          const rv = Number(rvParam);
          const evs = Number.isFinite(rv) ? store.eventsSince(rv) : undefined;
          if (!evs) {
            send(
              "ERROR",
              statusObject(
                410,
                "Expired",
                `too old resource version: ${rvParam} (${store.oldestResumable})`,
              ),
            );
            close();
            return;
          }
          for (const ev of evs) deliver(ev);
        }
        if (closed) return;
        unsub = store.subscribe(deliver);
        timers.push(setTimeout(close, timeoutS * 1000));
        if (drop?.afterMs !== undefined) timers.push(setTimeout(close, drop.afterMs));
        if (bookmarks) {
          timers.push(setInterval(() => {
            send(
              "BOOKMARK",
              {
                kind: info.kind,
                apiVersion: "v1",
                metadata: { resourceVersion: String(store.resourceVersion) },
              } as KObj,
            );
          }, BOOKMARK_INTERVAL_MS));
        }
      },
      cancel() {
        cleanup();
      },
    });
    return new Response(stream, {
      headers: { "content-type": "application/json" },
    });
  }

  const pick = (resource: string, o?: { namespace?: string; labelSelector?: string }) => {
    const sel = parseLabelSelector(o?.labelSelector);
    return store.list(resource, o?.namespace).filter((x) => matchLabels(sel, x.metadata.labels));
  };

  let closing: Promise<void> | undefined;
  const onAbort = () => void close();
  const close = () => {
    closing ??= (async () => {
      opts.signal?.removeEventListener("abort", onAbort);
      await kubelet.close();
      streamsClosed.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of sockets) sock.destroy();
      });
      await Deno.remove(kubeDir, { recursive: true }).catch(() => {});
    })();
    return closing;
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.signal?.aborted) await close();

  return {
    url: baseUrl,
    kubeconfigPath,
    namespace: "default",
    token,
    caCert: tls.ca,
    store,
    kubelet,
    requests,
    pods: (o) => pick("pods", o),
    secrets: (o) => pick("secrets", o),
    list: (r, o) => pick(r, o),
    podLog(namespace, pod, container) {
      const p = store.get("pods", namespace, pod);
      return p ? kubelet.logBuffer(p.metadata.uid!, container)?.text() : undefined;
    },
    setFault: (n, v) => faults.set(n, v),
    close,
    [Symbol.asyncDispose]: close,
  };
}
