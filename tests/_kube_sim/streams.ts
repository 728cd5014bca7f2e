/**
 * The streaming answers of the Kubernetes test API server: `?watch=true` event streams and
 * `pods/log`.
 *
 * @module
 */

import { type KObj, notFound, resourceInfo, statusObject } from "./store.ts";
import { logStream } from "./logs.ts";
import { tableFor } from "./table.ts";
import { badRequest } from "./validate.ts";
import { type ApiContext, selectorsOf, selects, wantsTable, withKind } from "./resources.ts";

const WATCH_DEFAULT_TIMEOUT_S = 1800;
const BOOKMARK_INTERVAL_MS = 10_000;

export function podLog(
  ctx: ApiContext,
  ns: string,
  name: string,
  q: URLSearchParams,
): Response {
  const pod = ctx.store.get("pods", ns, name);
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
    ? ctx.kubelet.previousLogBuffer(pod.metadata.uid!, container)
    : ctx.kubelet.logBuffer(pod.metadata.uid!, container);
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
  }, ctx.streamsClosed);
  return new Response(stream, { headers: { "content-type": "text/plain" } });
}

export function watch(
  ctx: ApiContext,
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
  const drop = ctx.faults.takeWatchDrop();
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
        ctx.streamsClosed.removeEventListener("abort", close);
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
      ctx.streamsClosed.addEventListener("abort", close);
      if (!rvParam || rvParam === "0") {
        for (const o of ctx.store.list(resource, ns)) if (selects(sel, o)) send("ADDED", o);
      } else {
        const rv = Number(rvParam);
        const evs = Number.isFinite(rv) ? ctx.store.eventsSince(rv) : undefined;
        if (!evs) {
          send(
            "ERROR",
            statusObject(
              410,
              "Expired",
              `too old resource version: ${rvParam} (${ctx.store.oldestResumable})`,
            ),
          );
          close();
          return;
        }
        for (const ev of evs) deliver(ev);
      }
      if (closed) return;
      unsub = ctx.store.subscribe(deliver);
      timers.push(setTimeout(close, timeoutS * 1000));
      if (drop?.afterMs !== undefined) timers.push(setTimeout(close, drop.afterMs));
      if (bookmarks) {
        timers.push(setInterval(() => {
          send(
            "BOOKMARK",
            {
              kind: info.kind,
              apiVersion: "v1",
              metadata: { resourceVersion: String(ctx.store.resourceVersion) },
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
