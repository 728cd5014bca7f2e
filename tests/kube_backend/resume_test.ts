/**
 * `--resume` with the kube backend against the Kubernetes test API server (see
 * tests/e2e/_resume_check.ts): only the failed third stage and its dependent run again, in new
 * pods; no pod or Secret of either run is left.
 */
import assert from "node:assert/strict";
import { runScript, tempDir } from "../_helpers/mod.ts";
import { ensureTestImage, podmanMissing } from "../_helpers/podman.ts";
import { scriptEnv } from "../e2e/_podman_helpers.ts";
import { resumeOnBackend } from "../e2e/_resume_check.ts";
import { startKubeApiServer } from "../_kube_sim/api_server.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/mod.ts";
import { kubeSubmitArgs } from "./_kube_run.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/kube_backend/resume_test.ts: ${missing}`);

Deno.test({
  name: "kube e2e: --resume after a failed third stage runs only it and its dependent",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  await using tmp = await tempDir("gp-e2e-kube-resume-");
  const { second } = await resumeOnBackend(
    tmp.path,
    (args) =>
      runScript("submit.ts", kubeSubmitArgs(kube, ...args), {
        env: scriptEnv(),
        cwd: tmp.path,
        timeoutMs: 300_000,
      }),
  );
  assert.equal(second.backend, "kube");
  assert.deepEqual(
    [
      ...kube.pods({ labelSelector: RUN_ID_LABEL }),
      ...kube.secrets({ labelSelector: RUN_ID_LABEL }),
    ].map((o) => o.metadata.name),
    [],
  );
});
