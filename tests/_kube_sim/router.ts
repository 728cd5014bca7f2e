/**
 * The URL router of the Kubernetes test API server: health and discovery paths, bearer-token
 * auth, injected error bursts, and `/api/v1/[namespaces/<ns>/]<resource>[/<name>[/<sub>]]`
 * dispatched to the resource and stream handlers.
 *
 * @module
 */

import { ApiError, notFound, resourceInfo, statusObject } from "./store.ts";
import { discovery } from "./discovery.ts";
import { json } from "./validate.ts";
import { isOpenShiftPath, type OpenShiftObjects } from "./openshift.ts";
import {
  type ApiContext,
  create,
  deleteCollection,
  deleteOne,
  list,
  patch,
  respondObject,
  update,
} from "./resources.ts";
import { podLog, watch } from "./streams.ts";
import { proxyToPod } from "./proxy.ts";

/** What the router needs besides the handlers' context. */
export interface RouteContext extends ApiContext {
  /** The bearer token every request but the health checks must carry. */
  readonly token: string;
  /** The server's port (for discovery answers). */
  readonly port: number;
  /** Builds and ImageStreams (`/apis/{build,image}.openshift.io/v1`). */
  readonly openshift: OpenShiftObjects;
}

/** Answers one authenticated API request (throws `ApiError` for error answers). */
export function route(ctx: RouteContext, req: Request, url: URL): Promise<Response> | Response {
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const segs = path.split("/").filter(Boolean);
  if (["/healthz", "/livez", "/readyz"].includes(path)) {
    return new Response("ok", { headers: { "content-type": "text/plain" } });
  }
  const auth = req.headers.get("authorization") ?? "";
  if (auth !== `Bearer ${ctx.token}`) {
    throw new ApiError(401, "Unauthorized", "Unauthorized");
  }
  const found = discovery(path, ctx.port);
  if (found) return found;
  if (segs[0] === "openapi") {
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  if (isOpenShiftPath(segs)) return ctx.openshift.route(req, segs);
  if (segs[0] !== "api" || segs[1] !== "v1") {
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  if (ctx.faults.isForbidden(req.method, path)) {
    const [, , ...rest] = segs;
    const nsIdx = rest[0] === "namespaces" && rest.length >= 3 ? 2 : 0;
    const resource = rest[nsIdx] ?? "";
    const verb = { GET: "get", POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" }[
      req.method
    ] ?? req.method.toLowerCase();
    throw new ApiError(
      403,
      "Forbidden",
      `${resource} is forbidden: User "kube-sim-user" cannot ${verb} resource "${resource}" in ` +
        `API group "" ${nsIdx ? `in the namespace "${rest[1]}"` : "at the cluster scope"}`,
      { kind: resource },
    );
  }
  const burst = ctx.faults.takeErrorBurst(req.method, path);
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
  if (rest[0] === "namespaces" && rest[2] === "pods" && rest[4] === "proxy") {
    if (!ctx.store.get("namespaces", undefined, rest[1])) throw notFound("namespaces", rest[1]);
    const tail = url.pathname.split("/").slice(8).join("/");
    return proxyToPod(ctx, req, rest[1], rest[3], `/${tail}${url.search}`);
  }
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
    if (!ctx.store.get("namespaces", undefined, ns)) throw notFound("namespaces", ns);
  }
  if (!info.namespaced && ns !== undefined) {
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  const q = url.searchParams;
  if (name === undefined) {
    switch (req.method) {
      case "GET":
        if (q.get("watch") === "true" || q.get("watch") === "1") {
          return watch(ctx, req, resource, ns, q);
        }
        return list(ctx, req, resource, ns, q);
      case "POST":
        if (!ns && info.namespaced) {
          throw new ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
          );
        }
        return create(ctx, req, resource, ns, q);
      case "DELETE":
        return deleteCollection(ctx, req, resource, ns, q);
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
    return podLog(ctx, ns!, name, q);
  }
  if (sub !== undefined && sub !== "status") {
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  switch (req.method) {
    case "GET": {
      const o = ctx.store.get(resource, ns, name);
      if (!o) throw notFound(resource, name);
      return respondObject(req, resource, o, q);
    }
    case "PUT":
      return update(ctx, req, resource, ns, name, sub === "status");
    case "PATCH":
      return patch(ctx, req, resource, ns, name, sub === "status");
    case "DELETE":
      return deleteOne(ctx, req, resource, ns, name, q);
    default:
      throw new ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
      );
  }
}
