/**
 * End to end, podman backend on a "remote" host over SSH: an sshd started by the test on a
 * loopback port, `CONTAINER_HOST=ssh://root@127.0.0.1:PORT/<socket of a test podman service>`.
 * The worker image carries deno and the worker (`--worker-source image`; the stock source on a
 * remote host is podman_stock_remote_test.ts). Workers get the far end of the SSH remote
 * forward (a port sshd picks), so a run only passes when the forward carries the relay
 * traffic; the forward's counters are checked too.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { join } from "node:path";
import { PodmanClient } from "../../lib/podman/mod.ts";
import { decodeWorkSpec } from "../../lib/workspec/mod.ts";
import { ROOT, sha256File, tempDir, waitFor } from "../_helpers/mod.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { sshdMissing, startSshd } from "../_helpers/sshd.ts";
import { leftovers, removeRun, scriptEnv, spawnScript, within } from "./_podman_helpers.ts";
import { isRunning } from "../_helpers/procs.ts";

const missing = podmanMissing() ?? sshdMissing();
if (missing) console.log(`SKIP tests/e2e/podman_remote_test.ts: ${missing}`);

const SLOW = `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: slow
    execution_order: 1
    commands: ["echo slow-stage-started; sleep 120"]
`;

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

const alive = isRunning;

Deno.test({
  name: "podman e2e (remote host over SSH)",
  ignore: missing !== undefined,
}, async (t) => {
  await ensureTestImage();
  await using svc = await startPodmanService();
  // The test's own view of the "remote" podman host, to assert what is left on it.
  const podman = PodmanClient.unix(svc.socketPath);

  await t.step("demo JobSpec: relay traffic goes through the SSH remote forward", async () => {
    await using sshd = await startSshd();
    await using tmp = await tempDir("gp-e2e-remote-");
    const env = scriptEnv({
      CONTAINER_HOST: `ssh://root@127.0.0.1:${sshd.port}${svc.socketPath}`,
      CONTAINER_SSHKEY: sshd.userKeyPath,
    });
    const s = spawnScript(
      "podman_run.ts",
      [
        "-s",
        `${ROOT}/examples/demo.jobspec.yaml`,
        "-i",
        TEST_WORKER_IMAGE,
        "--worker-source",
        "image",
        "-w",
        `${tmp.path}/w`,
        "--known-hosts",
        sshd.knownHostsPath,
        "--report",
        `${tmp.path}/report.json`,
      ],
      env,
      tmp.path,
    );
    const r = await within(s, 300_000, "remote demo run");
    assert.equal(r.code, 0, r.out);
    const report = JSON.parse(await Deno.readTextFile(`${tmp.path}/report.json`));
    const fwd = r.out.match(/relay forwarded to 127\.0\.0\.1 127\.0\.0\.1:(\d+) over SSH/);
    assert.ok(fwd, r.out);
    const remotePort = Number(fwd[1]);
    assert.notEqual(remotePort, report.relay.port, "workers must not get the relay's own port");
    const carried = r.out.match(/SSH forward carried (\d+) connection\(s\): (\d+) bytes to/);
    assert.ok(carried, r.out);
    assert.ok(Number(carried[1]) >= 5, `connections through the forward: ${carried[1]}`);
    assert.ok(Number(carried[2]) > 10_000, `bytes through the forward: ${carried[2]}`);
    // Artifacts arrived intact.
    const builds = `${tmp.path}/w/builds`;
    const id = JSON.parse(await Deno.readTextFile(`${builds}/builds.json`)).builds[0].id;
    const meta = JSON.parse(
      await Deno.readTextFile(join(builds, id, report.arch, "meta.json")),
    );
    for (const img of Object.values(meta.images) as { path: string; sha256: string }[]) {
      assert.equal(await sha256File(join(builds, id, report.arch, img.path)), img.sha256);
    }
    assert.ok(Object.keys(meta.images).length >= 4);
    assert.equal(await portAccepts(remotePort), false, "the forward is closed after the run");
    assert.deepEqual(await leftovers(podman, report.runId), {
      containers: [],
      volumes: [],
      secrets: [],
    });
  });

  await t.step("an unknown host key is refused with its fingerprint; nothing started", async () => {
    await using sshd = await startSshd();
    await using tmp = await tempDir("gp-e2e-remote-hk-");
    await Deno.writeTextFile(`${tmp.path}/empty_known_hosts`, "");
    await Deno.writeTextFile(`${tmp.path}/job.yaml`, SLOW);
    const s = spawnScript(
      "podman_run.ts",
      [
        "-s",
        `${tmp.path}/job.yaml`,
        "-i",
        TEST_WORKER_IMAGE,
        "--worker-source",
        "image",
        "-w",
        `${tmp.path}/w`,
        "--known-hosts",
        `${tmp.path}/empty_known_hosts`,
      ],
      scriptEnv({
        CONTAINER_HOST: `ssh://root@127.0.0.1:${sshd.port}${svc.socketPath}`,
        CONTAINER_SSHKEY: sshd.userKeyPath,
      }),
      tmp.path,
    );
    const r = await within(s, 60_000, "run with an unknown host key");
    assert.equal(r.code, 1, r.out);
    assert.ok(r.out.includes(sshd.hostFingerprint), r.out);
    assert.match(r.out, /host key of \[127\.0\.0\.1\]:\d+ is not known/);
    assert.doesNotMatch(r.out, /slow-stage-started/);
    assert.doesNotMatch(r.out, /run gp-/, "no run started");
  });

  await t.step(
    "sshd killed mid-run: the run fails promptly, no forward or container left",
    async () => {
      await using sshd = await startSshd();
      await using tmp = await tempDir("gp-e2e-remote-kill-");
      await Deno.writeTextFile(`${tmp.path}/job.yaml`, SLOW);
      const s = spawnScript(
        "podman_run.ts",
        [
          "-s",
          `${tmp.path}/job.yaml`,
          "-i",
          TEST_WORKER_IMAGE,
          "--worker-source",
          "image",
          "-w",
          `${tmp.path}/w`,
          "--known-hosts",
          sshd.knownHostsPath,
          "--keepalive",
          "2",
        ],
        scriptEnv({
          CONTAINER_HOST: `ssh://root@127.0.0.1:${sshd.port}${svc.socketPath}`,
          CONTAINER_SSHKEY: sshd.userKeyPath,
        }),
        tmp.path,
      );
      let survivors: number[] = [];
      let runId: string | undefined;
      try {
        await waitFor(() => s.output().includes("slow-stage-started"), {
          timeoutMs: 120_000,
          what: "the slow stage to start",
        });
        const fwd = s.output().match(/127\.0\.0\.1:(\d+) over SSH/);
        assert.ok(fwd, s.output());
        assert.equal(await portAccepts(Number(fwd[1])), true);
        runId = s.output().match(/run (gp-[0-9a-f-]+):/)?.[1];
        assert.ok(runId, s.output());
        assert.equal((await leftovers(podman, runId)).containers.length, 1);
        // The worker was told the forward's far end, not the relay's own address.
        const relayPort = Number(s.output().match(/relay listening on 127\.0\.0\.1:(\d+)/)?.[1]);
        const [c] = await podman.listContainers({
          signal: AbortSignal.timeout(10_000),
          labels: { "gangplank.run-id": runId },
        });
        const info = await podman.inspectContainer(c.Id, {
          signal: AbortSignal.timeout(10_000),
        }) as {
          Config: { Env: string[] };
        };
        const wsEnv = info.Config.Env.find((e) => e.startsWith("COSA_WORK_POD_JSON="));
        assert.ok(wsEnv);
        const ws = decodeWorkSpec(wsEnv.slice("COSA_WORK_POD_JSON=".length));
        assert.deepEqual([ws.relay?.host, ws.relay?.port], ["127.0.0.1", Number(fwd[1])]);
        assert.ok(relayPort > 0 && relayPort !== Number(fwd[1]));
        const t0 = Date.now();
        survivors = await sshd.killSshdOnly();
        const r = await within(s, 60_000, "podman-run after sshd died");
        const took = Date.now() - t0;
        assert.notEqual(r.code, 0, r.out);
        assert.match(r.out, /SSH \[127\.0\.0\.1\]:\d+: connection lost/);
        assert.ok(took < 30_000, `noticed after ${took} ms`);
        assert.equal(await portAccepts(Number(fwd[1])), false, "no forward left");
        // The cleanup guard on the "remote" removes the run's container, volume and secret.
        await waitFor(async () => {
          const now = await leftovers(podman, runId);
          return now.containers.length + now.volumes.length + now.secrets.length === 0;
        }, { timeoutMs: 60_000, intervalMs: 250, what: "the remote cleanup guard" });
        await waitFor(() => survivors.every((p) => !alive(p)), {
          timeoutMs: 30_000,
          what: "the cleanup guard to exit",
        });
      } finally {
        try {
          s.child.kill("SIGKILL");
        } catch { /* gone */ }
        await s.done;
        for (const p of survivors) {
          try {
            if (alive(p)) Deno.kill(p, "SIGKILL");
          } catch { /* gone */ }
        }
        if (runId) await removeRun(podman, runId);
      }
    },
  );
});
