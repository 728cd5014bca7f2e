/**
 * PodmanExecutor against a real `podman system service`: the relay secret travels as a podman
 * secret file (never visible in `podman inspect`), abort removes everything, an image without
 * deno/the worker is refused with a clear error.
 */
import assert from "node:assert/strict";
import { PodmanExecutor, WorkerImageError } from "../../lib/executors/podman.ts";
import { PodmanClient } from "../../lib/podman/mod.ts";
import { LABEL_RUN_ID } from "../../lib/workspec/mod.ts";
import { waitFor } from "../_helpers/mod.ts";
import {
  BUSYBOX_TEST_IMAGE,
  ensureTestImage,
  podmanMissing,
  startPodmanService,
} from "../_helpers/podman.ts";
import { leftovers } from "../e2e/_podman_helpers.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/podman/executor_test.ts: ${missing}`);

const SECRET = "relay-secret-value-0123456789abcdef";

Deno.test({
  name: "PodmanExecutor against a real podman service",
  ignore: missing !== undefined,
}, async (t) => {
  const image = await ensureTestImage();
  await ensureTestImage({ minimal: true });
  await using svc = await startPodmanService();
  const podman = PodmanClient.unix(svc.socketPath);
  const host = { kind: "unix" as const, socketPath: svc.socketPath };
  const signal = AbortSignal.timeout(180_000);

  await t.step("arch from podman info; relay endpoint unchanged locally", async () => {
    await using exec = new PodmanExecutor({ host, image });
    const ep = await exec.prepare({ host: "127.0.0.1", port: 1234 }, { runId: "r0", signal });
    assert.deepEqual(ep, { host: "127.0.0.1", port: 1234 });
    assert.equal(await exec.arch({ signal }), Deno.build.arch);
  });

  await t.step("the relay secret is a 0400 file for the worker, absent from inspect", async () => {
    const runId = `gp-test-${crypto.randomUUID().slice(0, 6)}`;
    const logs: string[] = [];
    await using exec = new PodmanExecutor({
      host,
      image,
      log: (l) => logs.push(l),
      extraSpec: {
        entrypoint: ["/bin/sh", "-c"],
        command: [
          'id -u; ls -l "$COSA_RELAY_SECRET_FILE"; cat "$COSA_RELAY_SECRET_FILE"; echo; ' +
          "echo ready; sleep 30",
        ],
      },
    });
    await exec.prepare({ host: "127.0.0.1", port: 1 }, { runId, signal });
    const lines: string[] = [];
    const ctl = new AbortController();
    let inspected = "";
    const outcome = exec.runStage({
      runId,
      stageId: "secret-check",
      stageIndex: 0,
      env: { VISIBLE: "yes" },
      secretEnv: { COSA_RELAY_SECRET_KEY: SECRET },
      onLine: (l) => lines.push(l),
      signal: ctl.signal,
    });
    await waitFor(() => lines.includes("ready"), { timeoutMs: 60_000, what: "ready" });
    const [c] = await podman.listContainers({ signal, labels: { [LABEL_RUN_ID]: runId } });
    inspected = JSON.stringify(await podman.inspectContainer(c.Id, { signal }));
    ctl.abort();
    const o = await outcome;
    assert.deepEqual(o, { exitCode: 137, reason: "cancelled" });
    assert.equal(lines[0], "1000");
    assert.match(lines[1], /^-r-------- .* \/run\/secrets\/gangplank-relay-secret-key$/);
    assert.equal(lines[2], SECRET);
    assert.ok(inspected.includes("VISIBLE=yes"), "inspect shows the plain env");
    assert.ok(!inspected.includes(SECRET), "inspect must not show the secret");
    assert.deepEqual(await leftovers(podman, runId), {
      containers: [],
      volumes: [],
      secrets: [],
    });
  });

  await t.step("an image without deno and the worker is refused clearly", async () => {
    await using exec = new PodmanExecutor({ host, image: BUSYBOX_TEST_IMAGE, mountWorker: false });
    const err = await exec.prepare({ host: "127.0.0.1", port: 1 }, { runId: "r1", signal })
      .catch((e) => e);
    assert.ok(err instanceof WorkerImageError, String(err));
    assert.match(err.message, /needs deno at \/usr\/local\/bin\/deno and the bundled worker/);
    assert.match(err.message, /Containerfile/);
    assert.deepEqual(await leftovers(podman, "r1"), {
      containers: [],
      volumes: [],
      secrets: [],
    });
  });

  await t.step("a missing image that cannot be pulled is refused clearly", async () => {
    await using exec = new PodmanExecutor({ host, image: "localhost/no-such-image:x" });
    const err = await exec.prepare({ host: "127.0.0.1", port: 1 }, { runId: "r2", signal })
      .catch((e) => e);
    assert.ok(err instanceof WorkerImageError, String(err));
    assert.match(err.message, /localhost\/no-such-image:x is not on .* cannot be pulled/);
  });
});
