/**
 * `--resume` with the podman backend (see ./_resume_check.ts): only the failed third stage and
 * its dependent run again, in new containers; nothing is left on the podman host.
 */
import assert from "node:assert/strict";
import { PodmanClient } from "../../lib/podman/mod.ts";
import { runScript, tempDir } from "../_helpers/mod.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { leftovers, scriptEnv } from "./_podman_helpers.ts";
import { resumeOnBackend } from "./_resume_check.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/e2e/podman_resume_test.ts: ${missing}`);

Deno.test({
  name: "podman e2e: --resume after a failed third stage runs only it and its dependent",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage();
  await using svc = await startPodmanService();
  await using tmp = await tempDir("gp-e2e-podman-resume-");
  const common = ["--remote", `unix://${svc.socketPath}`, "-i", TEST_WORKER_IMAGE];
  const { first, second } = await resumeOnBackend(
    tmp.path,
    (args) =>
      runScript("podman_run.ts", [...args, ...common], {
        env: scriptEnv(),
        cwd: tmp.path,
        timeoutMs: 300_000,
      }),
  );
  const podman = PodmanClient.unix(svc.socketPath);
  for (const id of [first.runId, second.runId]) {
    assert.deepEqual(await leftovers(podman, id), { containers: [], volumes: [], secrets: [] });
  }
});
