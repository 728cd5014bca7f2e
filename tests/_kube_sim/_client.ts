/**
 * Helpers for the Kubernetes test API server's own tests: a client-node setup against a
 * server, collecting watch events and following logs, with deadlines.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import { PassThrough } from "node:stream";
import { type KubeApi } from "./api_server.ts";

/** client-node objects bound to a test server. */
export interface Clients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
}

/** Loads the server's kubeconfig the way a user would. */
export function clients(kube: KubeApi): Clients {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  return { kc, core: kc.makeApiClient(k8s.CoreV1Api) };
}

/** A running watch that records its events. */
export interface Recorder extends AsyncDisposable {
  events: { type: string; object: k8s.V1Pod & Record<string, unknown> }[];
  /** Resolves with the error (or null) the watch ended with. */
  ended: Promise<unknown>;
  stop(): void;
}

/** Starts a client-node Watch on `path` and records the events. */
export async function record(
  kc: k8s.KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined> = {},
): Promise<Recorder> {
  const events: Recorder["events"] = [];
  const ended = Promise.withResolvers<unknown>();
  const ctl = await new k8s.Watch(kc).watch(
    path,
    query,
    (type, object) => events.push({ type, object }),
    (err) => ended.resolve(err),
  );
  const stop = () => ctl.abort();
  return {
    events,
    ended: ended.promise,
    stop,
    async [Symbol.asyncDispose]() {
      stop();
      // client-node does not call `done` when the caller aborts; give the socket a moment.
      let t: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([ended.promise, new Promise((r) => t = setTimeout(r, 50))]);
      clearTimeout(t);
    },
  };
}

/** Follows a container's log through client-node's `Log` until it ends (bounded). */
export async function followLog(
  kc: k8s.KubeConfig,
  ns: string,
  pod: string,
  container: string,
  opts: { timeoutMs?: number; tailLines?: number; timestamps?: boolean } = {},
): Promise<string> {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d) => text += d);
  const ended = new Promise<void>((r) => out.on("end", () => r()));
  const ctl = await new k8s.Log(kc).log(ns, pod, container, out, {
    follow: true,
    tailLines: opts.tailLines,
    timestamps: opts.timestamps,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      ctl.abort();
      rej(new Error(`log of ${pod}/${container} did not end; got ${JSON.stringify(text)}`));
    }, opts.timeoutMs ?? 15_000);
  });
  try {
    await Promise.race([ended, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return text;
}

/** A minimal pod running `sh -c script` (process mode resolves `sh` on the host). */
export function shPod(
  name: string,
  script: string,
  extra: { labels?: Record<string, string>; spec?: Partial<k8s.V1PodSpec> } = {},
): k8s.V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: extra.labels },
    spec: {
      restartPolicy: "Never",
      containers: [{ name: "main", image: "kube-sim/none:latest", command: ["sh", "-c", script] }],
      ...extra.spec,
    },
  };
}

/** Waits until a pod reaches a terminal phase (via the store) and returns it. */
export async function waitPhase(
  kube: KubeApi,
  name: string,
  phases: string[] = ["Succeeded", "Failed"],
  timeoutMs = 15_000,
): Promise<k8s.V1Pod> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const p = kube.store.get("pods", kube.namespace, name);
    if (p && phases.includes(p.status?.phase)) return p as k8s.V1Pod;
    await new Promise((r) => setTimeout(r, 25));
  }
  const p = kube.store.get("pods", kube.namespace, name);
  throw new Error(
    `pod ${name} did not reach ${phases.join("/")} within ${timeoutMs} ms: ` +
      JSON.stringify(p?.status ?? "gone"),
  );
}

/** The error body of a rejected client-node call, parsed as a Status. */
export function statusOf(err: unknown): { code: number; reason: string; message: string } {
  const e = err as { code?: number; body?: unknown };
  const body = typeof e.body === "string" ? JSON.parse(e.body) : e.body;
  return { code: e.code ?? body?.code, reason: body?.reason, message: body?.message };
}
