/**
 * End to end, kube backend: `submit --backend kube` as a subprocess against the Kubernetes test
 * API server, whose simulated kubelet runs the worker pods in podman with the worker test
 * image. The demo JobSpec yields the same builds/ tree as the local backend; failure faults end
 * the run non-zero with the cluster's reason, in bounded time, leaving no pod or Secret;
 * no secret value appears in any object the run created or in its output.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ROOT, runScript, tempDir, waitFor } from "../_helpers/mod.ts";
import { podmanMissing } from "../_helpers/podman.ts";
import { assertSameBuilds, scriptEnv, spawnScript, within } from "../e2e/_podman_helpers.ts";
import { type KObj, type KubeApi, startKubeApiServer } from "../_kube_sim/api_server.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/mod.ts";
import { ensureKubeImages, kubeSubmitArgs } from "./_kube_run.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/kube_backend/e2e_test.ts: ${missing}`);

const ONE_STAGE = `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: only
    execution_order: 1
    commands: ["echo stage-started; sleep 30"]
`;

/** Records every version of every object the server holds while a run goes on. */
function recorder(kube: KubeApi) {
  const seen: KObj[] = [];
  const t = setInterval(() => {
    for (const r of ["pods", "secrets", "configmaps", "events"]) seen.push(...kube.list(r));
  }, 50);
  return {
    seen,
    stop() {
      clearInterval(t);
      for (const r of ["pods", "secrets", "configmaps", "events"]) seen.push(...kube.list(r));
    },
  };
}

function gangplankObjects(kube: KubeApi): KObj[] {
  return [
    ...kube.pods({ labelSelector: RUN_ID_LABEL }),
    ...kube.secrets({
      labelSelector: RUN_ID_LABEL,
    }),
  ];
}

async function submitKube(kube: KubeApi, args: string[], cwd: string, timeoutMs = 240_000) {
  return await runScript("submit.ts", kubeSubmitArgs(kube, ...args), {
    env: scriptEnv(),
    cwd,
    timeoutMs,
  });
}

