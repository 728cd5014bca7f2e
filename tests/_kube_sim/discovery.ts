/**
 * Discovery documents of the Kubernetes test API server: `/version`, `/api`, `/apis`,
 * `/api/v1` and the OpenAPI v3 paths kubectl reads.
 *
 * @module
 */

import { type KObj, RESOURCES } from "./store.ts";
import { json } from "./validate.ts";

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

/** The discovery answer for `path` (no trailing slash), or undefined when it is not one. */
export function discovery(path: string, port: number): Response | undefined {
  switch (path) {
    case "/version":
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
    case "/api":
      return json({
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{
          clientCIDR: "0.0.0.0/0",
          serverAddress: `127.0.0.1:${port}`,
        }],
      });
    case "/apis":
      return json({ kind: "APIGroupList", apiVersion: "v1", groups: [] });
    case "/api/v1":
      return json({ kind: "APIResourceList", groupVersion: "v1", resources: coreV1Resources() });
    case "/openapi/v3":
      return json({
        paths: { "api/v1": { serverRelativeURL: `/openapi/v3/api/v1?hash=${OPENAPI_HASH}` } },
      });
    case "/openapi/v3/api/v1":
      return json(openApiV3CoreV1());
  }
  return undefined;
}

function coreV1Resources(): KObj[] {
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
          kind: "Pod",
          verbs: sub === "log" ? ["get"] : ["get", "patch", "update"],
        } as unknown as KObj);
      }
    }
  }
  return resources;
}
