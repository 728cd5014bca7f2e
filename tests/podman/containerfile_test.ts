/**
 * The Containerfile builds a worker image that runs the worker command contract. No image can
 * be pulled here, so BASE and the deno source image are the locally built test image.
 */
import assert from "node:assert/strict";
import { WORKER_COMMAND } from "../../lib/workspec/mod.ts";
import { ROOT, runCommand } from "../_helpers/mod.ts";
import { ensureTestImage, podmanMissing } from "../_helpers/podman.ts";
import { bundle } from "../../scripts/bundle.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/podman/containerfile_test.ts: ${missing}`);

Deno.test({
  name: "Containerfile: deno + the bundled worker on a base image; CMD is the worker",
  ignore: missing !== undefined,
}, async () => {
  const base = await ensureTestImage(); // also bundles dist/work.js
  // The hop pod runs the bundled coordinator; the BuildConfig role is a bundle of its own.
  await bundle({ root: ROOT, entries: ["submit", "buildconfig"] });
  const tag = `localhost/gangplank-containerfile-test:${crypto.randomUUID().slice(0, 8)}`;
  try {
    const build = await runCommand("podman", [
      "build",
      "--network",
      "host",
      "--pull=never",
      "--build-arg",
      `BASE=${base}`,
      "--build-arg",
      `DENO_IMAGE=${base}`,
      "--build-arg",
      "DENO_PATH=/usr/local/bin/deno",
      "-t",
      tag,
      "-f",
      `${ROOT}/Containerfile`,
      ROOT,
    ], { timeoutMs: 300_000 });
    assert.equal(build.code, 0, build.stdout + build.stderr);
    const cmd = await runCommand("podman", [
      "image",
      "inspect",
      "--format",
      "{{json .Config.Cmd}} {{.Config.User}} {{.Config.WorkingDir}}",
      tag,
    ]);
    assert.equal(cmd.stdout.trim(), `${JSON.stringify(WORKER_COMMAND)} builder /srv`);
    // Run with the image's own CMD: the worker starts and refuses to run without a WorkSpec.
    const run = await runCommand("podman", ["run", "--rm", "--network", "host", tag], {
      timeoutMs: 60_000,
    });
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /neither COSA_WORK_POD_JSON .* nor BUILD .* is set/);
    // With BUILD, the image's CMD runs the BuildConfig role (buildconfig.js), which reads it.
    const bc = await runCommand("podman", [
      "run",
      "--rm",
      "--network",
      "host",
      "-e",
      "BUILD={not json",
      tag,
    ], { timeoutMs: 60_000 });
    assert.equal(bc.code, 2, bc.stdout + bc.stderr);
    assert.match(bc.stderr, /^work: BUILD: not JSON or YAML/);
    // The hop pod's command: the bundled coordinator is in the image and runs.
    const hop = await runCommand("podman", [
      "run",
      "--rm",
      "--network",
      "host",
      "--entrypoint",
      "/usr/local/bin/deno",
      tag,
      "run",
      "-A",
      "--no-prompt",
      "/usr/lib/gangplank/submit.js",
      "--help",
    ], { timeoutMs: 60_000 });
    assert.equal(hop.code, 0, hop.stdout + hop.stderr);
    assert.match(hop.stdout, /--spec/);
  } finally {
    await runCommand("podman", ["rmi", "-f", tag]);
  }
});
