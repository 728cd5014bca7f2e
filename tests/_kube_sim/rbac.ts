/**
 * Kubernetes authorization attributes of a request (what the real API server's
 * RequestInfoFactory derives from the URL and method) and RBAC rule matching, so a test can run
 * the server under exactly a Role's rules (`authorize` of `startKubeApiServer`) and see every
 * call a client made as `verb group/resource`.
 *
 * @module
 */

/** What RBAC decides on. */
export interface RequestAttributes {
  /** `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`. */
  verb: string;
  /** True for `/api/v1/...` and `/apis/<group>/<version>/...` resource paths. */
  resourceRequest: boolean;
  /** The API group ("" for core). */
  apiGroup: string;
  /** The resource, with its subresource: `pods`, `pods/log`. */
  resource: string;
  /** The namespace ("" for cluster-scoped requests). */
  namespace: string;
  /** The object's name ("" for collections). */
  name: string;
  /** The URL path. */
  path: string;
}

/** One rule of a Role or ClusterRole. */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
  verbs: string[];
}

const METHOD_VERBS: Record<string, string> = {
  POST: "create",
  PUT: "update",
  PATCH: "patch",
};

/** The request's attributes, as Kubernetes derives them. */
export function requestAttributes(method: string, url: URL): RequestAttributes {
  const path = url.pathname;
  const segs = path.split("/").filter((s) => s !== "");
  let rest: string[];
  let apiGroup = "";
  if (segs[0] === "api" && segs.length >= 3) rest = segs.slice(2);
  else if (segs[0] === "apis" && segs.length >= 4) {
    apiGroup = segs[1];
    rest = segs.slice(3);
  } else {
    const verb = method === "GET" || method === "HEAD" ? "get" : method.toLowerCase();
    return {
      verb,
      resourceRequest: false,
      apiGroup: "",
      resource: "",
      namespace: "",
      name: "",
      path,
    };
  }
  let namespace = "";
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  } else if (rest[0] === "namespaces" && rest.length === 2) {
    namespace = rest[1];
  }
  const [resource, name = "", sub] = rest;
  const watch = ["true", "1"].includes(url.searchParams.get("watch") ?? "");
  let verb: string;
  if (method === "GET" || method === "HEAD") verb = watch ? "watch" : name ? "get" : "list";
  else if (method === "DELETE") verb = name ? "delete" : "deletecollection";
  else verb = METHOD_VERBS[method] ?? method.toLowerCase();
  return {
    verb,
    resourceRequest: true,
    apiGroup,
    resource: sub ? `${resource}/${sub}` : resource,
    namespace,
    name,
    path,
  };
}

const has = (list: readonly string[] | undefined, v: string) =>
  !!list && (list.includes("*") || list.includes(v));

/** True when one of `rules` allows the request (RBAC's matching, no namespace check). */
export function rulesAllow(rules: readonly PolicyRule[], a: RequestAttributes): boolean {
  return rules.some((r) => {
    if (!has(r.verbs, a.verb)) return false;
    if (!a.resourceRequest) {
      return (r.nonResourceURLs ?? []).some((u) =>
        u === "*" || u === a.path || (u.endsWith("*") && a.path.startsWith(u.slice(0, -1)))
      );
    }
    if (!has(r.apiGroups, a.apiGroup) || !has(r.resources, a.resource)) return false;
    return !r.resourceNames?.length || r.resourceNames.includes(a.name);
  });
}

/**
 * A namespaced Role's decision: only requests in its namespace, by its rules. Cluster-scoped
 * requests (nodes, namespaces) are never allowed by a Role.
 */
export function roleAllows(
  role: { namespace: string; rules: readonly PolicyRule[] },
  a: RequestAttributes,
): boolean {
  return a.resourceRequest && a.namespace === role.namespace && rulesAllow(role.rules, a);
}

/**
 * What every authenticated user may do on a real cluster (the `system:discovery`,
 * `system:public-info-viewer` and `system:basic-user` ClusterRoles' non-resource URLs).
 */
export const DISCOVERY_RULES: readonly PolicyRule[] = [{
  nonResourceURLs: [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
  ],
  verbs: ["get"],
}];

/** `verb group/resource` of a request, for messages and sets (`list /pods`). */
export function describeRequest(a: RequestAttributes): string {
  return a.resourceRequest ? `${a.verb} ${a.apiGroup}/${a.resource}` : `${a.verb} ${a.path}`;
}
