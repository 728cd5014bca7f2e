/**
 * `deno task bundle`: the bundled scripts run from a temporary folder outside the checkout,
 * with no node_modules and no deno config: the demo with local workers (the bundled worker
 * found next to submit.js) and with podman workers (work.js bound into the containers),
 * npm:ssh2's handshake (pure-JS crypto fallback, shimmed `require`), and the worker bundle
 * carrying the worker alone: its BuildConfig role is buildconfig.js, loaded only with `BUILD`.
 */
import assert from "node:assert/strict";
import { bundle } from "../../scripts/bundle.ts";
import { ROOT, runCommand, tempDir } from "../_helpers/mod.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { sshdMissing, startSshd } from "../_helpers/sshd.ts";

Deno.test("bundle: work, buildconfig, submit, relay, podman_run run without node_modules", async (t) => {
  await using out = await tempDir("gp-bundle-");
  const files = await bundle({ outDir: out.path });
  const names = files.map((f) => f.slice(out.path.length + 1)).sort();
  assert.deepEqual(names, ["buildconfig.js", "podman_run.js", "relay.js", "submit.js", "work.js"]);
  assert.ok(!out.path.startsWith(ROOT), "the bundles live outside the checkout");
  const run = (file: string, args: string[], env: Record<string, string> = {}) =>
    runCommand(Deno.execPath(), ["run", "-A", "--no-config", `${out.path}/${file}`, ...args], {
      cwd: out.path,
      env: { HOME: out.path, DENO_DIR: `${out.path}/deno-dir`, ...env },
      timeoutMs: 180_000,
    });
  // The demo and the stand-in cosa, copied out of the checkout too.
  await Deno.copyFile(`${ROOT}/examples/demo.jobspec.yaml`, `${out.path}/demo.jobspec.yaml`);
  await Deno.mkdir(`${out.path}/fake-cosa`);
  for (const f of ["cosa", "cosa.ts", "oci.ts", "kola"]) {
    await Deno.copyFile(`${ROOT}/examples/fake-cosa/${f}`, `${out.path}/fake-cosa/${f}`);
    await Deno.chmod(`${out.path}/fake-cosa/${f}`, 0o755);
  }
  const denoDir = Deno.execPath().slice(0, Deno.execPath().lastIndexOf("/"));
  const demoBuilt = async (workDir: string) => {
    const builds = JSON.parse(await Deno.readTextFile(`${workDir}/builds/builds.json`));
    const id = builds.builds[0].id as string;
    const arch = builds.builds[0].arches[0] as string;
    const meta = JSON.parse(
      await Deno.readTextFile(`${workDir}/builds/${id}/${arch}/meta.json`),
    );
    return Object.keys(meta.images).sort();
  };

  await t.step(
    "the demo with local workers: submit.js runs work.js from next to itself",
    async () => {
      const r = await run("submit.js", [
        "-s",
        "demo.jobspec.yaml",
        "--worker-path",
        "fake-cosa",
        "-w",
        "local",
      ], { PATH: `${denoDir}:/usr/bin:/bin` });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(await demoBuilt(`${out.path}/local`), ["aws", "metal", "ostree", "qemu"]);
    },
  );

  await t.step({
    name: "the demo with podman workers: podman_run.js binds its own work.js",
    ignore: podmanMissing() !== undefined,
    fn: async () => {
      await ensureTestImage();
      await using svc = await startPodmanService();
      const r = await run("podman_run.js", [
        "-s",
        "demo.jobspec.yaml",
        "--remote",
        `unix://${svc.socketPath}`,
        "-i",
        TEST_WORKER_IMAGE,
        "-w",
        "podman",
      ], { PATH: `${denoDir}:/usr/bin:/bin` });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(await demoBuilt(`${out.path}/podman`), ["aws", "metal", "ostree", "qemu"]);
    },
  });

  await t.step("--help of each script", async () => {
    for (const f of ["submit.js", "relay.js", "podman_run.js"]) {
      const r = await run(f, ["--help"]);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: /, f);
    }
    const w = await run("work.js", []);
    assert.equal(w.code, 2, w.stderr);
    assert.match(w.stderr, /neither COSA_WORK_POD_JSON .* nor BUILD .* is set/);
  });

  await t.step(
    "work.js is the worker alone; BUILD loads buildconfig.js from next to it",
    async () => {
      // deno bundle heads each module with its path: the coordinator's are not in the worker's.
      const modules = (file: string) =>
        Deno.readTextFile(`${out.path}/${file}`).then((t) =>
          new Set([...t.matchAll(/^\/\/ (lib\/[a-z_]+)\//gm)].map((m) => m[1]))
        );
      const work = await modules("work.js");
      for (const heavy of ["lib/coordinator", "lib/executors", "lib/kube", "lib/podman"]) {
        assert.ok(!work.has(heavy), `work.js carries ${heavy}`);
      }
      assert.ok(work.has("lib/worker"), "work.js carries the worker");
      assert.ok((await modules("buildconfig.js")).has("lib/coordinator"));
      // BUILD (and no WorkSpec): the BuildConfig role runs, from buildconfig.js, and parses it.
      const bad = await run("work.js", [], { BUILD: "{not json" });
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^work: BUILD: not JSON or YAML/);
      // Without buildconfig.js next to it, the worker says so (it never was inside work.js).
      await using lone = await tempDir("gp-bundle-lone-");
      await Deno.copyFile(`${out.path}/work.js`, `${lone.path}/work.js`);
      const r = await runCommand(Deno.execPath(), [
        "run",
        "-A",
        "--no-config",
        `${lone.path}/work.js`,
      ], {
        cwd: lone.path,
        env: { HOME: out.path, DENO_DIR: `${out.path}/deno-dir`, BUILD: "{not json" },
        timeoutMs: 60_000,
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /BUILD is set but the BuildConfig role .*\/buildconfig\.js cannot be loaded/,
      );
    },
  );

  await t.step({
    name: "bundled podman_run speaks SSH (host key refused with its fingerprint)",
    ignore: sshdMissing() !== undefined,
    fn: async () => {
      await using sshd = await startSshd();
      await Deno.writeTextFile(`${out.path}/known_hosts`, "");
      await Deno.writeTextFile(
        `${out.path}/job.yaml`,
        'stages:\n  - id: one\n    execution_order: 1\n    commands: ["true"]\n',
      );
      const r = await run("podman_run.js", [
        "-s",
        "job.yaml",
        "-w",
        "w",
        "--known-hosts",
        `${out.path}/known_hosts`,
      ], {
        CONTAINER_HOST: `ssh://root@127.0.0.1:${sshd.port}/run/podman/podman.sock`,
        CONTAINER_SSHKEY: sshd.userKeyPath,
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.ok(r.stderr.includes(sshd.hostFingerprint), r.stderr);
    },
  });
});
