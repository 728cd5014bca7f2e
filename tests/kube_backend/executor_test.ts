/**
 * KubeExecutor unit tests with a fake KubeOps at the seam: OpenShift 3.11 detection, KVM and
 * architecture from nodes, forbidden node listing, the per-run Secret (created once, deleted on
 * dispose), relay endpoint, cleanup by label, and the pods it creates (schema-valid, no value).
 */
import assert from "node:assert/strict";
import { Pod } from "kubernetes-models/v1";
import type { V1Node, V1Pod, V1Secret } from "@kubernetes/client-node";
import { KubeApiError, type KubeOps, type PodEvent } from "../../lib/kube/mod.ts";
import { KubeExecutor } from "../../lib/executors/kube.ts";
import { KVM_RESOURCE, RUN_ID_LABEL, runSelector } from "../../lib/podspec/mod.ts";
import { SECRET_LABEL } from "../../lib/secrets/mod.ts";

interface FakeOpts {
  version?: { major: string; minor: string };
  nodes?: V1Node[] | "forbidden";
  labelled?: V1Secret[];
}

function fake(o: FakeOpts = {}) {
  const created: { pods: V1Pod[]; secrets: V1Secret[] } = { pods: [], secrets: [] };
  const deleted: { pods: string[]; secrets: string[] } = { pods: [], secrets: [] };
  const live = new Map<string, V1Pod>();
  const liveSecrets = new Map<string, V1Secret>();
  const ops: KubeOps = {
    namespace: "ns",
    serverVersion: () =>
      Promise.resolve({ ...(o.version ?? { major: "1", minor: "30" }) } as never),
    listNodes: () =>
      o.nodes === "forbidden"
        ? Promise.reject(
          new KubeApiError({
            operation: "list nodes",
            status: 403,
            reason: "Forbidden",
            detail: "no",
          }),
        )
        : Promise.resolve(o.nodes ?? []),
    listSecretMetadata: (sel: string) =>
      Promise.resolve(
        sel === SECRET_LABEL
          ? (o.labelled ?? [])
          : [...liveSecrets.values()].filter((s) =>
            sel.startsWith("app.kubernetes.io/managed-by") && s.metadata?.labels?.[RUN_ID_LABEL]
          ),
      ),
    listConfigMapMetadata: () => Promise.resolve([]),
    createSecret: (s: V1Secret) => {
      created.secrets.push(structuredClone(s));
      liveSecrets.set(s.metadata!.name!, s);
      return Promise.resolve({ metadata: s.metadata });
    },
    deleteSecret: (name: string) => {
      deleted.secrets.push(name);
      return Promise.resolve(liveSecrets.delete(name));
    },
    createPod: (p: V1Pod) => {
      created.pods.push(structuredClone(p));
      const pod = structuredClone(p);
      pod.metadata!.resourceVersion = "1";
      live.set(p.metadata!.name!, pod);
      return Promise.resolve(pod);
    },
    readPod: (name: string) => Promise.resolve(live.get(name)),
    deletePod: (name: string) => {
      deleted.pods.push(name);
      return Promise.resolve(live.delete(name));
    },
    listPods: () => Promise.resolve([...live.values()]),
    async *watchPod(name: string): AsyncGenerator<PodEvent> {
      const p = structuredClone(live.get(name)!);
      p.status = {
        phase: "Succeeded",
        containerStatuses: [{
          name: "worker",
          state: { terminated: { exitCode: 0 } },
        }] as never,
      };
      yield { type: "MODIFIED", pod: p };
    },
    streamLog: (_pod: string, _c: string, onLine: (l: string) => void) => {
      onLine("hello");
      return Promise.resolve({ lines: 1, partial: "" });
    },
  } as unknown as KubeOps;
  return { ops, created, deleted, live, liveSecrets };
}

const node = (arch: string, kvm?: string, unschedulable = false): V1Node => ({
  metadata: { name: `n-${arch}`, labels: { "kubernetes.io/arch": arch } },
  spec: { unschedulable },
  status: kvm ? { allocatable: { [KVM_RESOURCE]: kvm } } : {},
});

