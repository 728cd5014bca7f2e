/**
 * `--resume` with the podman backend: the third stage fails in its container (the stand-in
 * cosa is told to fail through `-e`), a resume without it runs only that stage and its
 * dependent in new containers, and the builds tree matches a clean local run's.
 */
import assert from "node:assert/strict";
import { PodmanClient } from "../../lib/podman/mod.ts";
import type { RunReport } from "../../lib/coordinator/mod.ts";
import { runScript, tempDir } from "../_helpers/mod.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { assertSameBuilds, leftovers, scriptEnv } from "./_podman_helpers.ts";
import { markerJob } from "./_local_jobs.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/e2e/podman_resume_test.ts: ${missing}`);

Deno.test({
  name: "podman e2e: --resume after a failed third stage runs only it and its dependent",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage();
  await using svc = await startPodmanService();
  await using tmp = await tempDir("gp-e2e-podman-resume-");
  const podman = PodmanClient.unix(svc.socketPath);
  const common = ["--remote", `unix://${svc.socketPath}`, "-i", TEST_WORKER_IMAGE];
  const spec = `${tmp.path}/job.yaml`;
  await Deno.writeTextFile(spec, markerJob(`${tmp.path}/no-marker`, "fail"));
  const pw = `${tmp.path}/podman`;
  const opts = { env: scriptEnv(), cwd: tmp.path, timeoutMs: 300_000 };

  const first = await runScript("podman_run.ts", [
    "-s",
    spec,
    ...common,
    "-w",
    pw,
    "-e",
    "FAKE_COSA_FAIL=buildextend-metal4k",
    "--report",
    `${tmp.path}/first.json`,
  ], opts);
  assert.notEqual(first.code, 0, first.stdout + first.stderr);
  const r1 = JSON.parse(await Deno.readTextFile(`${tmp.path}/first.json`)) as RunReport;
  assert.deepEqual(r1.stages.map((s) => s.result), ["succeeded", "succeeded", "failed", "not-run"]);

  const [second, clean] = await Promise.all([
    runScript("podman_run.ts", [
      "--resume",
      pw,
      ...common,
      "--report",
      `${tmp.path}/second.json`,
    ], opts),
    runScript("submit.ts", ["-s", spec, "-w", `${tmp.path}/local`], opts),
  ]);
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  const r2 = JSON.parse(await Deno.readTextFile(`${tmp.path}/second.json`)) as RunReport;
  assert.deepEqual(r2.stages.map((s) => [s.id, s.result]), [
    ["base", "skipped"],
    ["metal", "skipped"],
    ["metal4k", "succeeded"],
    ["finalize", "succeeded"],
  ]);
  const names = await assertSameBuilds(`${pw}/builds`, `${tmp.path}/local/builds`, r2.arch);
  assert.ok(names.includes("metal4k"), names.join(","));
  for (const id of [r1.runId, r2.runId]) {
    assert.deepEqual(await leftovers(podman, id), { containers: [], volumes: [], secrets: [] });
  }
});
