/**
 * Two runs into one work dir, as subprocesses the way users start them: exactly one runs; the
 * other — started at the same moment, or later as a fresh run, a `--resume` or a
 * `--resume --dry-run` of the live run — exits 2 at once with one line naming the dir and the
 * holder's pid, and leaves the work dir byte for byte as it was. The winner's third stage
 * waits quietly meanwhile, so that nothing of the winner's changes the tree either.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { tempDir, treeSnapshot as snapshot } from "../_helpers/mod.ts";
import { runSubmit, stillAlive, type SubmitRun } from "./_local_helpers.ts";
import { markerJob, submitEnv } from "./_local_jobs.ts";

Deno.test("work dir lock e2e: two submits racing on one -w: one runs, every other exits 2 changing nothing", async () => {
  await using tmp = await tempDir("gp-lock-");
  const dir = tmp.path;
  await Deno.mkdir(`${dir}/tmp`);
  const spec = `${dir}/job.yaml`;
  const marker = `${dir}/MARKER`;
  const workDir = `${dir}/work`;
  // The third stage waits for the marker to go without tracing its loop: it writes nothing
  // while it waits (and ends by itself when the temp dir goes, should the test fail).
  const wait = `while test -e ${marker}; do sleep 0.2; done`;
  await Deno.writeTextFile(spec, markerJob(marker, "wait").replace(wait, `set +x; ${wait}`));
  await Deno.writeTextFile(marker, "");
  const env = submitEnv(`${dir}/tmp`);
  let onStarted: () => void = () => {};
  const started = new Promise<void>((r) => (onStarted = r));
  const run = (args: string[], report: string) =>
    runSubmit([...args, "--report", `${dir}/${report}.json`], {
      env,
      timeoutMs: 120_000,
      interruptWhen: (out) => {
        if (out.includes("] third-stage-started")) onStarted();
        return undefined;
      },
    });
  const runs = ["a", "b"].map((name) =>
    run(["-s", spec, "-w", workDir], name).then((r) => ({ name, r }))
  );
  // The winner waits on the marker: the first to end is the loser.
  const first = await Promise.race(runs);
  const loser = first.r;
  const [winnerName, winnerRun] = first.name === "a" ? ["b", runs[1]] : ["a", runs[0]];
  assert.equal(loser.code, 2, loser.stdout + loser.stderr);
  await started;
  const holder = JSON.parse(await Deno.readTextFile(`${workDir}/.gangplank-run.lock`));
  assert.equal(typeof holder.pid, "number");
  const busy = (r: SubmitRun, flag: string) => {
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.deepEqual(r.stderr.trimEnd().split("\n"), [
      `submit: ${flag}: work dir ${workDir} is in use by run ${holder.runId} (coordinator pid ${holder.pid} on ${holder.host}, since ${holder.since}); wait for it to end or stop it`,
    ]);
  };
  busy(loser, `-w ${workDir}`);

  // While the winner runs: a fresh run, a resume and a resume's dry run are refused alike.
  const before = snapshot(workDir);
  busy(await run(["-s", spec, "-w", workDir], "c"), `-w ${workDir}`);
  busy(await run(["--resume", workDir], "d"), `--resume ${workDir}`);
  busy(await run(["--resume", workDir, "--dry-run"], "e"), `--resume ${workDir}`);
  assert.equal(snapshot(workDir), before);
  assert.deepEqual(
    [first.name, "c", "d", "e"].filter((r) => existsSync(`${dir}/${r}.json`)),
    [],
  );

  await Deno.remove(marker);
  const winner = (await winnerRun).r;
  assert.equal(winner.code, 0, winner.stdout + winner.stderr);
  assert.deepEqual(stillAlive(winner.seen), []);
  const report = JSON.parse(await Deno.readTextFile(`${dir}/${winnerName}.json`));
  assert.equal(report.runId, holder.runId);
  // One run wrote the logs: each stage's log has one run header, the winner's.
  for (const s of ["base", "metal", "metal4k", "finalize"]) {
    const log = await Deno.readTextFile(`${workDir}/logs/${s}.log`);
    assert.deepEqual(log.match(/=== run gp-[0-9a-f-]+/g), [`=== run ${holder.runId}`]);
  }
  // The lock went with its run.
  assert.throws(() => Deno.statSync(`${workDir}/.gangplank-run.lock`), Deno.errors.NotFound);
});