Deno.test({
  name: "kube e2e: demo JobSpec matches the local backend; no secret value anywhere",
  ignore: missing !== undefined,
}, async () => {
  await ensureKubeImages();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  await using tmp = await tempDir("gp-e2e-kube-");
  const kw = `${tmp.path}/kube`;
  const lw = `${tmp.path}/local`;
  const spec = `${ROOT}/examples/demo.jobspec.yaml`;
  // Labelled user secrets the run maps into every worker (by reference only).
  const userValues: string[] = [];
  for (
    const [name, type, keys] of [
      ["aws-creds", "aws", ["aws_access_key_id", "aws_secret_access_key", "config"]],
      ["push", "push-secret", ["docker.json"]],
    ] as const
  ) {
    const data: Record<string, string> = {};
    for (const k of keys) {
      const v = `${name}-${k}-${crypto.randomUUID()}`;
      userValues.push(v);
      data[k] = Buffer.from(v).toString("base64");
    }
    kube.store.create("secrets", {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        namespace: "default",
        name,
        labels: { "coreos-assembler.coreos.com/secret": type },
      },
      data,
    });
  }
  const rec = recorder(kube);
  const [k, l] = await Promise.all([
    submitKube(kube, [
      "-s",
      spec,
      "-w",
      kw,
      "--report",
      `${tmp.path}/kube.json`,
      "-e",
      "GP_FROM_E=kube-value",
    ], tmp.path),
    runScript("submit.ts", ["-s", spec, "-w", lw, "--report", `${tmp.path}/local.json`], {
      env: scriptEnv(),
      cwd: tmp.path,
      timeoutMs: 240_000,
    }),
  ]);
  rec.stop();
  assert.equal(k.code, 0, `submit (kube):\n${k.stdout}\n${k.stderr}`);
  assert.equal(l.code, 0, `submit (local):\n${l.stdout}\n${l.stderr}`);
  const kr = JSON.parse(await Deno.readTextFile(`${tmp.path}/kube.json`));
  const lr = JSON.parse(await Deno.readTextFile(`${tmp.path}/local.json`));
  assert.equal(kr.backend, "kube");
  assert.deepEqual(
    kr.stages.map((s: { id: string; result: string }) => [s.id, s.result]),
    lr.stages.map((s: { id: string; result: string }) => [s.id, s.result]),
  );
  const names = await assertSameBuilds(`${kw}/builds`, `${lw}/builds`, kr.arch);
  assert.ok(names.includes("metal"), names.join(","));
  // -e reached every worker pod's environment.
  const workerPods = rec.seen.filter((o) =>
    o.spec?.containers && o.metadata.labels?.[RUN_ID_LABEL]
  );
  assert.ok(workerPods.length > 0);
  for (const p of workerPods) {
    const env = (p.spec as { containers: { env?: { name: string; value?: string }[] }[] })
      .containers[0].env ?? [];
    assert.ok(
      env.some((e) => e.name === "GP_FROM_E" && e.value === "kube-value"),
      `pod ${p.metadata.name}: ${JSON.stringify(env.map((e) => e.name))}`,
    );
  }
  // Worker output (init + main containers) came through the pods/log API.
  assert.match(k.stdout, /fake-cosa/);
  // Nothing left: no pod, no Secret (asserted through the API server's store).
  assert.deepEqual(gangplankObjects(kube).map((o) => o.metadata.name), []);

  // The relay secret key, learnt from the only place it may be: the per-run Secret's data.
  const runSecrets = rec.seen.filter((o) =>
    o.kind === "Secret" && o.metadata?.labels?.[RUN_ID_LABEL]
  );
  assert.ok(runSecrets.length > 0, "the run created its Secret");
  const values = new Set<string>();
  for (const s of runSecrets) {
    for (const v of Object.values(s.data ?? {}) as string[]) {
      values.add(v);
      values.add(Buffer.from(v, "base64").toString("utf8"));
    }
  }
  assert.ok([...values].every((v) => v.length >= 16), "non-trivial secret values");
  for (const v of userValues) {
    values.add(v);
    values.add(Buffer.from(v).toString("base64"));
  }
  assert.ok(
    rec.seen.some((o) => o.kind === "Pod" && JSON.stringify(o).includes("aws-creds")),
    "user secrets were mapped into the worker pods",
  );
  const elsewhere = [
    ...rec.seen.filter((o) => o.kind !== "Secret").map((o) => JSON.stringify(o)),
    k.stdout,
    k.stderr,
    await Deno.readTextFile(`${tmp.path}/kube.json`),
  ];
  for (const logFile of Deno.readDirSync(`${kw}/logs`)) {
    elsewhere.push(await Deno.readTextFile(`${kw}/logs/${logFile.name}`));
  }
  for (const text of elsewhere) {
    for (const v of values) assert.ok(!text.includes(v), "a secret value leaked");
  }
  // Worker pods get the key only as a file copied from their stage's Secret, never as an
  // env var (which would stay in /proc/<worker pid>/environ); each stage its own Secret.
  const pods = rec.seen.filter((o) => o.kind === "Pod");
  assert.ok(pods.length > 0);
  const stageSecrets = new Set<string>();
  for (const p of pods) {
    const env = p.spec.containers[0].env as { name: string; value?: string; valueFrom?: unknown }[];
    assert.ok(!env.some((e) => e.name === "COSA_RELAY_SECRET_KEY"));
    assert.ok(env.some((e) => e.name === "COSA_RELAY_SECRET_FILE"));
    for (const v of p.spec.volumes as { secret?: { secretName: string } }[]) {
      if (v.secret?.secretName.startsWith("gp-")) stageSecrets.add(v.secret.secretName);
    }
  }
  assert.equal(stageSecrets.size, new Set(pods.map((p) => p.metadata.name)).size);
});

// The whole fault matrix (image pull, OOM, deletion by someone else, StartError, node lost,
// timeouts, hanging deletes...) runs on fake time in kube_faults_test.ts, and each fault's pod
// status over the wire in run_pod_test.ts. Here, through the CLI: a cluster reason reaching
// the user (eviction), --unschedulable-timeout reaching the pod's run, and an API failure.
const FAULTS: { name: string; set: (k: KubeApi) => void; reason: RegExp; extra?: string[] }[] = [
  {
    name: "unschedulable",
    set: (k) => k.setFault("unschedulable", true),
    reason: /Unschedulable/,
    extra: ["--unschedulable-timeout", "2s"],
  },
  { name: "eviction", set: (k) => k.setFault("evict", { afterMs: 500 }), reason: /Evicted/ },
  {
    name: "persistent API errors",
    set: (k) => k.setFault("errorBurst", { count: 100_000, status: 503, pathPattern: /\/pods/ }),
    reason: /HTTP 503/,
  },
];

