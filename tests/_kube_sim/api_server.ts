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

import { ApiError, type KObj, ObjectStore, statusObject } from "./store.ts";
import { matchLabels, parseLabelSelector, SelectorError } from "./selectors.ts";
import { type FaultName, Faults, type FaultSwitches } from "./faults.ts";
import { Kubelet, type KubeletOptions } from "./kubelet.ts";
import { kubeconfigYaml, testCertificates } from "./tls.ts";
import { badRequest, json } from "./validate.ts";
import { route, type RouteContext } from "./router.ts";
import { OpenShiftObjects } from "./openshift.ts";
import { type RequestAttributes, requestAttributes } from "./rbac.ts";
import { PodNetwork } from "./network.ts";
import * as https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Buffer } from "node:buffer";

export type { FaultName, FaultSwitches, PodFault, PodMatch } from "./faults.ts";
export type { ContainerLaunch, KubeletOptions, MountSpec } from "./kubelet.ts";
export type { KObj } from "./store.ts";
export { podStatusReason } from "./table.ts";
export { testCertificates } from "./tls.ts";

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
  /**
   * Authorization (after authentication): a request it refuses is answered 403 Forbidden, as
   * RBAC does. Default: everything allowed. See `rbac.ts` for Role matching.
   */
  authorize?: (a: RequestAttributes) => boolean;
}

/** One request the server answered (for assertions). */
export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  status: number;
  accept: string;
  contentType: string;
  /** Its authorization attributes (verb, group, resource, namespace, name). */
  attributes: RequestAttributes;
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
  /**
   * The node's address: where pods reach the API server and anything else on this machine
   * (`10.213.<k>.1` with a pod network, else 127.0.0.1). A pod's 127.0.0.1 is its own.
   */
  readonly nodeIP: string;
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
  /** OpenShift Builds and ImageStreams served under `/apis/...openshift.io/v1` (get, list). */
  readonly openshift: OpenShiftObjects;
  /** Turns a fault switch on (value) or off (undefined). */
  setFault<K extends FaultName>(name: K, value: FaultSwitches[K] | undefined): void;
  /** Stops the kubelet (killing containers), closes streams and the listener, removes files. */
  close(): Promise<void>;
}

/** RBAC's refusal, worded as the real server words it. */
function forbidden(a: RequestAttributes): ApiError {
  const who = `User "system:serviceaccount:default:default"`;
  if (!a.resourceRequest) {
    return new ApiError(403, "Forbidden", `forbidden: ${who} cannot ${a.verb} path "${a.path}"`);
  }
  const [resource, sub] = a.resource.split("/");
  return new ApiError(
    403,
    "Forbidden",
    `${a.resource}${a.name ? ` "${a.name}"` : ""} is forbidden: ${who} cannot ${a.verb} ` +
      `resource "${resource}"${sub ? ` with subresource "${sub}"` : ""} in API group ` +
      `"${a.apiGroup}" ${
        a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope"
      }`,
    { name: a.name, group: a.apiGroup, kind: resource },
  );
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
  const network = (opts.kubelet?.network ?? "pod") === "pod"
    ? await PodNetwork.create(log)
    : undefined;
  kubelet.setNetwork(network);
  kubelet.start();

  const dispatch = async (req: Request, url: URL): Promise<Response> => {
    let res: Response;
    const attributes = requestAttributes(req.method, url);
    try {
      // Authorization follows authentication: a request without the token gets its 401.
      const authenticated = req.headers.get("authorization") === `Bearer ${token}`;
      if (opts.authorize && authenticated && !opts.authorize(attributes)) {
        throw forbidden(attributes);
      }
      res = await route(ctx, req, url);
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
      attributes,
    });
    log(`${req.method} ${url.pathname}${url.search} ${res.status}`);
    return res;
  };
  // node:https rather than Deno.serve: it offers only HTTP/1.1, while an h2 offer makes
  // client-node (undici) use Deno's node:http2 client, which crashes on the server's GOAWAY.
  const sockets = new Set<import("node:net").Socket>();
  const newServer = () => {
    const s = https.createServer({ cert: tls.cert, key: tls.key }, (nreq, nres) => {
      serveNode(nreq, nres).catch((e) => {
        log(`serving ${nreq.method} ${nreq.url} failed: ${e}`);
        nres.destroy();
      });
    });
    s.on("secureConnection", (sock) => {
      sockets.add(sock);
      sock.on("close", () => sockets.delete(sock));
    });
    return s;
  };
  // One listener for the host (kubeconfig, kubectl), one on the node address for pods.
  const server = newServer();
  const nodeServer = network ? newServer() : undefined;
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
  const listen = (s: https.Server, host: string, port: number) =>
    new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, host, () => resolve());
    });
  await listen(server, "127.0.0.1", 0);
  const port = (server.address() as import("node:net").AddressInfo).port;
  if (nodeServer) await listen(nodeServer, kubelet.nodeIP, port);
  const baseUrl = `https://127.0.0.1:${port}`;
  kubelet.setCluster({ host: kubelet.nodeIP, port, caCert: tls.ca, token });
  const ctx: RouteContext = {
    store,
    kubelet,
    faults,
    requireServiceAccounts: !!opts.requireServiceAccounts,
    streamsClosed: streamsClosed.signal,
    token,
    port,
    openshift: new OpenShiftObjects(),
  };

  const kubeDir = await Deno.makeTempDir({ prefix: "kube-sim-" });
  const kubeconfigPath = `${kubeDir}/kubeconfig`;
  const kubeconfig = kubeconfigYaml(baseUrl, tls.ca, token);
  await Deno.writeTextFile(kubeconfigPath, kubeconfig, { mode: 0o600 });
  await Deno.chmod(kubeconfigPath, 0o600);

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
      await Promise.all(
        [server, ...(nodeServer ? [nodeServer] : [])].map((s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            for (const sock of sockets) sock.destroy();
          })
        ),
      );
      await network?.close();
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
    nodeIP: kubelet.nodeIP,
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
    openshift: ctx.openshift,
    close,
    [Symbol.asyncDispose]: close,
  };
}
