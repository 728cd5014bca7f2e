/**
 * Fault switches of the Kubernetes test API server, each observed through client-node the
 * way the kube backend sees them: unschedulable, image pull errors, eviction, OOM kill,
 * external deletion, dropped watches, 429/500 bursts, plus the scheduler's own resource
 * checks and activeDeadlineSeconds.
 */

import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { startKubeApiServer } from "./api_server.ts";
import { clients, record, shPod, statusOf, waitPhase } from "./_client.ts";
import { waitFor } from "../_helpers/mod.ts";

const NS = "default";
const process = { mode: "process" as const };

async function endedWithin(p: Promise<unknown>, ms: number): Promise<unknown> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise((_, rej) =>
        t = setTimeout(() => rej(new Error(`watch still open after ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(t);
  }
}

function cond(pod: k8s.V1Pod | undefined, type: string) {
  return pod?.status?.conditions?.find((c) => c.type === type);
}

Deno.test("fault unschedulable: matching pods stay Pending (PodScheduled=False Unschedulable) until switched off", async () => {
  await using kube = await startKubeApiServer({
    kubelet: process,
    faults: { unschedulable: { labelSelector: "run=doomed" } },
  });
  const { core } = clients(kube);
  await core.createNamespacedPod({
    namespace: NS,
    body: shPod("stuck", "echo hi", { labels: { run: "doomed" } }),
  });
  await core.createNamespacedPod({
    namespace: NS,
    body: shPod("fine", "echo hi", { labels: { run: "other" } }),
  });
  assert.equal((await waitPhase(kube, "fine")).status?.phase, "Succeeded");
  const c = await waitFor(
    () => cond(kube.store.get("pods", NS, "stuck") as k8s.V1Pod, "PodScheduled"),
    {
      what: "PodScheduled condition",
    },
  );
  assert.equal(c.status, "False");
  assert.equal(c.reason, "Unschedulable");
  assert.match(c.message!, /^0\/1 nodes are available: /);
  const pod = await core.readNamespacedPod({ namespace: NS, name: "stuck" });
  assert.equal(pod.status?.phase, "Pending");
  assert.equal(pod.spec?.nodeName, undefined);
  kube.setFault("unschedulable", undefined);
  assert.equal((await waitPhase(kube, "stuck")).status?.phase, "Succeeded");
});

Deno.test("scheduler: a kvm request needs a node offering devices.kubevirt.io/kvm", async () => {
  const kvmPod = shPod("kvm", "echo hi");
  kvmPod.spec!.containers[0].resources = {
    requests: { cpu: "2", memory: "4Gi", "devices.kubevirt.io/kvm": "1" },
    limits: { cpu: "2", memory: "4Gi", "devices.kubevirt.io/kvm": "1" },
  };
  {
    await using kube = await startKubeApiServer({ kubelet: process });
    const { core } = clients(kube);
    await core.createNamespacedPod({ namespace: NS, body: kvmPod });
    const c = await waitFor(
      () => cond(kube.store.get("pods", NS, "kvm") as k8s.V1Pod, "PodScheduled"),
      {
        what: "PodScheduled",
      },
    );
    assert.equal(c.reason, "Unschedulable");
    assert.match(c.message!, /Insufficient devices\.kubevirt\.io\/kvm/);
  }
  {
    await using kube = await startKubeApiServer({ kubelet: { ...process, kvm: true } });
    const { core } = clients(kube);
    const node = await core.readNode({ name: kube.kubelet.nodeName });
    assert.equal(node.status?.allocatable?.["devices.kubevirt.io/kvm"], "1k");
    await core.createNamespacedPod({ namespace: NS, body: kvmPod });
    assert.equal((await waitPhase(kube, "kvm")).status?.phase, "Succeeded");
  }
});

Deno.test("fault imagePullError: waiting ErrImagePull then ImagePullBackOff with a message", async () => {
  await using kube = await startKubeApiServer({
    kubelet: process,
    faults: { imagePullError: { namePattern: /^pull-/ } },
  });
  const { kc, core } = clients(kube);
  await using w = await record(kc, `/api/v1/namespaces/${NS}/pods`, {
    fieldSelector: "metadata.name=pull-me",
  });
  const body = shPod("pull-me", "echo hi");
  body.spec!.containers[0].image = "registry.example/nope:1";
  await core.createNamespacedPod({ namespace: NS, body });
  const reasons = () =>
    w.events.map((e) => e.object.status?.containerStatuses?.[0]?.state?.waiting?.reason).filter(
      Boolean,
    );
  await waitFor(() => reasons().includes("ImagePullBackOff"), { what: "ImagePullBackOff" });
  assert.equal(reasons().find((r) => r !== "ContainerCreating"), "ErrImagePull");
  const waiting = w.events.map((e) => e.object.status?.containerStatuses?.[0]?.state?.waiting)
    .find((x) => x?.reason === "ImagePullBackOff");
  assert.match(waiting!.message!, /Back-off pulling image "registry\.example\/nope:1"/);
  assert.equal(kube.store.get("pods", NS, "pull-me")?.status?.phase, "Pending");
  await core.deleteNamespacedPod({ namespace: NS, name: "pull-me" });
  await waitFor(() => kube.pods().length === 0, { what: "pod gone" });
});

Deno.test("fault evict: a running pod ends Failed with reason Evicted", async () => {
  await using kube = await startKubeApiServer({
    kubelet: process,
    faults: { evict: { afterMs: 200 } },
  });
  const { core } = clients(kube);
  const t0 = Date.now();
  await core.createNamespacedPod({ namespace: NS, body: shPod("ev", "sleep 30") });
  const pod = await waitPhase(kube, "ev", ["Failed", "Succeeded"], 10_000);
  assert.ok(Date.now() - t0 < 10_000);
  assert.equal(pod.status?.phase, "Failed");
  assert.equal(pod.status?.reason, "Evicted");
  assert.match(pod.status?.message ?? "", /^The node was low on resource: memory\./);
  assert.equal(cond(pod, "DisruptionTarget")?.status, "True");
});

Deno.test("fault oomKill: container terminated OOMKilled with exit code 137, pod Failed", async () => {
  await using kube = await startKubeApiServer({
    kubelet: process,
    faults: { oomKill: { labelSelector: "mem=hungry", afterMs: 100 } },
  });
  const { core } = clients(kube);
  await core.createNamespacedPod({
    namespace: NS,
    body: shPod("oom", "sleep 30", { labels: { mem: "hungry" } }),
  });
  const pod = await waitPhase(kube, "oom");
  assert.equal(pod.status?.phase, "Failed");
  const t = pod.status?.containerStatuses?.[0].state?.terminated;
  assert.equal(t?.reason, "OOMKilled");
  assert.equal(t?.exitCode, 137);
});

Deno.test("fault externalDelete: the pod is deleted by someone else after it starts running", async () => {
  await using kube = await startKubeApiServer({
    kubelet: process,
    faults: { externalDelete: { namePattern: "victim", afterMs: 100 } },
  });
  const { kc, core } = clients(kube);
  await using w = await record(kc, `/api/v1/namespaces/${NS}/pods`);
  await core.createNamespacedPod({ namespace: NS, body: shPod("victim", "sleep 30") });
  await waitFor(() => w.events.some((e) => e.type === "DELETED"), {
    what: "DELETED",
    timeoutMs: 10_000,
  });
  assert.ok(w.events.some((e) => e.object.status?.phase === "Running"));
  await assert.rejects(
    core.readNamespacedPod({ namespace: NS, name: "victim" }),
    (e) => statusOf(e).code === 404,
  );
});

Deno.test("fault watchDrop: watch streams end after N events; resuming from the last resourceVersion loses nothing", async () => {
  await using kube = await startKubeApiServer({
    kubelet: process,
    faults: { watchDrop: { afterEvents: 2 } },
  });
  const { kc, core } = clients(kube);
  const names = ["a", "b", "c", "d", "e", "f"];
  for (const n of names) {
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: n } } });
  }
  const seen: string[] = [];
  let rv = "1";
  for (let i = 0; i < 10 && seen.length < names.length; i++) {
    const w = await record(kc, `/api/v1/namespaces/${NS}/configmaps`, { resourceVersion: rv });
    assert.equal(await endedWithin(w.ended, 5000), null, "the server closed the stream");
    assert.equal(w.events.length, 2);
    for (const e of w.events) {
      seen.push(e.object.metadata!.name!);
      rv = e.object.metadata!.resourceVersion!;
    }
  }
  assert.deepEqual(seen, names);
  // afterMs drops an idle watch too
  kube.setFault("watchDrop", { afterMs: 150 });
  const t0 = Date.now();
  const idle = await record(kc, `/api/v1/namespaces/${NS}/pods`, { resourceVersion: rv });
  assert.equal(await endedWithin(idle.ended, 5000), null);
  assert.ok(Date.now() - t0 < 5000);
});

Deno.test("fault errorBurst: the next N requests answer 429 with Retry-After (or 500), then normal", async () => {
  await using kube = await startKubeApiServer({
    kubelet: process,
    faults: { errorBurst: { count: 2, status: 429, retryAfterSeconds: 2 } },
  });
  const { core } = clients(kube);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(core.listNamespacedPod({ namespace: NS }), (e) => {
      const s = statusOf(e);
      assert.equal(s.code, 429);
      assert.equal(s.reason, "TooManyRequests");
      assert.equal((e as { headers?: Record<string, string> }).headers?.["retry-after"], "2");
      return true;
    });
  }
  assert.equal((await core.listNamespacedPod({ namespace: NS })).items.length, 0);
  kube.setFault("errorBurst", { count: 1, status: 500, methods: ["POST"] });
  await core.listNamespacedPod({ namespace: NS }); // GETs unaffected
  await assert.rejects(
    core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "s" } } }),
    (e) => statusOf(e).code === 500 && statusOf(e).reason === "InternalError",
  );
  await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "s" } } });
  assert.equal(kube.secrets().length, 1);
});

Deno.test("activeDeadlineSeconds: the pod fails with reason DeadlineExceeded", async () => {
  await using kube = await startKubeApiServer({ kubelet: process });
  const { core } = clients(kube);
  await core.createNamespacedPod({
    namespace: NS,
    body: shPod("slow", "sleep 30", { spec: { activeDeadlineSeconds: 1 } }),
  });
  const pod = await waitPhase(kube, "slow", ["Failed", "Succeeded"], 10_000);
  assert.equal(pod.status?.phase, "Failed");
  assert.equal(pod.status?.reason, "DeadlineExceeded");
});

Deno.test("watch timeoutSeconds: the server ends the stream cleanly after the timeout", async () => {
  await using kube = await startKubeApiServer({ kubelet: process });
  const { kc } = clients(kube);
  const t0 = Date.now();
  const w = await record(kc, `/api/v1/namespaces/${NS}/pods`, { timeoutSeconds: 1 });
  assert.equal(await endedWithin(w.ended, 8000), null);
  assert.ok(Date.now() - t0 >= 900, "not before the timeout");
});
