/**
 * runPod and KubeClient against the Kubernetes test API server (process-mode kubelet): the wire
 * halves of what kube_faults_test.ts and run_pod_unit_test.ts prove on fake time. Logs in order
 * without a lost tail, exit codes, each fault switch's status decoded into the cluster's
 * reason with no pod left, watch drops and 410 Gone resumed, Retry-After read from real
 * answers, persistent API errors.
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { type KubeApi, startKubeApiServer } from "../_kube_sim/api_server.ts";
import { KubeApiError, KubeClient, runPod, type RunPodOptions } from "../../lib/kube/mod.ts";
import { WORKER_MAX_LINE_LENGTH } from "../../lib/log/mod.ts";

function shPod(name: string, script: string, init?: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { "test.gangplank/pod": name } },
    spec: {
      restartPolicy: "Never",
      ...(init
        ? { initContainers: [{ name: "init", image: "x", command: ["/bin/sh", "-c", init] }] }
        : {}),
      containers: [{ name: "main", image: "x", command: ["/bin/sh", "-c", script] }],
    },
  };
}

function client(kube: KubeApi, quick = true): KubeClient {
  return KubeClient.connect({
    target: { kind: "kubeconfig", path: kube.kubeconfigPath },
    retry: quick ? { attempts: 4, baseDelayMs: 50, maxDelayMs: 1500 } : undefined,
  });
}

async function run(
  kube: KubeApi,
  pod: V1Pod,
  over: Partial<RunPodOptions> = {},
  c = client(kube),
) {
  const lines: string[] = [];
  const t0 = Date.now();
  const out = await runPod(c, pod, {
    signal: AbortSignal.timeout(60_000),
    onLine: (l, container) => lines.push(`${container}|${l}`),
    timeoutMs: 30_000,
    unschedulableTimeoutMs: 1000,
    drainTimeoutMs: 5000,
    ...over,
  });
  return { out, lines, ms: Date.now() - t0 };
}

Deno.test("runPod: init then main logs in order, long lines, unterminated tail, exit code, pod deleted", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  const long = "x".repeat(200_000);
  const { out, lines } = await run(
    kube,
    shPod(
      "p1",
      `for i in $(seq 1 500); do echo "line $i"; done; head -c 200000 /dev/zero | tr '\\0' x; echo; printf 'tail-no-newline'; exit 3`,
      "echo init-1; echo init-2",
    ),
  );
  assert.deepEqual(out, { exitCode: 3 });
  assert.deepEqual(lines.slice(0, 2), ["init|init-1", "init|init-2"]);
  const main = lines.filter((l) => l.startsWith("main|")).map((l) => l.slice(5));
  // A 200 000-character line (a worker's summary line can be long) arrives whole: worker
  // streams are split only above WORKER_MAX_LINE_LENGTH (4 Mi).
  assert.ok(long.length < WORKER_MAX_LINE_LENGTH);
  assert.equal(main.length, 502);
  for (let i = 1; i <= 500; i++) assert.equal(main[i - 1], `line ${i}`);
  assert.equal(main[500], long);
  assert.equal(main[501], "tail-no-newline");
  assert.equal(kube.pods().length, 0, "pod deleted");
});

// Each fault's behaviour (reason, exit code, bounded time, pod and Secret deleted, no timer or
// stream left) is unit-tested on fake time in kube_faults_test.ts; here each fault's pod
// status comes over the wire once (client-node's decoding of what the API server sends), all
// five pods in one API server at the same time.
const FAULTS: {
  name: string;
  set: (k: KubeApi, pod: string) => void;
  reason: RegExp;
  script?: string;
}[] = [
  {
    name: "unschedulable",
    set: (k, pod) => k.setFault("unschedulable", { namePattern: `^${pod}$` }),
    reason: /^Unschedulable: /,
  },
  {
    name: "image pull error",
    set: (k, pod) => k.setFault("imagePullError", { namePattern: `^${pod}$` }),
    reason: /^(ErrImagePull|ImagePullBackOff): /,
  },
  {
    name: "eviction",
    set: (k, pod) => k.setFault("evict", { namePattern: `^${pod}$`, afterMs: 300 }),
    reason: /^Evicted: The node was low on resource: memory/,
    script: "echo started; sleep 30",
  },
  {
    name: "OOM kill",
    set: (k, pod) => k.setFault("oomKill", { namePattern: `^${pod}$`, afterMs: 300 }),
    reason: /^OOMKilled: /,
    script: "echo started; sleep 30",
  },
  {
    name: "external delete",
    set: (k, pod) => k.setFault("externalDelete", { namePattern: `^${pod}$`, afterMs: 300 }),
    reason: /^pod f-external-delete was deleted by someone else$/,
    script: "echo started; sleep 30",
  },
];

Deno.test("runPod faults over the wire: unschedulable, image pull, eviction, OOM, external delete → the cluster's reason, no pod", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  const name = (f: { name: string }) => `f-${f.name.replace(/ /g, "-").toLowerCase()}`;
  for (const f of FAULTS) f.set(kube, name(f));
  const results = await Promise.all(
    FAULTS.map((f) => run(kube, shPod(name(f), f.script ?? "echo hi"))),
  );
  for (const [i, { out, ms }] of results.entries()) {
    const f = FAULTS[i];
    assert.notEqual(out.exitCode, 0, f.name);
    assert.match(out.reason ?? "", f.reason, f.name);
    assert.ok(ms < 15_000, `${f.name}: took ${ms} ms`);
  }
  assert.equal(kube.pods().length, 0, "no pod left");
});

Deno.test("runPod: dropped watches are resumed; no event or log line lost", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  kube.setFault("watchDrop", { afterEvents: 1 });
  const { out, lines } = await run(
    kube,
    shPod("wd", "for i in $(seq 1 50); do echo l$i; sleep 0.01; done; exit 5", "echo i"),
  );
  assert.deepEqual(out, { exitCode: 5 });
  assert.equal(lines.filter((l) => l.startsWith("main|")).length, 50);
  const watches = kube.requests.filter((r) => r.query.includes("watch=true"));
  assert.ok(watches.length > 1, `watch reconnected (${watches.length} watches)`);
});

Deno.test("runPod: 429 bursts are retried (Retry-After honoured); persistent 500s fail with KubeApiError", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  kube.setFault("errorBurst", { count: 3, status: 429, retryAfterSeconds: 1, methods: ["POST"] });
  const t0 = Date.now();
  const { out } = await run(kube, shPod("burst", "echo ok"));
  assert.deepEqual(out, { exitCode: 0 });
  assert.ok(Date.now() - t0 >= 1000, "Retry-After waited");
  assert.equal(kube.requests.filter((r) => r.status === 429).length, 3);

  kube.setFault("errorBurst", { count: 1000, status: 500, methods: ["POST"] });
  await assert.rejects(
    () => run(kube, shPod("burst2", "echo ok")),
    (e) => e instanceof KubeApiError && e.status === 500 && e.attempts === 4,
  );
  kube.setFault("errorBurst", undefined);
  assert.equal(kube.pods().length, 0);
});

Deno.test("runPod: a resume answered 410 Gone relists and carries on", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" }, historySize: 1 });
  kube.setFault("watchDrop", { afterEvents: 1 });
  const { out, lines } = await run(
    kube,
    shPod("gone", "for i in $(seq 1 20); do echo g$i; sleep 0.02; done; exit 6", "echo i"),
  );
  assert.deepEqual(out, { exitCode: 6 });
  assert.equal(lines.filter((l) => l.startsWith("main|")).length, 20);
  assert.ok(
    kube.requests.some((r) => r.method === "GET" && /\/pods\/gone$/.test(r.path)),
    "the pod was re-read after 410",
  );
});
