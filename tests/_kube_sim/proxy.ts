/**
 * `pods/<name>[:<port>]/proxy/<path>`: the API server forwards the request to the pod's IP
 * (the caller's `Authorization` stays with the API server), as `kubectl port-forward`-less
 * clients and `kubectl get --raw` use it.
 *
 * @module
 */

import { ApiError, notFound } from "./store.ts";
import type { ApiContext } from "./resources.ts";

/** Forwards one request to a pod (HTTP only). */
export async function proxyToPod(
  ctx: ApiContext,
  req: Request,
  ns: string,
  nameAndPort: string,
  path: string,
): Promise<Response> {
  const [name, port = "80"] = nameAndPort.split(":");
  const pod = ctx.store.get("pods", ns, name);
  if (!pod) throw notFound("pods", name);
  const ip = pod.status?.podIP;
  if (!ip || pod.status?.phase !== "Running") {
    throw new ApiError(503, "ServiceUnavailable", `pod ${name} is not running`);
  }
  const headers = new Headers(req.headers);
  for (const h of ["authorization", "host", "connection", "content-length"]) headers.delete(h);
  try {
    const res = await fetch(`http://${ip}:${port}${path}`, {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
    });
    return new Response(res.body, { status: res.status, headers: res.headers });
  } catch (e) {
    throw new ApiError(
      503,
      "ServiceUnavailable",
      `error trying to reach service: dial tcp ${ip}:${port}: ${(e as Error).message}`,
    );
  }
}
