/**
 * The object store of the in-memory Kubernetes test API server: typed objects keyed by
 * resource/namespace/name, a global resourceVersion, and a bounded ring of change events that
 * watches replay from.
 *
 * @module
 */

/** A Kubernetes object as JSON. */
// deno-lint-ignore no-explicit-any
export type KObj = Record<string, any> & {
  apiVersion?: string;
  kind?: string;
  metadata: KMeta;
};

/** Object metadata (the fields the server manages). */
// deno-lint-ignore no-explicit-any
export type KMeta = Record<string, any> & {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};

/** An error the API answers with a `Status` object. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The `Status` object sent on the wire. */
  toStatus(): KObj {
    return statusObject(this.code, this.reason, this.message, this.details);
  }
}

/** Builds a `Status` object. */
export function statusObject(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): KObj {
  const s: KObj = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {} as KMeta,
    status: code < 400 ? "Success" : "Failure",
    message,
    reason,
    code,
  };
  if (details) s.details = details;
  return s;
}

/** `404 NotFound` for one object. */
export function notFound(resource: string, name: string): ApiError {
  return new ApiError(404, "NotFound", `${resource} "${name}" not found`, {
    name,
    kind: resource,
  });
}

/** A change of one object, as seen by watches. */
export interface StoreEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  resource: string;
  rv: number;
  object: KObj;
  /** The object before a MODIFIED change (for selector transitions). */
  old?: KObj;
}

/** Options of {@link ObjectStore}. */
export interface StoreOptions {
  /** How many change events watches can resume from (older → 410 Gone). Default 1000. */
  historySize?: number;
}

/** Resource metadata the store and the discovery endpoints share. */
export interface ResourceInfo {
  name: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  verbs: string[];
}

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** Core/v1 resources the server serves. */
export const RESOURCES: ResourceInfo[] = [
  { name: "pods", kind: "Pod", namespaced: true, shortNames: ["po"], verbs: VERBS },
  { name: "secrets", kind: "Secret", namespaced: true, verbs: VERBS },
  { name: "configmaps", kind: "ConfigMap", namespaced: true, shortNames: ["cm"], verbs: VERBS },
  {
    name: "serviceaccounts",
    kind: "ServiceAccount",
    namespaced: true,
    shortNames: ["sa"],
    verbs: VERBS,
  },
  { name: "events", kind: "Event", namespaced: true, shortNames: ["ev"], verbs: VERBS },
  {
    name: "namespaces",
    kind: "Namespace",
    namespaced: false,
    shortNames: ["ns"],
    verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  },
  {
    name: "nodes",
    kind: "Node",
    namespaced: false,
    shortNames: ["no"],
    verbs: VERBS,
  },
];

/** Looks up a resource by plural name. */
export function resourceInfo(name: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => r.name === name);
}

function key(ns: string | undefined, name: string): string {
  return `${ns ?? ""}/${name}`;
}

/**
 * In-memory objects with resourceVersions and a bounded event history. Every object handed
 * out is a copy; mutate through {@link ObjectStore.mutate} / {@link ObjectStore.update}.
 */
export class ObjectStore {
  #rv = 1;
  #objs = new Map<string, Map<string, KObj>>();
  #ring: StoreEvent[] = [];
  #historySize: number;
  #listeners = new Set<(ev: StoreEvent) => void>();
  /** Every version of every object ever written (for "no secret leaked" assertions). */
  readonly writes: { type: StoreEvent["type"]; resource: string; object: KObj }[] = [];

  constructor(opts: StoreOptions = {}) {
    this.#historySize = opts.historySize ?? 1000;
    for (const r of RESOURCES) this.#objs.set(r.name, new Map());
  }

  /** Current global resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** The oldest resourceVersion a watch can resume from. */
  get oldestResumable(): number {
    return this.#ring.length ? this.#ring[0].rv - 1 : this.#rv;
  }

