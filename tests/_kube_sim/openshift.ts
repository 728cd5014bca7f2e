/**
 * The OpenShift objects a BuildConfig coordinator reads: `build.openshift.io/v1` Builds and
 * `image.openshift.io/v1` ImageStreams, get and list only (tests put them in with
 * {@link OpenShiftObjects.put}). Not in discovery: the server does not claim to be OpenShift.
 *
 * @module
 */

import { ApiError, type KObj, notFound } from "./store.ts";
import { json } from "./validate.ts";

const GROUPS: Record<string, { version: string; plural: string; kind: string }> = {
  "build.openshift.io": { version: "v1", plural: "builds", kind: "Build" },
  "image.openshift.io": { version: "v1", plural: "imagestreams", kind: "ImageStream" },
};

/** True for a path this module answers (`/apis/<openshift group>/...`). */
export function isOpenShiftPath(segs: readonly string[]): boolean {
  return segs[0] === "apis" && segs[1] in GROUPS;
}

/** Builds and ImageStreams by `<plural>/<namespace>/<name>`. */
export class OpenShiftObjects {
  #objs = new Map<string, KObj>();
  #rv = 1;

  /** Stores a Build or an ImageStream (its `kind` decides which); returns the stored copy. */
  put(obj: KObj): KObj {
    const g = Object.entries(GROUPS).find(([, v]) => v.kind === obj.kind);
    if (!g) throw new Error(`kube-sim: ${obj.kind} is not an OpenShift kind served here`);
    const ns = obj.metadata.namespace ?? "default";
    const o = structuredClone(obj);
    o.apiVersion = `${g[0]}/${g[1].version}`;
    o.metadata = {
      ...o.metadata,
      namespace: ns,
      uid: o.metadata.uid ?? crypto.randomUUID(),
      resourceVersion: String(++this.#rv),
    };
    this.#objs.set(`${g[1].plural}/${ns}/${o.metadata.name}`, o);
    return structuredClone(o);
  }

  /** GET `/apis/<group>/v1/namespaces/<ns>/<plural>[/<name>]`. */
  route(req: Request, segs: readonly string[]): Response {
    const g = GROUPS[segs[1]];
    const [, , version, nsWord, ns, plural, name, ...more] = segs;
    if (
      version !== g.version || nsWord !== "namespaces" || !ns || plural !== g.plural ||
      more.length
    ) {
      throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    }
    if (req.method !== "GET") {
      throw new ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
      );
    }
    if (name !== undefined) {
      const o = this.#objs.get(`${plural}/${ns}/${name}`);
      if (!o) throw notFound(plural, name);
      return json(o);
    }
    const items = [...this.#objs.entries()].filter(([k]) => k.startsWith(`${plural}/${ns}/`))
      .map(([, o]) => o);
    return json({
      kind: `${g.kind}List`,
      apiVersion: `${segs[1]}/${g.version}`,
      metadata: { resourceVersion: String(this.#rv) },
      items,
    });
  }
}
