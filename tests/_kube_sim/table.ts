/**
 * Table output (`Accept: application/json;as=Table`) of the Kubernetes test API server, as
 * `kubectl get` asks for it, with kubectl's STATUS column for pods.
 *
 * @module
 */

import { type KObj, resourceInfo } from "./store.ts";

function age(ts: string | undefined): string {
  if (!ts) return "<unknown>";
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** The STATUS column of `kubectl get pods`, computed as kubectl's printer does. */
export function podStatusReason(pod: KObj): string {
  const st = pod.status ?? {};
  let reason: string = st.reason ?? st.phase ?? "Unknown";
  const inits = (st.initContainerStatuses ?? []) as KObj[];
  const nInit = (pod.spec?.initContainers ?? []).length;
  let initializing = false;
  for (const [i, c] of inits.entries()) {
    const s = c.state ?? {};
    if (s.terminated && s.terminated.exitCode === 0) continue;
    if (s.terminated) {
      reason = s.terminated.reason
        ? `Init:${s.terminated.reason}`
        : `Init:ExitCode:${s.terminated.exitCode}`;
    } else if (s.waiting?.reason && s.waiting.reason !== "PodInitializing") {
      reason = `Init:${s.waiting.reason}`;
    } else reason = `Init:${i}/${nInit}`;
    initializing = true;
    break;
  }
  if (!initializing) {
    let hasRunning = false;
    for (const c of [...((st.containerStatuses ?? []) as KObj[])].reverse()) {
      const s = c.state ?? {};
      if (s.waiting?.reason) reason = s.waiting.reason;
      else if (s.terminated?.reason) reason = s.terminated.reason;
      else if (s.terminated) {
        reason = s.terminated.signal
          ? `Signal:${s.terminated.signal}`
          : `ExitCode:${s.terminated.exitCode}`;
      } else if (s.running && c.ready) hasRunning = true;
    }
    if (reason === "Completed" && hasRunning) reason = "Running";
    if (st.reason) reason = st.reason;
  }
  if (pod.metadata.deletionTimestamp) reason = "Terminating";
  return reason;
}

/** The Table object of `kubectl get <resource>` for these objects. */
export function tableFor(resource: string, objs: KObj[], rv: string, includeObject: string): KObj {
  const col = (name: string, type: string, description: string, priority = 0, format = "") => ({
    name,
    type,
    format,
    description,
    priority,
  });
  let columns = [
    col("Name", "string", "Name must be unique within a namespace.", 0, "name"),
  ];
  let cells: (o: KObj) => unknown[] = (o) => [o.metadata.name];
  if (resource === "pods") {
    columns = [
      col("Name", "string", "Name must be unique within a namespace.", 0, "name"),
      col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
      col("Status", "string", "The aggregate status of the containers in this pod."),
      col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted.",
      ),
      col(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
      ),
      col("IP", "string", "IP address allocated to the pod.", 1),
      col("Node", "string", "Name of the node this pod is assigned to.", 1),
    ];
    cells = (o) => {
      const cs = (o.status?.containerStatuses ?? []) as KObj[];
      const total = (o.spec?.containers ?? []).length;
      const ready = cs.filter((c) => c.ready).length;
      const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
      return [
        o.metadata.name,
        `${ready}/${total}`,
        podStatusReason(o),
        String(restarts),
        age(o.metadata.creationTimestamp),
        o.status?.podIP ?? "<none>",
        o.spec?.nodeName ?? "<none>",
      ];
    };
  } else if (resource === "secrets") {
    columns.push(
      col("Type", "string", "The type of the secret"),
      col("Data", "string", "The number of entries in the data"),
    );
    cells = (o) => [o.metadata.name, o.type ?? "Opaque", Object.keys(o.data ?? {}).length];
  } else if (resource === "configmaps") {
    columns.push(col("Data", "string", "The number of entries in the data"));
    cells = (o) => [
      o.metadata.name,
      Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length,
    ];
  } else if (resource === "namespaces") {
    columns.push(col("Status", "string", "The status of the namespace"));
    cells = (o) => [o.metadata.name, o.status?.phase ?? "Active"];
  } else if (resource === "events") {
    columns = [
      col("Last Seen", "string", "Time of the last occurrence"),
      col("Type", "string", "Type of this event (Normal, Warning)"),
      col("Reason", "string", "Why the action was taken"),
      col("Object", "string", "The object this event is about"),
      col("Message", "string", "A human-readable description of the status of this operation"),
    ];
    cells = (o) => [
      age(o.lastTimestamp ?? o.metadata.creationTimestamp),
      o.type ?? "",
      o.reason ?? "",
      `${String(o.involvedObject?.kind ?? "").toLowerCase()}/${o.involvedObject?.name ?? ""}`,
      o.message ?? "",
    ];
  } else if (resource === "nodes") {
    columns.push(
      col("Status", "string", "The status of the node"),
      col("Roles", "string", "The roles of the node"),
      col("Version", "string", "Kubelet Version reported by the node."),
    );
    cells = (o) => [o.metadata.name, "Ready", "<none>", o.status?.nodeInfo?.kubeletVersion ?? ""];
  }
  columns.push(
    ...(resource === "pods" || resource === "events" ? [] : [
      col(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
      ),
    ]),
  );
  const fullCells = resource === "pods" || resource === "events"
    ? cells
    : (o: KObj) => [...cells(o), age(o.metadata.creationTimestamp)];
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion: rv } as KObj["metadata"],
    columnDefinitions: columns,
    rows: objs.map((o) => ({
      cells: fullCells(o),
      object: includeObject === "None"
        ? undefined
        : includeObject === "Object"
        ? { kind: resourceInfo(resource)?.kind, apiVersion: "v1", ...o }
        : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}
