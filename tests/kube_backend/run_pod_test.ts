/**
 * runPod and KubeClient against the Kubernetes test API server (process-mode kubelet): logs in
 * order without a lost tail, exit codes, every fault switch ending with the cluster's reason
 * within a bounded time and no pod left, watch drops, API error bursts, abort.
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

Deno.test("runPod: success is exit 0 with no reason", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  const { out, lines } = await run(kube, shPod("ok", "echo done"));
  assert.deepEqual(out, { exitCode: 0 });
  assert.deepEqual(lines, ["main|done"]);
  assert.equal(kube.pods().length, 0);
});

Deno.test("runPod: a failing init container fails the pod with its code", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  const { out, lines } = await run(kube, shPod("initfail", "echo never", "echo bad; exit 7"));
  assert.equal(out.exitCode, 7);
  assert.match(out.reason ?? "", /init container init failed/);
  assert.ok(lines.includes("init|bad"));
  assert.ok(!lines.includes("main|never"));
});

const FAULTS: {
  name: string;
  set: (k: KubeApi) => void;
  reason: RegExp;
  script?: string;
}[] = [
  {
    name: "unschedulable",
    set: (k) => k.setFault("unschedulable", true),
    reason: /Unschedulable/,
  },
  {
    name: "image pull error",
    set: (k) => k.setFault("imagePullError", true),
    reason: /ErrImagePull|ImagePullBackOff/,
  },
  {
    name: "eviction",
    set: (k) => k.setFault("evict", { afterMs: 300 }),
    reason: /Evicted/,
    script: "echo started; sleep 30",
  },
  {
    name: "OOM kill",
    set: (k) => k.setFault("oomKill", { afterMs: 300 }),
    reason: /OOMKilled/,
    script: "echo started; sleep 30",
  },
  {
    name: "external delete",
    set: (k) => k.setFault("externalDelete", { afterMs: 300 }),
    reason: /deleted by someone else/,
    script: "echo started; sleep 30",
  },
];

for (const f of FAULTS) {
  Deno.test(`runPod fault: ${f.name} → non-zero, the cluster's reason, bounded time, no pod`, async () => {
    await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
    f.set(kube);
    const { out, ms } = await run(
      kube,
      shPod(`f-${f.name.replace(/ /g, "-").toLowerCase()}`, f.script ?? "echo hi"),
    );
    assert.notEqual(out.exitCode, 0);
    assert.match(out.reason ?? "", f.reason);
    assert.ok(ms < 15_000, `took ${ms} ms`);
    assert.equal(kube.pods().length, 0, "no pod left");
  });
}

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

Deno.test("runPod: abort deletes the pod and rejects with the abort reason", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  const ctl = new AbortController();
  const p = run(kube, shPod("ab", "echo started; sleep 30"), { signal: ctl.signal });
  const t = setInterval(() => {
    if (kube.podLog("default", "ab", "main")?.includes("started")) ctl.abort(new Error("stop"));
  }, 50);
  try {
    await assert.rejects(p, /stop/);
  } finally {
    clearInterval(t);
  }
  assert.equal(kube.pods().length, 0);
});

Deno.test("runPod: timeout ends with a reason", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  const { out, ms } = await run(kube, shPod("slow", "sleep 30"), { timeoutMs: 800 });
  assert.equal(out.exitCode, -1);
  assert.match(out.reason ?? "", /did not complete work in time/);
  assert.ok(ms < 10_000);
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
