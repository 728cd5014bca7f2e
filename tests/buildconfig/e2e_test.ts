/**
 * BuildConfig mode end to end: the worker entry runs in a pod of the test kubelet (process
 * mode) as OpenShift runs a custom-strategy build: env `BUILD` = the real Build fixture (its
 * output pointed at a real registry, binary source), the payload (`oc start-build --from-dir`:
 * a tarball holding jobspec.yaml) on stdin, the push secret mounted at PUSH_DOCKERCFG_PATH. The
 * stages run as worker pods; builds/ must equal the local backend's for the same JobSpec, and the
 * image must be in the registry under the build id's tag and the output's tag.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runScript, tempDir } from "../_helpers/mod.ts";
import { inspectImage } from "../_helpers/registry.ts";
import { assertSameBuilds, scriptEnv } from "../e2e/_podman_helpers.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/names.ts";
import { extractTarGz } from "../../lib/archive/mod.ts";
import { dirPayload, fixtureBuild, startBcCluster } from "./_bc_cluster.ts";

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
    "BuildConfig E2E: BUILD + payload on stdin in a pod; stages as worker pods; builds/ as local; image in the registry",
  ignore: Deno.uid() !== 0,
}, async () => {
  await using tmp = await tempDir("gp-bc-e2e-");
  await using c = await startBcCluster();
  const { kube, reg } = c;
  const target = `${reg.address}/coreos/fcos:stable`;
  // The fixture with a binary source, its COSA_CMDS strategy env dropped (the JobSpec is the
  // work here; the implied stages have their own test).
  const build = fixtureBuild(target, (b) => {
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
});
