/**
 * BuildConfig mode without a JobSpec, end to end in the test cluster: `COSA_CMDS` alone and
 * `*.cosa.sh` files alone (sent with `oc start-build --from-dir`) become the implied stages,
 * run in worker pods; a failing implied stage fails the build naming it; `job.strict` in a
 * payload JobSpec suppresses them.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { tempDir } from "../_helpers/mod.ts";
import { inspectImage } from "../_helpers/registry.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/names.ts";
import { type BcCluster, dirPayload, fixtureBuild, startBcCluster } from "./_bc_cluster.ts";

const ignore = Deno.uid() !== 0;
// Several statements (the worker ran `cosa init` with the Build's git source already):
// Gangplank's `bash -xeu -o pipefail <COSA_CMDS>` would have tried to run a file named "cosa"
// (§12.1.14); as a script it works.
const CMDS = "cosa fetch; test -d tmp/repo && cosa build";

/**
 * Runs the fixture Build (strategy env `env`, output `fcos:<tag>`, binary source when `files`
 * is given) in a fresh test cluster, then `check`s the outcome.
 */
async function withBuild(
  tag: string,
  env: { name: string; value: string }[],
  files: Record<string, string> | undefined,
  check: (o: { c: BcCluster; srv: string; phase: string; log: string }) => Promise<void> | void,
  { zip = false } = {},
): Promise<void> {
  await using tmp = await tempDir("gp-bc-e2e-");
  await using c = await startBcCluster();
  const srv = join(tmp.path, "srv");
  await mkdir(srv);
  const build = fixtureBuild(`${c.reg.address}/coreos/fcos:${tag}`, (b) => {
    if (files) b.spec.source.binary = {};
    b.spec.strategy.customStrategy.env = env;
  });
  const r = await c.runBuild({
    build,
    srv,
    ...(files ? { payload: await dirPayload(tmp.path, files, { zip }) } : {}),
  });
  await check({ c, srv, ...r });
}

const workerPods = (c: BcCluster) =>
  c.kube.store.writes.filter((w) =>
    w.resource === "pods" && w.type === "ADDED" && w.object.metadata.labels?.[RUN_ID_LABEL]
  ).map((w) => w.object.metadata.name);

function buildIds(srv: string): string[] {
  const f = join(srv, "builds", "builds.json");
  return existsSync(f)
    ? JSON.parse(readFileSync(f, "utf8")).builds.map((b: { id: string }) => b.id)
    : [];
}

Deno.test(
  {
    name:
      "BuildConfig E2E: COSA_CMDS alone (the Build's strategy env) is stage envVar in a worker pod",
    ignore,
  },
  () =>
    withBuild(
      "cmds",
      [{ name: "COSA_CMDS", value: CMDS }],
      undefined,
      async ({ c, srv, phase, log }) => {
        assert.equal(phase, "Succeeded", log);
        assert.match(log, /JobSpec from nowhere/);
        const ids = buildIds(srv);
        assert.equal(ids.length, 1, log);
        const pods = workerPods(c);
        assert.equal(pods.length, 1, pods.join(","));
        assert.match(pods[0], /envvar/i);
        assert.ok((await inspectImage(c.reg, `${c.reg.address}/coreos/fcos:${ids[0]}`)).ok);
      },
    ),
);

Deno.test({
  name:
    "BuildConfig E2E: *.cosa.sh alone in a zip payload (--from-archive=job.zip) is stage cosa.sh, run in name order in a worker pod",
  ignore,
}, () =>
  withBuild("scripts", [], {
    "10-fetch.cosa.sh": "cosa fetch\n",
    "20-build.cosa.sh": "test -d tmp/repo\ncosa build\n",
    "README.txt": "not a script\n",
  }, async ({ c, srv, phase, log }) => {
    assert.equal(phase, "Succeeded", log);
    assert.equal(buildIds(srv).length, 1, log);
    assert.equal(workerPods(c).length, 1);
    assert.ok((await inspectImage(c.reg, `${c.reg.address}/coreos/fcos:scripts`)).ok);
  }, { zip: true }));

Deno.test(
  {
    name: "BuildConfig E2E: a failing implied stage fails the build pod, naming the stage",
    ignore,
  },
  () =>
    withBuild(
      "bad",
      [],
      { "fail.cosa.sh": "echo about to fail\nexit 7\n" },
      ({ srv, phase, log }) => {
        assert.equal(phase, "Failed", log);
        assert.match(log, /stage "cosa\.sh" failed/);
        assert.deepEqual(buildIds(srv), []);
      },
    ),
);

Deno.test({
  name: "BuildConfig E2E: job.strict in the payload's JobSpec suppresses COSA_CMDS and *.cosa.sh",
  ignore,
}, () =>
  withBuild("strict", [{ name: "COSA_CMDS", value: CMDS }], {
    "jobspec.yaml": "job: {strict: true}\nstages: []\n",
    "x.cosa.sh": "cosa build\n",
  }, ({ c, srv, phase, log }) => {
    assert.equal(phase, "Succeeded", log);
    assert.match(log, /no work to do/);
    assert.deepEqual(workerPods(c), [], "no worker pod");
    assert.deepEqual(buildIds(srv), []);
  }));
