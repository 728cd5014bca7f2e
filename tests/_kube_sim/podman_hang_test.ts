/**
 * The simulated kubelet in podman mode when a container start never returns: an OCI hook that
 * never ends leaves `podman run` waiting on conmon, `runc create` and `runc init` (the state
 * an interrupted suite run once left behind: conmon alive, no podman record). `close()` must
 * end every process it started and remove the container, within a bounded time. Skipped with
 * a visible warning where podman is not usable.
 */

import assert from "node:assert/strict";
import { startKubeApiServer } from "./api_server.ts";
import { clients } from "./_client.ts";
import { tempDir, waitFor } from "../_helpers/mod.ts";
import { BUSYBOX_TEST_IMAGE, ensureTestImage, podmanMissing } from "../_helpers/podman.ts";
import {
  cmdlineOf,
  commOf,
  descendants,
  processesMatching,
  seenNow,
  type SeenProcess,
  stillAlive,
} from "../_helpers/procs.ts";

const missing = podmanMissing();
if (missing) console.warn(missing);
const skipNote = missing ? ` (SKIPPED: ${missing})` : "";

/**
 * Whether podman has a record of container `name` (`podman ps` would wait for the lock the
 * hanging `podman run` holds; `container exists` does not).
 */
async function hasRecord(name: string): Promise<boolean> {
  const o = await new Deno.Command("podman", {
    args: ["container", "exists", name],
    stdout: "null",
    stderr: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  if (o.code > 1) throw new Error(`podman container exists ${name}: exit ${o.code}`);
  return o.code === 0;
}

Deno.test({
  name:
    `kube podman mode: close() ends a container start that never returns: no process, no container left${skipNote}`,
  ignore: !!missing,
  async fn() {
    await ensureTestImage({ minimal: true, signal: AbortSignal.timeout(120_000) });
    await using dir = await tempDir("kube-sim-hang-");
    const hookPid = `${dir.path}/hook.pid`;
    // A prestart hook that records its pid and never ends: runc create waits on it forever.
    Deno.writeTextFileSync(
      `${dir.path}/hang.json`,
      JSON.stringify({
        version: "1.0.0",
        hook: { path: "/bin/sh", args: ["sh", "-c", `echo $$ > ${hookPid}; exec sleep 3600`] },
        when: { always: true },
        stages: ["prestart"],
      }),
    );
    const pod = `hang-${crypto.randomUUID().slice(0, 8)}`;
    const prefix = `kube-sim-${pod}-`;
    const started: SeenProcess[] = [];
    const names: string[] = [];
    try {
      const kube = await startKubeApiServer({
        kubelet: { mode: "podman", network: "host", podmanGlobalArgs: ["--hooks-dir", dir.path] },
      });
      try {
        await clients(kube).core.createNamespacedPod({
          namespace: "default",
          body: {
            metadata: { name: pod },
            spec: {
              restartPolicy: "Never",
              containers: [{ name: "main", image: BUSYBOX_TEST_IMAGE, command: ["true"] }],
            },
          },
        });
        // The start hangs: the hook runs under runc create, under conmon.
        const hook = await waitFor(() => Number(Deno.readTextFileSync(hookPid).trim()) || 0, {
          what: "the hanging hook",
          timeoutMs: 60_000,
        });
        const conmon = processesMatching((c) => c.includes(` -n ${prefix}`))
          .filter((pid) => commOf(pid) === "conmon");
        assert.equal(conmon.length, 1, `one conmon for ${prefix}: ${conmon}`);
        const podmanRun = processesMatching((c) => c.includes(`--name ${prefix}`));
        assert.equal(podmanRun.length, 1, `one podman run for ${prefix}: ${podmanRun}`);
        names.push(cmdlineOf(podmanRun[0]).match(/--name (\S+)/)![1]);
        started.push(...[...podmanRun, ...conmon].map(seenNow), ...descendants(conmon[0]));
        assert.ok(started.some((p) => p.pid === hook), "the hook is under conmon");
        assert.ok(
          started.some((p) => p.cmd.endsWith("runc init")),
          started.map((p) => p.cmd).join("\n"),
        );
        assert.equal(stillAlive(started).length, started.length);
        assert.equal(await hasRecord(names[0]), true);
      } finally {
        const t0 = Date.now();
        await kube.close();
        const took = Date.now() - t0;
        assert.ok(took < 20_000, `close() took ${took} ms`);
      }
      assert.deepEqual(stillAlive(started).map((p) => `${p.pid} ${p.cmd}`), [], "left running");
      assert.equal(await hasRecord(names[0]), false, "container left");
    } finally {
      // Whatever this test started and close() left, so a failure leaves nothing behind.
      for (const p of stillAlive(started)) {
        try {
          Deno.kill(p.pid, "SIGKILL");
        } catch { /* gone */ }
      }
      for (const name of names) {
        await new Deno.Command("podman", {
          args: ["rm", "-f", "--ignore", "-t", "0", name],
          stdout: "null",
          stderr: "null",
          signal: AbortSignal.timeout(30_000),
        }).output();
      }
    }
  },
});
