/**
 * The kube parts of `submit`: `--dry-run --backend kube -o yaml` prints every Secret (value
 * replaced by a placeholder) and pod (with its volumes) the run would create, all valid
 * Kubernetes objects; cluster target selection (kubeconfig, $KUBECONFIG, in-cluster).
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { ConfigMap, Pod, Secret } from "kubernetes-models/v1";
import { ROOT, tempDir } from "../_helpers/mod.ts";
import { startKubeApiServer } from "../_kube_sim/api_server.ts";
import { runInProcess } from "../_helpers/cli.ts";
import { submit } from "../../lib/cli/mod.ts";
import {
  kubeTargetFor,
  runningInCluster,
  SERVICE_ACCOUNT_DIR,
} from "../../lib/executors/kube_cli.ts";
import {
  DEFAULT_DENO_IMAGE,
  HOP_JOBSPEC_FILE,
  HOP_TOKEN_FILE,
  RUN_ID_LABEL,
  SECRET_PLACEHOLDER,
} from "../../lib/podspec/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";

Deno.test("submit --dry-run --backend kube -o yaml: every object, valid, no secret value", async () => {
  const r = await runInProcess("submit", submit, [
    "--spec",
    `${ROOT}/examples/demo.jobspec.yaml`,
    "--dry-run",
    "--backend",
    "kube",
    "-o",
    "yaml",
    "--image",
    "quay.io/example/gangplank:1",
    "--serviceaccount",
    "builder",
    "--namespace",
    "builds",
    "--relay-address",
    "build-host.example.com:9000",
  ], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const doc = parse(r.stdout);
  assert.equal(doc.relay, "build-host.example.com:9000");
  const stages = doc.plan.groups.flatMap((g: { stages: unknown[] }) => g.stages);
  const res = doc.resources as { kind: string; metadata: { name: string; namespace?: string } }[];
  assert.equal(res.filter((o) => o.kind === "Pod").length, stages.length);
  assert.equal(res.filter((o) => o.kind === "Secret").length, 1);
  // Stock-image workers (the default): the bundle ConfigMap, and deno from the Deno image.
  assert.ok(res.filter((o) => o.kind === "ConfigMap").length >= 1);
  for (const o of res) {
    assert.equal(o.metadata.namespace, "builds");
    if (o.kind === "ConfigMap") {
      new ConfigMap(o as never).validate();
      continue;
    }
    if (o.kind === "Pod") {
      assert.equal((o as unknown as Pod).spec!.initContainers![0].image, DEFAULT_DENO_IMAGE);
      assert.equal((o as unknown as Pod).spec!.securityContext?.fsGroup, 1000);
      new Pod(o as never).validate();
      const spec = (o as unknown as Pod).spec!;
      assert.equal(spec.serviceAccountName, "builder");
      assert.equal(spec.containers[0].image, "quay.io/example/gangplank:1");
      assert.ok((spec.volumes ?? []).some((v) => v.name === "srv" && v.emptyDir));
    } else {
      new Secret(o as never).validate();
      assert.deepEqual((o as unknown as Secret).stringData, {
        COSA_RELAY_SECRET_KEY: SECRET_PLACEHOLDER,
      });
      assert.equal((o as unknown as Secret).data, undefined);
    }
  }
});

Deno.test("kubeTargetFor: --kubeconfig, $KUBECONFIG, in-cluster, default", () => {
  const yes = (p: string) => p === `${SERVICE_ACCOUNT_DIR}/token` || p === "/k/config";
  const no = () => false;
  assert.deepEqual(kubeTargetFor({ kubeconfig: "/k/config", namespace: "n" }, {}, yes), {
    target: { kind: "kubeconfig", path: "/k/config" },
    namespace: "n",
    inCluster: false,
  });
  assert.throws(() => kubeTargetFor({ kubeconfig: "/missing" }, {}, no), UsageError);
  assert.equal(runningInCluster({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, yes), true);
  assert.equal(runningInCluster({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, no), false);
  assert.equal(runningInCluster({}, yes), false);
  const ic = kubeTargetFor({ namespace: "ns" }, { KUBERNETES_SERVICE_HOST: "10.0.0.1" }, yes);
  assert.deepEqual(ic, { target: { kind: "in-cluster" }, namespace: "ns", inCluster: true });
  assert.deepEqual(kubeTargetFor({}, { KUBECONFIG: "/a:/b" }, no).target, {
    kind: "kubeconfig",
    path: "/a",
  });
  // ~/.kube/config is client-node's default; without it there is no configuration at all.
  const home = (p: string) => p === "/h/.kube/config";
  assert.deepEqual(kubeTargetFor({}, { HOME: "/h" }, home).target, { kind: "default" });
  assert.throws(() => kubeTargetFor({}, { HOME: "/h" }, no), UsageError);
  assert.throws(() => kubeTargetFor({}, {}, no), UsageError);
});

Deno.test("submit --backend kube from outside the cluster without a reachable relay: refused, nothing created", async () => {
  await using tmp = await tempDir("gp-kube-refuse-");
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  const cases: [string[], RegExp][] = [
    [[], /--relay-address HOST\[:PORT\].*--remote-kubeconfig.*-m\/--minio-config/],
    [["--relay-address", "127.0.0.1:9000"], /--relay-address 127\.0\.0\.1: a loopback address/],
    [["--relay-address", "localhost"], /--relay-address localhost: a loopback address/],
    [["--relay-address", "host:99999"], /--relay-address host:99999: port must be 1-65535/],
  ];
  for (const [extra, message] of cases) {
    for (const dryRun of [false, true]) {
      const r = await runInProcess("submit", submit, [
        "--spec",
        `${ROOT}/examples/demo.jobspec.yaml`,
        "--backend",
        "kube",
        "--kubeconfig",
        kube.kubeconfigPath,
        ...(dryRun ? ["--dry-run"] : []),
        ...extra,
      ], { cwd: tmp.path, timeoutMs: 120_000 });
      assert.equal(r.code, 2, `${extra} ${dryRun}: ${r.stdout}\n${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], message);
    }
  }
  // Nothing created: no work dir, no object in the cluster, not even a request that writes.
  assert.deepEqual([...Deno.readDirSync(tmp.path)].map((e) => e.name), []);
  assert.equal(kube.pods().length + kube.secrets({ labelSelector: RUN_ID_LABEL }).length, 0);
  assert.deepEqual(kube.requests.filter((q) => q.method !== "GET"), []);
});

Deno.test("submit --dry-run -o yaml --remote-kubeconfig: the hop pod and its JobSpec Secret, valid", async () => {
  await using tmp = await tempDir("gp-kube-hop-dry-");
  const kc = `${tmp.path}/remote.kubeconfig`;
  await Deno.writeTextFile(kc, "apiVersion: v1\nkind: Config\n");
  const r = await runInProcess("submit", submit, [
    "-s",
    `${ROOT}/examples/demo.jobspec.yaml`,
    "--remote-kubeconfig",
    kc,
    "--image",
    "quay.io/example/gangplank:1",
    "--serviceaccount",
    "builder",
    "--dry-run",
    "-o",
    "yaml",
  ], { cwd: tmp.path, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const doc = parse(r.stdout);
  assert.equal(doc.plan.backend, "kube");
  const res = doc.resources as { kind: string }[];
  assert.deepEqual(res.map((o) => o.kind), ["Secret", "Pod"]);
  const secret = new Secret(res[0] as never);
  secret.validate();
  assert.deepEqual(secret.stringData, {
    [HOP_JOBSPEC_FILE]: SECRET_PLACEHOLDER,
    [HOP_TOKEN_FILE]: SECRET_PLACEHOLDER,
  });
  const pod = new Pod(res[1] as never);
  pod.validate();
  assert.equal(pod.spec!.serviceAccountName, "builder");
  assert.equal(pod.spec!.securityContext?.fsGroup, 1000);
  assert.equal(pod.spec!.containers[0].image, "quay.io/example/gangplank:1");
  assert.ok(pod.spec!.containers[0].args!.includes("--backend"));
  assert.deepEqual([...Deno.readDirSync(tmp.path)].map((e) => e.name), ["remote.kubeconfig"]);
});
