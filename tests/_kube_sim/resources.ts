/**
 * The resource handlers of the Kubernetes test API server: get/list (JSON or Table),
 * create, update, patch and delete of core/v1 objects against the object store.
 *
 * @module
 */

import {
  ApiError,
  type KObj,
  notFound,
  type ObjectStore,
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
} from "./selectors.ts";
import type { Faults } from "./faults.ts";
import type { Kubelet } from "./kubelet.ts";
import { tableFor } from "./table.ts";
import { jsonPatch, mergePatch } from "./patch.ts";
import {
  b64,
  badRequest,
  invalid,
  json,
  validateDataSize,
  validateMeta,
  validatePod,
  validateSecret,
} from "./validate.ts";

/** What the handlers work on. */
export interface ApiContext {
  readonly store: ObjectStore;
  readonly kubelet: Kubelet;
  readonly faults: Faults;
  /** Reject pods whose service account does not exist (403). */
  readonly requireServiceAccounts: boolean;
  /** Aborted when the server closes: ends every watch and log stream. */
  readonly streamsClosed: AbortSignal;
}

/** The label and field selectors of a list or watch. */
export interface Selectors {
  labels: LabelSelector;
  fields: ReturnType<typeof parseFieldSelector>;
}

/** Whether an object matches both selectors. */
export function selects(sel: Selectors, o: KObj): boolean {
  return matchLabels(sel.labels, o.metadata.labels) && matchFields(sel.fields, o);
}

export function withKind(resource: string, o: KObj): KObj {
  const info = resourceInfo(resource)!;
  return { ...o, kind: info.kind, apiVersion: "v1" } as KObj;
}

export function wantsTable(req: Request): boolean {
  return (req.headers.get("accept") ?? "").includes("as=Table");
}

export function respondObject(
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

export function selectorsOf(resource: string, q: URLSearchParams): Selectors {
  return {
    labels: parseLabelSelector(q.get("labelSelector")),
    fields: parseFieldSelector(q.get("fieldSelector"), resource),
  };
}

export function list(
  ctx: ApiContext,
  req: Request,
  resource: string,
  ns: string | undefined,
  q: URLSearchParams,
) {
  const sel = selectorsOf(resource, q);
  let items = ctx.store.list(resource, ns).filter((o) => selects(sel, o));
  const rv = String(ctx.store.resourceVersion);
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
      if (Number(parsed.rv) < ctx.store.oldestResumable) {
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

export async function body(req: Request): Promise<KObj> {
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
  if (resource === "secrets" || resource === "configmaps") validateDataSize(info.kind, o);
  return o;
}

export async function create(
  ctx: ApiContext,
  req: Request,
  resource: string,
  ns: string | undefined,
  q: URLSearchParams,
) {
  const o = prepareNew(resource, ns, await body(req));
  if (resource === "pods" && ctx.requireServiceAccounts) {
    const sa = o.spec.serviceAccountName as string;
    if (!ctx.store.get("serviceaccounts", ns, sa)) {
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
  const created = ctx.store.create(resource, o);
  if (resource === "namespaces") {
    try {
      ctx.store.create("serviceaccounts", {
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

export async function update(
  ctx: ApiContext,
  req: Request,
  resource: string,
  ns: string | undefined,
  name: string,
  statusOnly: boolean,
) {
  const cur = ctx.store.get(resource, ns, name);
  if (!cur) throw notFound(resource, name);
  const next = applyUpdate(resource, cur, await body(req), statusOnly);
  const saved = ctx.store.update(resource, next);
  return json(withKind(resource, saved));
}

export async function patch(
  ctx: ApiContext,
  req: Request,
  resource: string,
  ns: string | undefined,
  name: string,
  statusOnly: boolean,
) {
  const cur = ctx.store.get(resource, ns, name);
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
  const saved = ctx.store.update(resource, applyUpdate(resource, cur, next, statusOnly));
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

export function removeOne(
  ctx: ApiContext,
  resource: string,
  ns: string | undefined,
  name: string,
  grace?: number,
): KObj | undefined {
  if (resource === "pods") return ctx.kubelet.deletePod(ns!, name, grace);
  if (resource === "namespaces") {
    for (const r of RESOURCES.filter((x) => x.namespaced)) {
      for (const o of ctx.store.list(r.name, name)) {
        if (r.name === "pods") ctx.kubelet.deletePod(name, o.metadata.name, 0);
        else ctx.store.remove(r.name, name, o.metadata.name);
      }
    }
  }
  return ctx.store.remove(resource, ns, name);
}

export async function deleteOne(
  ctx: ApiContext,
  req: Request,
  resource: string,
  ns: string | undefined,
  name: string,
  q: URLSearchParams,
) {
  const o = await deleteOptions(req, q);
  const cur = ctx.store.get(resource, ns, name);
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
  const removed = removeOne(ctx, resource, ns, name, o.grace);
  if (!removed) throw notFound(resource, name);
  if (resource === "pods") return json(withKind(resource, removed));
  return json(statusObject(200, "", "", { name, kind: resource, uid: cur.metadata.uid }) as KObj);
}

export async function deleteCollection(
  ctx: ApiContext,
  req: Request,
  resource: string,
  ns: string | undefined,
  q: URLSearchParams,
) {
  const o = await deleteOptions(req, q);
  const sel = selectorsOf(resource, q);
  const items: KObj[] = [];
  for (const obj of ctx.store.list(resource, ns).filter((x) => selects(sel, x))) {
    const r = removeOne(ctx, resource, obj.metadata.namespace, obj.metadata.name, o.grace);
    if (r) items.push(r);
  }
  const info = resourceInfo(resource)!;
  return json({
    kind: `${info.kind}List`,
    apiVersion: "v1",
    metadata: { resourceVersion: String(ctx.store.resourceVersion) },
    items,
  });
}
