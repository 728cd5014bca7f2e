/**
 * BuildConfig mode end to end: the worker entry runs in a pod of the test kubelet (process
 * mode) as OpenShift runs a custom-strategy build: env `BUILD` = the real Build fixture (its
 * output an ImageStreamTag whose stream is in a real registry, binary source), the payload
 * (`oc start-build --from-dir`: a tarball holding jobspec.yaml) on stdin, the push secret mounted
 * at PUSH_DOCKERCFG_PATH, every API call authorized by the example template's Role. The stages
 * run as worker pods; builds/ must equal the local backend's for the same JobSpec (nothing set
 * aside), and the image must be in the registry under the build id's tag and the output's tag.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runScript, tempDir } from "../_helpers/mod.ts";
import { inspectImage } from "../_helpers/registry.ts";
import { assertSameBuilds, scriptEnv } from "../e2e/_podman_helpers.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/names.ts";
import { dirPayload, fixtureBuild, startBcCluster } from "./_bc_cluster.ts";
import { templateRules } from "./_template.ts";
import { describeRequest } from "../_kube_sim/rbac.ts";

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

Deno.test({
  name:
    "BuildConfig E2E: BUILD + payload on stdin in a pod under the template's Role; stages as worker pods; builds/ as local; image in the registry through the ImageStreamTag",
  ignore: Deno.uid() !== 0,
}, async () => {
  await using tmp = await tempDir("gp-bc-e2e-");
  await using c = await startBcCluster();
  const { kube, reg } = c;
  // The output is the template's kind: an ImageStreamTag, whose stream lives in the registry.
  kube.openshift.put({
    apiVersion: "image.openshift.io/v1",
    kind: "ImageStream",
    metadata: { name: "fcos", namespace: "default" },
    status: { dockerImageRepository: `${reg.address}/coreos/fcos` },
  });
  // The fixture with a binary source, its COSA_CMDS strategy env dropped (the JobSpec is the
  // work here; the implied stages have their own test).
  const build = fixtureBuild("", (b) => {
    b.spec.output.to = { kind: "ImageStreamTag", name: "fcos:stable" };
    b.spec.source.binary = {};
    b.spec.strategy.customStrategy.env = b.spec.strategy.customStrategy.env.filter(
      (e: { name: string }) => e.name !== "COSA_CMDS",
    );
  });
  const job = join(tmp.path, "job");
  await mkdir(job);
  await writeFile(join(job, "jobspec.yaml"), JOBSPEC);
  const srv = join(tmp.path, "srv");
  await mkdir(srv);
  const local = runScript(
    "submit.ts",
    ["-s", join(job, "jobspec.yaml"), "-w", join(tmp.path, "local")],
    { env: scriptEnv(), cwd: tmp.path, timeoutMs: 240_000 },
  );
  const { phase, log } = await c.runBuild({
    build,
    payload: await dirPayload(tmp.path, { "jobspec.yaml": JOBSPEC }),
    srv,
  });
  assert.equal(phase, "Succeeded", log);
  const l = await local;
  assert.equal(l.code, 0, `${l.stdout}\n${l.stderr}`);
  assert.match(log, /JobSpec from \/srv\/source\/jobspec\.yaml/);
  // builds/ exactly as the local backend's, nothing set aside: the payload reached the workers
  // from a relay bucket of its own (removed when the run ended), never through builds/.
  assert.match(log, /extracted gangplank-payload-[0-9a-f]{8}\/source\.tar\.gz/);
  assert.deepEqual(readdirSync(srv).filter((n) => !n.startsWith(".")).sort(), [
    "builds",
    "logs",
    "source",
  ]);
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
  // Stages ran as worker pods (gone now); the push credentials are in no pod spec and no log.
  const workers = kube.store.writes.filter((w) =>
    w.resource === "pods" && w.object.metadata.labels?.[RUN_ID_LABEL]
  );
  assert.ok(workers.length > 0, "worker pods were created");
  assert.equal(kube.pods().filter((p) => p.metadata.labels?.[RUN_ID_LABEL]).length, 0);
  const auth = btoa(`${reg.user}:${reg.password}`);
  for (const w of kube.store.writes.filter((w) => w.resource === "pods")) {
    const text = JSON.stringify(w.object);
    assert.equal(text.includes(reg.password) || text.includes(auth), false);
  }
  assert.equal(log.includes(reg.password) || log.includes(auth), false, "not in the build log");
  // Least privilege: the run needed every rule of the template's Role and nothing more. The only
  // refused call is the cluster-wide node listing, which no Role can grant and the coordinator
  // does without (no KVM request, the default architecture).
  const answered = kube.requests.filter((r) => r.attributes.resourceRequest);
  assert.deepEqual(
    [
      ...new Set(
        answered.filter((r) => r.status === 403).map((r) => describeRequest(r.attributes)),
      ),
    ],
    ["list /nodes"],
  );
  const used = new Set(
    answered.filter((r) => r.status !== 403).map((r) => describeRequest(r.attributes)),
  );
  const granted = templateRules().flatMap((r) =>
    r.apiGroups!.flatMap((g) =>
      r.resources!.flatMap((res) => r.verbs.map((v) => `${v} ${g}/${res}`))
    )
  );
  assert.deepEqual([...used].sort(), granted.sort(), "every rule used, no call outside them");
});
