/**
 * `--resume` of a run that still goes on is refused (the work dir's lock says it is alive, not a
 * pid probe); once that run is gone (`kill -9`), its left lock is no obstacle.
 */
import assert from "node:assert/strict";
import { loadResume } from "../../lib/cli/resume.ts";
import { parseSubmitArgs } from "../../lib/cli/submit_args.ts";
import { WORK_LOCK_FILE, WorkDirBusyError } from "../../lib/cli/work_lock.ts";
import { RUN_STATE_FILE, type RunState } from "../../lib/coordinator/resume.ts";
import { tempDir, treeSnapshot } from "../_helpers/mod.ts";
import { startLockHolder } from "./_lock_holder.ts";

function state(): RunState {
  return {
    version: 1,
    runId: "gp-1",
    backend: "local",
    arch: "x86_64",
    specYaml:
      'job: {}\nrecipe: {git_url: https://example.com/c.git}\nstages:\n  - id: a\n    commands: ["true"]\n',
    store: { external: false, bucket: "builder", keyPrefix: "" },
    objects: {},
    stages: {},
    updatedAt: new Date().toISOString(),
  };
}

Deno.test("--resume refuses a work dir a live run holds, naming it, changing nothing; after its kill -9 it resumes", async () => {
  await using tmp = await tempDir();
  const opts = parseSubmitArgs(["--resume", tmp.path], {});
  await Deno.writeTextFile(`${tmp.path}/${RUN_STATE_FILE}`, JSON.stringify(state()));
  // A separate process plays the coordinator that still runs: it holds the work dir's lock.
  await using holder = await startLockHolder(tmp.path);
  const before = treeSnapshot(tmp.path);
  const err = await loadResume(opts, tmp.path, () => {}).then(() => undefined, (e) => e);
  assert.ok(err instanceof WorkDirBusyError, String(err));
  assert.equal(err.exitCode, 2);
  assert.equal(err.holder?.pid, holder.pid);
  assert.match(
    err.message,
    new RegExp(
      `^--resume ${tmp.path}: work dir ${tmp.path} is in use by run gp-holder \\(coordinator pid ${holder.pid} on `,
    ),
  );
  assert.equal(treeSnapshot(tmp.path), before);

  // kill -9: the kernel dropped its lock; the file it left (naming the dead pid) does not stop
  // the resume, which reads the state and the recorded JobSpec.
  await holder.kill9();
  assert.equal(
    JSON.parse(await Deno.readTextFile(`${tmp.path}/${WORK_LOCK_FILE}`)).pid,
    holder.pid,
  );
  const r = await loadResume(opts, tmp.path, () => {});
  assert.equal(r.state.runId, "gp-1");
  assert.deepEqual(r.spec.stages.map((s) => s.id), ["a"]);
  // Looking changed nothing either (the resumed run takes the lock over itself).
  assert.equal(treeSnapshot(tmp.path), before);
});

Deno.test("--resume: a run that ended (no lock file) is no obstacle", async () => {
  await using tmp = await tempDir();
  await Deno.writeTextFile(`${tmp.path}/${RUN_STATE_FILE}`, JSON.stringify(state()));
  const r = await loadResume(parseSubmitArgs(["--resume", tmp.path], {}), tmp.path, () => {});
  assert.equal(r.workDir, tmp.path);
});
