/**
 * Hop mode (`submit --remote-kubeconfig`) and the work dir lock. The submitting side holds the
 * lock on its local `-w` dir (where the hop log and the fetched results go) from before it
 * creates the hop pod until the end; the coordinator in the pod locks its own work dir, the pod's
 * emptyDir, which no other run can reach. So while a hop run goes on, a second run into the same
 * local dir — another hop run, a local run, a `--resume` — exits 2 at once with one line naming
 * the dir and the hop run's coordinator, creates nothing in the cluster and leaves the dir byte
 * for byte as it was.
 */
import assert from "node:assert/strict";
import { ROOT, runScript, tempDir, treeSnapshot } from "../_helpers/mod.ts";
import { runSubmit } from "../e2e/_local_helpers.ts";
import { startKubeApiServer } from "../_kube_sim/api_server.ts";
import { WORK_LOCK_FILE } from "../../lib/cli/work_lock.ts";

Deno.test("hop mode: while a hop run holds -w, a second hop, local or --resume run exits 2 naming it, changing nothing", async () => {
  await using tmp = await tempDir("gp-hop-lock-");
  const marker = `${tmp.path}/MARKER`;
  await Deno.writeTextFile(marker, "");
  await using kube = await startKubeApiServer({
    kubelet: {
      mode: "process",
      // The hop pod's coordinator stands in: says so, then waits (quietly) for the marker to go;
      // bounded, in case the test dies first.
      rewrite: (l) =>
        l.container === "coordinator"
          ? {
            ...l,
            command: [
              "/bin/sh",
              "-c",
              `echo hop-holding; i=0; while test -e ${marker} && [ $i -lt 1500 ]; do ` +
              `sleep 0.2; i=$((i+1)); done; echo hop-done`,
            ],
            args: [],
          }
          : undefined,
    },
  });
  const spec = `${ROOT}/examples/demo.jobspec.yaml`;
  const workDir = `${tmp.path}/work`;
  const hop = [
    "--remote-kubeconfig",
    kube.kubeconfigPath,
    "--image",
    "quay.io/example/gangplank:test",
    "--serviceaccount",
    "default",
  ];
  let onHolding: () => void = () => {};
  const holding = new Promise<void>((r) => (onHolding = r));
  const first = runSubmit(["-s", spec, "-w", workDir, ...hop], {
    cwd: tmp.path,
    timeoutMs: 180_000,
    interruptWhen: (out) => {
      if (out.includes("[hop] hop-holding")) onHolding();
      return undefined;
    },
  });
  // Should the hop run end before it holds (a failure), say why instead of waiting forever.
  await Promise.race([
    holding,
    first.then((r) => {
      throw new Error(`the hop run ended before its pod ran:\n${r.stdout}\n${r.stderr}`);
    }),
  ]);
  const holder = JSON.parse(await Deno.readTextFile(`${workDir}/${WORK_LOCK_FILE}`));
  assert.equal(typeof holder.pid, "number");
  assert.equal(kube.pods().length, 1, "the hop pod runs");
  const hopPod = kube.pods()[0].metadata.name;
  assert.ok(hopPod.includes(holder.runId), `${hopPod} is run ${holder.runId}'s`);

  const before = treeSnapshot(workDir);
  const writes = () => kube.requests.filter((q) => q.method !== "GET").length;
  const writesBefore = writes();
  const objects = () =>
    JSON.stringify([kube.pods(), kube.secrets()].map((l) => l.map((o) => o.metadata.name)));
  const objectsBefore = objects();
  const busy = async (args: string[], flag: string) => {
    const r = await runScript("submit.ts", args, { cwd: tmp.path, timeoutMs: 120_000 });
    assert.equal(r.code, 2, `${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
    assert.deepEqual(r.stderr.trimEnd().split("\n"), [
      `submit: ${flag}: work dir ${workDir} is in use by run ${holder.runId} (coordinator pid ${holder.pid} on ${holder.host}, since ${holder.since}); wait for it to end or stop it`,
    ]);
  };
  await busy(["-s", spec, "-w", workDir, ...hop], `-w ${workDir}`);
  await busy(["-s", spec, "-w", "work", ...hop], "-w work");
  await busy(["-s", spec, "-w", workDir], `-w ${workDir}`);
  await busy(["--resume", workDir], `--resume ${workDir}`);
  assert.equal(treeSnapshot(workDir), before, "the work dir is as it was");
  assert.equal(writes(), writesBefore, "no object created, changed or deleted in the cluster");
  assert.equal(objects(), objectsBefore);

  // The hop run goes on undisturbed and ends; its lock goes with it.
  await Deno.remove(marker);
  const r = await first;
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(await Deno.readTextFile(`${workDir}/logs/hop.log`), /^hop-holding\nhop-done$/m);
  assert.throws(() => Deno.statSync(`${workDir}/${WORK_LOCK_FILE}`), Deno.errors.NotFound);
  assert.equal(kube.pods().length, 0);
});