Deno.test({
  name: "kube e2e: fault switches end the run non-zero with the cluster's reason, nothing left",
  ignore: missing !== undefined,
}, async (t) => {
  await ensureKubeImages();
  await using tmp = await tempDir("gp-e2e-kube-faults-");
  await Deno.writeTextFile(`${tmp.path}/job.yaml`, ONE_STAGE);
  for (const f of FAULTS) {
    await t.step(f.name, async () => {
      await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
      f.set(kube);
      const t0 = Date.now();
      const r = await submitKube(
        kube,
        [
          "-s",
          `${tmp.path}/job.yaml`,
          "-w",
          `${tmp.path}/${f.name.replace(/ /g, "-")}`,
          ...(f.extra ?? []),
        ],
        tmp.path,
        120_000,
      );
      const ms = Date.now() - t0;
      assert.notEqual(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(`${r.stdout}\n${r.stderr}`, f.reason);
      assert.ok(ms < 90_000, `took ${ms} ms`);
      kube.setFault("errorBurst", undefined);
      assert.deepEqual(gangplankObjects(kube).map((o) => o.metadata.name), []);
    });
  }
});

Deno.test({
  name: "kube e2e: dropped watches and 429 bursts are survived; --cleanup sweeps leftovers",
  ignore: missing !== undefined,
}, async () => {
  await ensureKubeImages();
  await using tmp = await tempDir("gp-e2e-kube-recover-");
  await Deno.writeTextFile(
    `${tmp.path}/job.yaml`,
    ONE_STAGE.replace(
      "echo stage-started; sleep 30",
      "for i in 1 2 3 4 5; do echo tick-$i; sleep 0.2; done",
    ),
  );
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  kube.setFault("watchDrop", { afterEvents: 2 });
  kube.setFault("errorBurst", { count: 4, status: 429, retryAfterSeconds: 1 });
  const r = await submitKube(
    kube,
    ["-s", `${tmp.path}/job.yaml`, "-w", `${tmp.path}/w`],
    tmp.path,
    120_000,
  );
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (let i = 1; i <= 5; i++) assert.match(r.stdout, new RegExp(`tick-${i}`));
  kube.setFault("watchDrop", undefined);

  // Leftovers of a killed coordinator: created directly in the store, swept by --cleanup.
  kube.store.create("pods", {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      namespace: "default",
      name: "gp-old-w0-x",
      labels: { [RUN_ID_LABEL]: "old", "app.kubernetes.io/managed-by": "gangplank" },
    },
    spec: { containers: [{ name: "worker", image: "nonexistent" }], restartPolicy: "Never" },
  });
  kube.store.create("secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      namespace: "default",
      name: "gp-old-relay",
      labels: { [RUN_ID_LABEL]: "old", "app.kubernetes.io/managed-by": "gangplank" },
    },
    data: { K: "dmFsdWU=" },
  });
  kube.store.create("secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { namespace: "default", name: "not-ours" },
    data: {},
  });
  assert.equal(gangplankObjects(kube).length, 2);
  const c = await submitKube(kube, ["--cleanup"], tmp.path, 60_000);
  assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}`);
  assert.match(c.stdout, /1 pod\(s\), 1 secret\(s\)/);
  assert.deepEqual(gangplankObjects(kube), []);
  assert.equal(kube.secrets().filter((s) => s.metadata.name === "not-ours").length, 1);
});

Deno.test({
  name: "kube e2e: Ctrl-C stops the run (130), deleting its pods and Secret",
  ignore: missing !== undefined,
}, async () => {
  await ensureKubeImages();
  await using tmp = await tempDir("gp-e2e-kube-int-");
  await Deno.writeTextFile(`${tmp.path}/job.yaml`, ONE_STAGE);
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  const s = spawnScript(
    "submit.ts",
    kubeSubmitArgs(kube, "-s", `${tmp.path}/job.yaml`, "-w", `${tmp.path}/w`),
    scriptEnv(),
    tmp.path,
  );
  try {
    await waitFor(() => s.output().includes("stage-started"), {
      timeoutMs: 90_000,
      what: "the worker pod to run",
    });
    assert.equal(gangplankObjects(kube).length, 2, "a pod and the run Secret exist");
    s.child.kill("SIGINT");
    const r = await within(s, 30_000, "submit after SIGINT");
    assert.equal(r.code, 130, r.out);
  } finally {
    try {
      s.child.kill("SIGKILL");
    } catch { /* gone */ }
    await s.done;
  }
  assert.deepEqual(gangplankObjects(kube).map((o) => o.metadata.name), []);
});