  #map(resource: string): Map<string, KObj> {
    const m = this.#objs.get(resource);
    if (!m) throw new ApiError(404, "NotFound", `the server could not find the requested resource`);
    return m;
  }

  #emit(type: StoreEvent["type"], resource: string, object: KObj, old?: KObj): void {
    const ev: StoreEvent = { type, resource, rv: this.#rv, object: structuredClone(object), old };
    this.#ring.push(ev);
    if (this.#ring.length > this.#historySize) this.#ring.shift();
    this.writes.push({ type, resource, object: ev.object });
    for (const l of [...this.#listeners]) {
      try {
        l(ev);
      } catch { /* a listener's failure must not break the store */ }
    }
  }

  /** Subscribes to every change; returns the unsubscribe function. */
  subscribe(fn: (ev: StoreEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Events after `rv`, or `undefined` when `rv` is older than the history ring. */
  eventsSince(rv: number): StoreEvent[] | undefined {
    if (rv < this.oldestResumable) return undefined;
    return this.#ring.filter((e) => e.rv > rv);
  }

  /** Creates an object (assigns uid, creationTimestamp, resourceVersion). 409 if it exists. */
  create(resource: string, obj: KObj): KObj {
    const m = this.#map(resource);
    const meta = obj.metadata;
    if (!meta.name) {
      throw new ApiError(
        422,
        "Invalid",
        `${resource} "" is invalid: metadata.name: Required value`,
      );
    }
    const k = key(meta.namespace, meta.name);
    if (m.has(k)) {
      throw new ApiError(409, "AlreadyExists", `${resource} "${meta.name}" already exists`, {
        name: meta.name,
        kind: resource,
      });
    }
    const o = structuredClone(obj);
    this.#rv++;
    o.metadata.uid = crypto.randomUUID();
    o.metadata.resourceVersion = String(this.#rv);
    o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    delete o.metadata.deletionTimestamp;
    m.set(k, o);
    this.#emit("ADDED", resource, o);
    return structuredClone(o);
  }

  /** A copy of one object, or undefined. */
  get(resource: string, ns: string | undefined, name: string): KObj | undefined {
    const o = this.#map(resource).get(key(ns, name));
    return o ? structuredClone(o) : undefined;
  }

  /** Copies of all objects of a resource (optionally in one namespace), sorted by ns/name. */
  list(resource: string, ns?: string): KObj[] {
    const out: KObj[] = [];
    for (const [k, o] of [...this.#map(resource).entries()].sort(([a], [b]) => a < b ? -1 : 1)) {
      if (ns === undefined || k.startsWith(`${ns}/`)) out.push(structuredClone(o));
    }
    return out;
  }

  /**
   * Replaces an object (PUT). When the new object carries a resourceVersion that differs from
   * the stored one, answers 409 Conflict. Server-managed metadata is kept.
   */
  update(resource: string, obj: KObj): KObj {
    const m = this.#map(resource);
    const k = key(obj.metadata.namespace, obj.metadata.name);
    const cur = m.get(k);
    if (!cur) throw notFound(resource, obj.metadata.name);
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== cur.metadata.resourceVersion) {
      throw new ApiError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${resource} "${obj.metadata.name}": the object has ` +
          `been modified; please apply your changes to the latest version and try again`,
        { name: obj.metadata.name, kind: resource },
      );
    }
    const o = structuredClone(obj);
    o.metadata.uid = cur.metadata.uid;
    o.metadata.creationTimestamp = cur.metadata.creationTimestamp;
    if (cur.metadata.deletionTimestamp) {
      o.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
      o.metadata.deletionGracePeriodSeconds = cur.metadata.deletionGracePeriodSeconds;
    }
    return this.#replace(resource, k, cur, o);
  }

  #replace(resource: string, k: string, cur: KObj, o: KObj): KObj {
    this.#rv++;
    o.metadata.resourceVersion = String(this.#rv);
    this.#map(resource).set(k, o);
    this.#emit("MODIFIED", resource, o, structuredClone(cur));
    return structuredClone(o);
  }

  /**
   * Changes an object in place through `fn` (which edits the copy it is given); bumps the
   * resourceVersion and emits MODIFIED. Returns the new object, or undefined if it is gone.
   */
  mutate(
    resource: string,
    ns: string | undefined,
    name: string,
    fn: (o: KObj) => void,
  ): KObj | undefined {
    const k = key(ns, name);
    const cur = this.#map(resource).get(k);
    if (!cur) return undefined;
    const o = structuredClone(cur);
    fn(o);
    if (JSON.stringify(o) === JSON.stringify(cur)) return structuredClone(cur);
    return this.#replace(resource, k, cur, o);
  }

  /** Removes an object and emits DELETED. Returns the removed object, or undefined. */
  remove(resource: string, ns: string | undefined, name: string): KObj | undefined {
    const m = this.#map(resource);
    const k = key(ns, name);
    const cur = m.get(k);
    if (!cur) return undefined;
    m.delete(k);
    this.#rv++;
    const o = structuredClone(cur);
    o.metadata.resourceVersion = String(this.#rv);
    this.#emit("DELETED", resource, o);
    return structuredClone(o);
  }
}
