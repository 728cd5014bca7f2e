/**
 * BuildConfig mode end to end: the worker entry runs in a pod of the test kubelet (process
 * mode) as OpenShift runs a custom-strategy build: env `BUILD` = the real Build fixture (its
 * output pointed at a real registry, binary source), the payload (`oc start-build --from-dir`:
 * a tarball holding jobspec.yaml) on stdin, the push secret mounted at PUSH_DOCKERCFG_PATH. The
 * stages run as worker pods; builds/ must equal the local backend's for the same JobSpec, and the
 * image must be in the registry under the build id's tag and the output's tag.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT, runScript, tempDir } from "../_helpers/mod.ts";
import { inspectImage, startRegistry, type TestRegistry } from "../_helpers/registry.ts";
import { type KObj, startKubeApiServer } from "../_kube_sim/api_server.ts";
import type { ContainerLaunch } from "../_kube_sim/pod_run.ts";
import { assertSameBuilds, scriptEnv } from "../e2e/_podman_helpers.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/names.ts";
import { extractTarGz } from "../../lib/archive/mod.ts";

const FIXTURE = readFileSync(new URL("./fixtures/build.json", import.meta.url), "utf8");
const BUILD_POD = "gangplank-fcos-1-build";
const JOBSPEC = `recipe:
  git_url: https://github.com/coreos/fedora-coreos-config
  git_ref: testing-devel
stages:
  - id: base
    execution_order: 1
    build_artifacts: [base]
  - id: metal
    execution_order: 2
    require_artifacts: [ostree]
    build_artifacts: [metal]
  - id: aws
    execution_order: 2
    require_artifacts: [qemu]
    build_artifacts: [aws]
`;
const DENO_RUN = [Deno.execPath(), "run", "-A", "--no-check", "--config", `${ROOT}/deno.json`];

async function waitDone(kube: { pods(): KObj[] }, name: string, ms: number): Promise<KObj> {
  const deadline = Date.now() + ms;
  for (;;) {
    const p = kube.pods().find((x) => x.metadata.name === name);
    const phase = (p?.status as { phase?: string } | undefined)?.phase;
    if (p && (phase === "Succeeded" || phase === "Failed")) return p;
    if (Date.now() > deadline) throw new Error(`pod ${name} did not finish in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name:
    "BuildConfig E2E: BUILD + payload on stdin in a pod; stages as worker pods; builds/ as local; image in the registry",
  ignore: Deno.uid() !== 0,
}, async () => {
  await using tmp = await tempDir("gp-bc-e2e-");
  // Known only once the cluster runs (the registry listens on its node address).
  const late: { reg?: TestRegistry; payload?: Uint8Array } = {};
  const hostPath = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  const rewrite = (l: ContainerLaunch): ContainerLaunch | void => {
    if (l.pod.metadata.name === BUILD_POD) return { ...l, stdin: late.payload };
    if (l.pod.metadata.labels?.[RUN_ID_LABEL] && !l.init) {
      // A worker pod "of this image": the worker entry from this checkout, the stand-in cosa,
      // and the registry's CA trusted (an image would carry it in its trust store).
      return {
        ...l,
        command: [...DENO_RUN, `${ROOT}/scripts/work.ts`],
        args: [],
        env: {
          ...l.env,
          PATH: `${ROOT}/examples/fake-cosa:${hostPath}`,
          SSL_CERT_FILE: late.reg!.caFile,
        },
      };
    }
  };
  await using kube = await startKubeApiServer({ kubelet: { mode: "process", rewrite } });
  await using reg = late.reg = await startRegistry({ host: kube.nodeIP });
  const target = `${reg.address}/coreos/fcos:stable`;

  // The payload: `oc start-build --from-dir=./job` sends ./job as a tarball.
  const job = join(tmp.path, "job");
  await mkdir(job);
  await writeFile(join(job, "jobspec.yaml"), JOBSPEC);
  const tgz = join(tmp.path, "job.tgz");
  assert.ok(
    (await new Deno.Command("tar", { args: ["-czf", tgz, "-C", job, "."] }).output()).success,
  );
  late.payload = await Deno.readFile(tgz);

  // The Build OpenShift hands the pod: the fixture, binary source, output to the registry.
  const build = JSON.parse(FIXTURE);
  build.metadata.namespace = "default";
  build.spec.serviceAccount = "default";
  build.spec.source.binary = {};
  build.spec.strategy.customStrategy.env = build.spec.strategy.customStrategy.env.filter(
    (e: { name: string }) => e.name !== "COSA_CMDS",
  );
  build.spec.output = {
    to: { kind: "DockerImage", name: target },
    pushSecret: { name: "builder-dockercfg" },
  };
  kube.openshift.put(build);
  kube.store.create("secrets", {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/dockercfg",
    metadata: { namespace: "default", name: "builder-dockercfg" },
    data: {
      ".dockercfg": Buffer.from(JSON.stringify({
        [reg.address]: { auth: btoa(`${reg.user}:${reg.password}`) },
      })).toString("base64"),
    },
  });
  const srv = join(tmp.path, "srv");
  await mkdir(srv);
  kube.store.create("pods", {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: "default", name: BUILD_POD },
    spec: {
      restartPolicy: "Never",
      serviceAccountName: "default",
      containers: [{
        name: "custom-build",
        image: "quay.io/me/gangplank-worker:latest",
        workingDir: ROOT,
        command: [...DENO_RUN, `${ROOT}/scripts/work.ts`],
        env: [
          { name: "BUILD", value: JSON.stringify(build) },
          { name: "PUSH_DOCKERCFG_PATH", value: "/var/run/secrets/openshift.io/push" },
          { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        ],
        volumeMounts: [
          { name: "srv", mountPath: "/srv" },
          { name: "push", mountPath: "/var/run/secrets/openshift.io/push", readOnly: true },
        ],
      }],
      volumes: [
        { name: "srv", hostPath: { path: srv } },
        { name: "push", secret: { secretName: "builder-dockercfg" } },
      ],
    },
  });
  const local = runScript("submit.ts", [
    "-s",
    join(job, "jobspec.yaml"),
    "-w",
    join(tmp.path, "local"),
  ], {
    env: scriptEnv(),
    cwd: tmp.path,
    timeoutMs: 240_000,
  });
  const pod = await waitDone(kube, BUILD_POD, 240_000);
  const log = kube.podLog("default", BUILD_POD, "custom-build") ?? "";
  assert.equal((pod.status as { phase: string }).phase, "Succeeded", log);
  const l = await local;
  assert.equal(l.code, 0, `${l.stdout}\n${l.stderr}`);
  assert.match(log, /JobSpec from \/srv\/source\/jobspec\.yaml/);
  // The payload went to the workers through the relay as stage override tarballs, one per
  // stage, in the job bucket's cache/ (Gangplank's overrides layout): check and set them aside.
  const cache = join(srv, "builds", "cache");
  const tarballs = [...Deno.readDirSync(cache)].map((e) => e.name);
  assert.equal(tarballs.length, 3, tarballs.join(","));
  for (const t of tarballs) {
    assert.match(t, /^overrides-[a-z0-9]{10}\.tar\.gz$/);
    const x = join(tmp.path, `x-${t}`);
    await extractTarGz(join(cache, t), x);
    assert.equal(
      readFileSync(join(x, "srv", "overrides", "source", "jobspec.yaml"), "utf8"),
      JOBSPEC,
    );
  }
  await Deno.remove(cache, { recursive: true });
  const names = await assertSameBuilds(
    join(srv, "builds"),
    join(tmp.path, "local", "builds"),
    "x86_64",
  );
  assert.ok(names.includes("metal"), names.join(","));
  const buildId = JSON.parse(readFileSync(join(srv, "builds", "builds.json"), "utf8")).builds[0].id;
  for (const tag of [buildId, "stable"]) {
    const i = await inspectImage(reg, `${reg.address}/coreos/fcos:${tag}`);
    assert.ok(i.ok, `${tag}: ${i.stderr}\n${log}`);
    assert.equal(
      (i.json!.Labels as Record<string, string>)["coreos-assembler.image-config.build"],
      buildId,
    );
  }
  // Stages ran as worker pods (gone now), and the push secret never appeared in a pod spec.
  const workers = kube.store.writes.filter((w) =>
    w.resource === "pods" && w.object.metadata.labels?.[RUN_ID_LABEL]
  );
  assert.ok(workers.length > 0, "worker pods were created");
  assert.equal(kube.pods().filter((p) => p.metadata.labels?.[RUN_ID_LABEL]).length, 0);
  for (const w of kube.store.writes.filter((w) => w.resource === "pods")) {
    assert.equal(JSON.stringify(w.object).includes(reg.password), false);
  }
});