const launch = (stageIndex: number, secret = "s3cr3t-value-1234567890") => ({
  runId: "run-1",
  stageId: `stage-${stageIndex}`,
  stageIndex,
  env: { COSA_WORK_POD_JSON: "{}" },
  secretEnv: { COSA_RELAY_SECRET_KEY: secret },
  onLine: () => {},
  signal: AbortSignal.timeout(10_000),
});

Deno.test("KubeExecutor: OpenShift 3.11 → privileged pods; KVM and arch from nodes", async () => {
  const f = fake({
    version: { major: "1", minor: "11+" },
    nodes: [node("arm64", "1k"), node("arm64"), node("amd64", undefined, true)],
  });
  await using exec = new KubeExecutor({ client: f.ops, image: "img", serviceAccount: "sa" });
  const signal = AbortSignal.timeout(5000);
  const ep = await exec.prepare({ host: "10.0.0.5", port: 9000 }, { runId: "run-1", signal });
  assert.deepEqual(ep, { host: "10.0.0.5", port: 9000 });
  assert.equal(await exec.arch({ signal }), "aarch64");
  assert.deepEqual(await exec.runStage(launch(0)), { exitCode: 0 });
  const pod = f.created.pods[0];
  new Pod(pod as never).validate();
  assert.equal(pod.spec!.containers[0].securityContext?.privileged, true);
  assert.equal(pod.spec!.containers[0].resources?.limits?.[KVM_RESOURCE], "1");
  assert.equal(pod.spec!.serviceAccountName, "sa");
  assert.deepEqual(f.deleted.pods, [pod.metadata!.name]);
});

Deno.test("KubeExecutor: one Secret per distinct secret env, values only there; deleted when its last stage ends", async () => {
  const f = fake({ nodes: "forbidden" });
  const secret = "s3cr3t-value-1234567890";
  {
    await using exec = new KubeExecutor({ client: f.ops, image: "img", relayHost: "10.1.2.3" });
    const signal = AbortSignal.timeout(5000);
    const ep = await exec.prepare({ host: "127.0.0.1", port: 9000 }, { runId: "run-1", signal });
    assert.deepEqual(ep, { host: "10.1.2.3", port: 9000 });
    assert.ok(["x86_64", "aarch64"].includes(await exec.arch({ signal })));
    await Promise.all([
      exec.runStage(launch(0)),
      exec.runStage(launch(1)),
      exec.runStage(launch(2)),
    ]);
    assert.equal(f.created.secrets.length, 1, "created once");
    assert.equal(f.created.pods.length, 3);
    for (const p of f.created.pods) {
      new Pod(p as never).validate();
      assert.equal(
        p.spec!.containers[0].securityContext,
        undefined,
        "k8s/OpenShift 4: no privileges",
      );
      assert.equal(p.spec!.containers[0].resources?.limits?.[KVM_RESOURCE], undefined);
      const text = JSON.stringify(p);
      assert.ok(!text.includes(secret) && !text.includes(btoa(secret)));
    }
    // The three stages shared it; it went when the last of them ended, before dispose.
    assert.deepEqual(f.deleted.secrets, [f.created.secrets[0].metadata!.name]);
    // Per-stage credentials: each stage its own Secret, gone when that stage ends.
    await exec.runStage(launch(3, "stage-3-credential-abcdef"));
    assert.equal(f.created.secrets.length, 2);
    assert.equal(
      atob(f.created.secrets[1].data!.COSA_RELAY_SECRET_KEY),
      "stage-3-credential-abcdef",
    );
    assert.deepEqual(f.deleted.secrets, f.created.secrets.map((s) => s.metadata!.name));
    // The pod gets the key as a file from a volume, never an env var.
    const p3 = f.created.pods[3];
    const env = p3.spec!.containers[0].env!;
    assert.ok(!env.some((e) => e.name === "COSA_RELAY_SECRET_KEY"));
    assert.ok(env.some((e) => e.name === "COSA_RELAY_SECRET_FILE"));
    assert.ok(
      p3.spec!.volumes!.some((v) => v.secret?.secretName === f.created.secrets[1].metadata!.name),
    );
  }
  assert.equal(f.deleted.secrets.length, 2, "nothing left for dispose");
  assert.equal(atob(f.created.secrets[0].data!.COSA_RELAY_SECRET_KEY), secret);
});

