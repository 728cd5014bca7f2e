/**
 * End to end, podman backend on this host: `podman-run` as a subprocess against a disposable
 * `podman system service`, with the worker test image built by `podman import`.
 */
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { PodmanClient } from "../../lib/podman/mod.ts";
import { ROOT, runScript, tempDir, waitFor } from "../_helpers/mod.ts";
import { runInProcess } from "../_helpers/cli.ts";
import { submit } from "../../lib/cli/mod.ts";
import { startRelay } from "../../lib/relay/server.ts";
import { writeRelayConfig } from "../../lib/relay/config.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import {
  assertSameBuilds,
  leftovers,
  removeRun,
  scriptEnv,
  spawnScript,
  within,
} from "./_podman_helpers.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/e2e/podman_local_test.ts: ${missing}`);

const FAILING = `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: base
    execution_order: 1
    build_artifacts: [base]
  - id: broken
    execution_order: 2
    require_artifacts: [ostree]
    commands: ["echo about to fail; exit 7"]
  - id: never
    execution_order: 3
    commands: ["echo must not run"]
`;

const SLOW = `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: slow
    execution_order: 1
    commands: ["echo slow-stage-started; sleep 120"]
`;

Deno.test({
  name: "podman e2e (local socket)",
  ignore: missing !== undefined,
}, async (t) => {
  await ensureTestImage();
  await using svc = await startPodmanService();
  const podman = PodmanClient.unix(svc.socketPath);
  const remote = `unix://${svc.socketPath}`;
  const common = ["--remote", remote, "-i", TEST_WORKER_IMAGE];

  await t.step(
    "demo JobSpec: same builds/ tree and artifact sha256s as the local backend",
    async () => {
      await using tmp = await tempDir("gp-e2e-podman-");
      const pw = `${tmp.path}/podman`;
      const lw = `${tmp.path}/local`;
      const spec = `${ROOT}/examples/demo.jobspec.yaml`;
      const [p, l] = await Promise.all([
        runScript("podman_run.ts", [
          "-s",
          spec,
          ...common,
          "-w",
          pw,
          "--report",
          `${tmp.path}/podman.json`,
        ], { env: scriptEnv(), cwd: tmp.path, timeoutMs: 300_000 }),
        runScript("submit.ts", ["-s", spec, "-w", lw, "--report", `${tmp.path}/local.json`], {
          env: scriptEnv(),
          cwd: tmp.path,
          timeoutMs: 300_000,
        }),
      ]);
      assert.equal(p.code, 0, `podman-run:\n${p.stdout}\n${p.stderr}`);
      assert.equal(l.code, 0, `submit (local):\n${l.stdout}\n${l.stderr}`);
      const pr = JSON.parse(await Deno.readTextFile(`${tmp.path}/podman.json`));
      const lr = JSON.parse(await Deno.readTextFile(`${tmp.path}/local.json`));
      assert.equal(pr.backend, "podman");
      assert.equal(lr.backend, "local");
      assert.equal(pr.arch, lr.arch);
      assert.deepEqual(
        pr.stages.map((s: { id: string; result: string }) => [s.id, s.result]),
        lr.stages.map((s: { id: string; result: string }) => [s.id, s.result]),
      );
      const names = await assertSameBuilds(`${pw}/builds`, `${lw}/builds`, pr.arch);
      assert.ok(names.includes("metal") && names.includes("aws"), names.join(","));
      // Worker output came through the logs API, prefixed per stage.
      assert.match(p.stdout, /\[base [^\]]*\] .*fake-cosa/);
      // Nothing left on the podman host.
      assert.deepEqual(await leftovers(podman, pr.runId), {
        containers: [],
        volumes: [],
        secrets: [],
      });
      // The work dir holds only what the run created (the relay's state dir and the run state).
      const state = [".gangplank-relay", ".gangplank-run.json"];
      assert.deepEqual(
        [...Deno.readDirSync(pw)].map((e) => e.name).filter((n) => !state.includes(n)).sort(),
        ["builds", "logs"],
      );
    },
  );

  await t.step("a failing stage: same exit behaviour as the local backend", async () => {
    await using tmp = await tempDir("gp-e2e-podman-fail-");
    await Deno.writeTextFile(`${tmp.path}/job.yaml`, FAILING);
    const run = (script: string, dir: string, extra: string[]) =>
      runScript(script, [
        "-s",
        `${tmp.path}/job.yaml`,
        "-w",
        `${tmp.path}/${dir}`,
        "--report",
        `${tmp.path}/${dir}.json`,
        ...extra,
      ], { env: scriptEnv(), cwd: tmp.path, timeoutMs: 300_000 });
    const [p, l] = await Promise.all([
      run("podman_run.ts", "podman", common),
      run("submit.ts", "local", []),
    ]);
    assert.notEqual(p.code, 0, p.stdout + p.stderr);
    assert.equal(p.code, l.code, `podman:\n${p.stdout}${p.stderr}\nlocal:\n${l.stdout}${l.stderr}`);
    const pr = JSON.parse(await Deno.readTextFile(`${tmp.path}/podman.json`));
    const lr = JSON.parse(await Deno.readTextFile(`${tmp.path}/local.json`));
    const shape = (r: { stages: { id: string; result: string; exitCode: number | null }[] }) =>
      r.stages.map((s) => [s.id, s.result, s.exitCode]);
    assert.deepEqual(shape(pr), shape(lr));
    assert.deepEqual(shape(pr)[1], ["broken", "failed", 7]);
    assert.equal(pr.error?.stageId, "broken");
    assert.match(p.stdout, /about to fail/);
    assert.doesNotMatch(p.stdout, /must not run/);
    assert.deepEqual(await leftovers(podman, pr.runId), {
      containers: [],
      volumes: [],
      secrets: [],
    });
  });

  await t.step("SIGINT mid-run: exit 130 and no container, volume or secret left", async () => {
    await using tmp = await tempDir("gp-e2e-podman-int-");
    await Deno.writeTextFile(`${tmp.path}/job.yaml`, SLOW);
    const s = spawnScript(
      "podman_run.ts",
      ["-s", `${tmp.path}/job.yaml`, "-w", `${tmp.path}/w`, ...common],
      scriptEnv(),
      tmp.path,
    );
    let runId: string | undefined;
    try {
      await waitFor(() => s.output().includes("slow-stage-started"), {
        timeoutMs: 120_000,
        what: "the slow stage to start",
      });
      // Other tests on this machine may run containers too: look at this run's only.
      runId = s.output().match(/run (gp-[0-9a-f-]+):/)?.[1];
      assert.ok(runId, s.output());
      const running = await leftovers(podman, runId);
      assert.equal(running.containers.length, 1, s.output());
      assert.equal(running.volumes.length, 1, s.output());
      assert.equal(running.secrets.length, 1, s.output());
      const t0 = Date.now();
      s.child.kill("SIGINT");
      const r = await within(s, 30_000, "podman-run after SIGINT");
      assert.equal(r.code, 130, r.out);
      assert.ok(Date.now() - t0 < 30_000);
      assert.deepEqual(
        await leftovers(podman, runId),
        { containers: [], volumes: [], secrets: [] },
        r.out,
      );
    } finally {
      try {
        s.child.kill("SIGKILL");
      } catch { /* already gone */ }
      await s.done;
      if (runId) await removeRun(podman, runId);
    }
  });

  await t.step(
    "-S bind-mounts the srv dir; nothing the run did not create is deleted",
    async () => {
      await using tmp = await tempDir("gp-e2e-podman-srv-");
      const srv = `${tmp.path}/srv`;
      const work = `${tmp.path}/work`;
      await Deno.mkdir(srv);
      await Deno.mkdir(`${work}/source`, { recursive: true });
      await Deno.writeTextFile(`${srv}/keep-me.txt`, "mine\n");
      await Deno.writeTextFile(`${work}/source/keep-me-too.txt`, "mine too\n");
      await Deno.writeTextFile(
        `${tmp.path}/job.yaml`,
        `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: one
    execution_order: 1
    commands: ["echo from-stage > from-stage.txt; cat keep-me.txt"]
`,
      );
      const r = await runScript("podman_run.ts", [
        "-s",
        `${tmp.path}/job.yaml`,
        "-w",
        work,
        "-S",
        srv,
        "--user",
        "root",
        ...common,
      ], { env: scriptEnv(), cwd: tmp.path, timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /\[one [^\]]*\] mine$/m);
      assert.equal(await Deno.readTextFile(`${srv}/from-stage.txt`), "from-stage\n");
      assert.equal(await Deno.readTextFile(`${srv}/keep-me.txt`), "mine\n");
      assert.equal(await Deno.readTextFile(`${work}/source/keep-me-too.txt`), "mine too\n");
    },
  );

  await t.step("without -w a NEW work dir is created, never the current directory", async () => {
    await using tmp = await tempDir("gp-e2e-podman-cwd-");
    await Deno.writeTextFile(`${tmp.path}/precious.txt`, "x");
    await Deno.writeTextFile(
      `${tmp.path}/job.yaml`,
      `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: one
    execution_order: 1
    commands: ["true"]
`,
    );
    const r = await runScript("podman_run.ts", ["-s", "job.yaml", ...common], {
      env: scriptEnv(),
      cwd: tmp.path,
      timeoutMs: 180_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const m = (r.stdout + r.stderr).match(/work dir (\S+)/);
    assert.ok(m, r.stderr);
    assert.ok(m[1].startsWith(`${tmp.path}/gangplank-run-`), m[1]);
    assert.ok((await Deno.stat(`${m[1]}/logs`)).isDirectory);
    const top = [...Deno.readDirSync(tmp.path)].map((e) => e.name).sort();
    assert.deepEqual(top.filter((n) => !n.startsWith("gangplank-run-")), [
      "job.yaml",
      "precious.txt",
    ]);
  });

  await t.step(
    "submit --backend podman: --image, -e, --env-file, overrides and -m all reach the worker",
    async () => {
      await using tmp = await tempDir("gp-e2e-podman-inputs-");
      await Deno.writeTextFile(`${tmp.path}/fix.rpm`, "RPM\n");
      await Deno.writeTextFile(`${tmp.path}/w.env`, "GP_FROM_FILE=file-value\n");
      await Deno.writeTextFile(
        `${tmp.path}/job.yaml`,
        `
stages:
  - id: inputs
    overrides: [{ uri: "file://fix.rpm", rpm: true }]
    commands:
      - "env > seen-env.txt; cat /srv/overrides/rpm/fix.rpm > seen-rpm.txt"
    return_files: [seen-env.txt, seen-rpm.txt]
`,
      );
      // -m: an external store (a relay of the test's own, with its own credentials).
      await Deno.mkdir(`${tmp.path}/store`);
      await using store = await startRelay({ root: `${tmp.path}/store`, port: 0 });
      await writeRelayConfig(`${tmp.path}/minio.json`, store.config());
      const r = await runInProcess("submit", submit, [
        "-s",
        "job.yaml",
        "--backend",
        "podman",
        "--remote",
        remote,
        "--image",
        TEST_WORKER_IMAGE,
        "-e",
        "GP_FROM_E=e-value",
        "--env-file",
        "w.env",
        "-m",
        "minio.json",
        "-w",
        "work",
      ], { cwd: tmp.path, env: scriptEnv(), timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /using the external S3 endpoint/);
      const found = new Map<string, string>();
      const walk = (d: string) => {
        for (const e of Deno.readDirSync(d)) {
          if (e.isDirectory) walk(`${d}/${e.name}`);
          else if (e.name.startsWith("seen-")) found.set(e.name, `${d}/${e.name}`);
        }
      };
      walk(`${tmp.path}/store`);
      assert.ok(found.has("seen-env.txt") && found.has("seen-rpm.txt"), [...found].join(", "));
      assert.equal(await Deno.readTextFile(found.get("seen-rpm.txt")!), "RPM\n");
      const env = await Deno.readTextFile(found.get("seen-env.txt")!);
      assert.match(env, /^GP_FROM_E=e-value$/m);
      assert.match(env, /^GP_FROM_FILE=file-value$/m);
      assert.doesNotMatch(env, /RELAY_SECRET/);
      // --image was used: the default image is not on this host and cannot be pulled here, so
      // ignoring it (the old bug) fails the run at the image check.
    },
  );

  await t.step("--cleanup removes what an interrupted run left (by label)", async () => {
    // Simulate a run killed -9 mid-stage: its container and volume stay behind.
    const runId = `gp-test-${crypto.randomUUID().slice(0, 6)}`;
    const signal = AbortSignal.timeout(30_000);
    const labels = { "gangplank.run-id": runId };
    await podman.createVolume(`gangplank-${runId}-0-srv`, { signal, labels });
    const id = await podman.createContainer({
      image: TEST_WORKER_IMAGE,
      name: `gangplank-${runId}-worker-0`,
      command: ["/bin/sleep", "120"],
      labels,
    }, { signal });
    await podman.startContainer(id, { signal });
    await podman.createSecret(`gangplank-${runId}-0-cosa-relay-secret-key`, "x", { signal });
    const r = await runScript("podman_run.ts", ["--cleanup", "--run-id", runId, ...common], {
      env: scriptEnv(),
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /removed 1 container\(s\), 1 volume\(s\), 1 secret\(s\)/);
    assert.deepEqual(await leftovers(podman, runId), { containers: [], volumes: [], secrets: [] });
  });

  await t.step(
    "--cleanup without --run-id leaves a run whose coordinator lives alone",
    async () => {
      // A dead run's leftovers: labelled with a coordinator on this host that no longer runs.
      const deadRun = `gp-test-${crypto.randomUUID().slice(0, 6)}`;
      const signal = AbortSignal.timeout(30_000);
      const gone = new Deno.Command("true").spawn();
      await gone.status;
      const deadLabels = {
        "gangplank.run-id": deadRun,
        "gangplank.coordinator": `${hostname()}/${gone.pid}/1`,
      };
      await podman.createVolume(`gangplank-${deadRun}-0-srv`, { signal, labels: deadLabels });
      await podman.createContainer({
        image: TEST_WORKER_IMAGE,
        name: `gangplank-${deadRun}-worker-0`,
        command: ["/bin/sleep", "120"],
        labels: deadLabels,
      }, { signal });
      // A live run: podman-run with a slow stage.
      await using tmp = await tempDir("gp-e2e-podman-live-");
      await Deno.writeTextFile(`${tmp.path}/job.yaml`, SLOW);
      const s = spawnScript(
        "podman_run.ts",
        ["-s", `${tmp.path}/job.yaml`, "-w", `${tmp.path}/w`, ...common],
        scriptEnv(),
        tmp.path,
      );
      let liveRun: string | undefined;
      try {
        await waitFor(() => s.output().includes("slow-stage-started"), {
          timeoutMs: 120_000,
          what: "the slow stage to start",
        });
        liveRun = s.output().match(/run (gp-[0-9a-f-]+):/)?.[1];
        assert.ok(liveRun, s.output());
        const before = await leftovers(podman, liveRun);
        assert.equal(before.containers.length, 1, s.output());
        const r = await runScript("podman_run.ts", ["--cleanup", ...common], {
          env: scriptEnv(),
          timeoutMs: 60_000,
        });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        // The dead run is gone; the live run keeps its container, volume and secrets.
        assert.deepEqual(await leftovers(podman, deadRun), {
          containers: [],
          volumes: [],
          secrets: [],
        });
        assert.deepEqual(await leftovers(podman, liveRun), before);
        assert.match(
          r.stdout,
          new RegExp(`left run ${liveRun}: its coordinator \\(pid \\d+\\) is still running`),
        );
        // And the live run still finishes its way (interrupted here) and removes its own.
        s.child.kill("SIGTERM");
        const end = await within(s, 60_000, "the interrupted run to end");
        assert.equal(end.code, 143, end.out);
        assert.deepEqual(await leftovers(podman, liveRun), {
          containers: [],
          volumes: [],
          secrets: [],
        });
      } finally {
        try {
          s.child.kill("SIGKILL");
        } catch { /* ended */ }
        await s.done;
        if (liveRun) await removeRun(podman, liveRun);
        await removeRun(podman, deadRun);
      }
    },
  );
});