Deno.test("KubeExecutor: labelled Secrets are mapped into worker pods by reference", async () => {
  const f = fake({
    labelled: [{
      metadata: { name: "aws-creds", labels: { [SECRET_LABEL]: "aws" } },
      data: { aws_access_key_id: "", config: "" },
    }],
  });
  const logs: string[] = [];
  await using exec = new KubeExecutor({ client: f.ops, image: "img", log: (m) => logs.push(m) });
  await exec.prepare({ host: "h", port: 1 }, { runId: "run-1", signal: AbortSignal.timeout(5000) });
  await exec.runStage(launch(0));
  const env = f.created.pods[0].spec!.containers[0].env!;
  assert.deepEqual(env.find((e) => e.name === "AWS_ACCESS_KEY_ID")?.valueFrom, {
    secretKeyRef: { name: "aws-creds", key: "aws_access_key_id" },
  });
  assert.equal(env.find((e) => e.name === "AWS_CONFIG_FILE")?.value, "/srv/.aws/config");
  assert.ok(logs.some((l) => l.includes("aws-creds")));
});

Deno.test("KubeExecutor.cleanup (cleanupKube) deletes labelled pods and Secrets", async () => {
  const f = fake();
  const exec = new KubeExecutor({ client: f.ops, image: "img" });
  await exec.prepare({ host: "h", port: 1 }, { runId: "run-1", signal: AbortSignal.timeout(5000) });
  // Leave a pod behind as a killed coordinator would.
  f.live.set("gp-left-w0-x", {
    metadata: { name: "gp-left-w0-x", labels: { [RUN_ID_LABEL]: "x" } },
  });
  // ... and its stage's Secret.
  await exec.runStage({
    ...launch(0),
    signal: AbortSignal.abort(),
  }).catch(() => {});
  f.liveSecrets.set("gp-left-secret", {
    metadata: { name: "gp-left-secret", labels: { [RUN_ID_LABEL]: "x" } },
  });
  const r = await exec.cleanup({ signal: AbortSignal.timeout(5000) });
  assert.deepEqual(r.pods, ["gp-left-w0-x"]);
  assert.equal(r.secrets.length, 1);
  assert.ok(runSelector().includes(RUN_ID_LABEL));
  await exec[Symbol.asyncDispose]();
});

Deno.test("KubeExecutor in a cluster: relay at this pod's IP, its image and service account", async () => {
  const f = fake();
  f.live.set("coordinator-abc", {
    metadata: { name: "coordinator-abc" },
    spec: {
      serviceAccountName: "builder",
      containers: [
        { name: "proxy", image: "registry/envoy:1" },
        { name: "main", image: "quay.io/coreos-assembler/coreos-assembler:v1" },
      ],
    },
    status: { podIP: "10.9.8.7" },
  });
  await using exec = new KubeExecutor({ client: f.ops, selfPod: "coordinator-abc" });
  const ep = await exec.prepare({ host: "0.0.0.0", port: 9000 }, {
    runId: "run-1",
    signal: AbortSignal.timeout(5000),
  });
  assert.deepEqual(ep, { host: "10.9.8.7", port: 9000 });
  await exec.runStage(launch(0));
  const pod = f.created.pods[0];
  assert.equal(pod.spec!.containers[0].image, "quay.io/coreos-assembler/coreos-assembler:v1");
  assert.equal(pod.spec!.serviceAccountName, "builder");
  // An explicit --image / POD_IP win.
  const g = fake();
  g.live.set("me", { metadata: { name: "me" }, spec: { containers: [{ name: "c", image: "x" }] } });
  await using e2 = new KubeExecutor({
    client: g.ops,
    selfPod: "me",
    image: "mine",
    relayHost: "1.2.3.4",
  });
  assert.deepEqual(
    await e2.prepare({ host: "0.0.0.0", port: 1 }, {
      runId: "r",
      signal: AbortSignal.timeout(5000),
    }),
    { host: "1.2.3.4", port: 1 },
  );
  await e2.runStage(launch(0));
  assert.equal(g.created.pods[0].spec!.containers[0].image, "mine");
});
