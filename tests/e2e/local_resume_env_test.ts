/**
 * `submit --resume` and the workers' environment (`-e`, `--env-file`), end to end with local
 * workers: a resume with the same settings skips what is done; a changed value re-runs every
 * stage that ran with it (their outputs could depend on it) and the dry run says why; the run
 * state never holds a value, in clear or as a digest anyone could recompute.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { tempDir } from "../_helpers/mod.ts";
import { listTree, runSubmit, stillAlive } from "./_local_helpers.ts";
import { JOB_HEAD, submitEnv } from "./_local_jobs.ts";

const JOB = `${JOB_HEAD}stages:
  - id: base
    execution_order: 1
    build_artifacts: [base]
    commands:
      - 'mkdir -p notes && echo "flavour=$GP_FLAVOUR" > notes/flavour.txt'
    return_files: [notes/flavour.txt]
  - id: metal
    execution_order: 2
    require_artifacts: [ostree]
    build_artifacts: [metal]
`;

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

Deno.test("resume e2e: a changed --env-file value re-runs the stages that ran with it; the state holds no value", async () => {
  await using tmp = await tempDir("gp-resume-env-");
  const dir = tmp.path;
  await Deno.mkdir(`${dir}/tmp`);
  await Deno.writeTextFile(`${dir}/job.yaml`, JOB);
  const workDir = `${dir}/work`;
  const stateHome = `${dir}/xdg-state`;
  const env = { ...submitEnv(`${dir}/tmp`), XDG_STATE_HOME: stateHome };
  const envFile = `${dir}/build.env`;
  const submit = (args: string[]) => runSubmit(args, { env, timeoutMs: 120_000 });
  const plan = async (extra: string[]) => {
    const r = await submit(["--resume", workDir, "--dry-run", "-o", "json", ...extra]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return JSON.parse(r.stdout).resume.stages.map((
      s: { id: string; run: boolean; reason: string },
    ) => `${s.id}: ${s.run ? s.reason : "skip"}`);
  };

  await Deno.writeTextFile(
    envFile,
    "# build settings\nGP_FLAVOUR=blue~1\nexport GP_PIN=pin~4821\n",
  );
  const first = await submit(["-s", `${dir}/job.yaml`, "-w", workDir, "--env-file", envFile]);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const flavour = `${workDir}/builds/cache/notes/flavour.txt`;
  assert.equal(await Deno.readTextFile(flavour), "flavour=blue~1\n");

  // The state has names, never values: not in clear, not as a digest of the value alone.
  const stateFile = `${workDir}/.gangplank-run.json`;
  const checkState = async (values: string[]) => {
    const text = await Deno.readTextFile(stateFile);
    assert.match(text, /"GP_PIN"/);
    for (const v of values) {
      for (const needle of [v, sha(v), sha(`GP_PIN=${v}`), sha(`GP_FLAVOUR=${v}`)]) {
        assert.ok(!text.includes(needle), `${needle} in the run state`);
      }
    }
  };
  await checkState(["pin~4821", "blue~1"]);
  // The digest key is the user's, outside the work dir, private.
  const key = `${stateHome}/gangplank/env-digest.key`;
  assert.equal(Deno.statSync(key).mode! & 0o777, 0o600);
  assert.deepEqual(listTree(workDir).filter((f) => f.includes("key")), []);

  // Same values (other order, -e instead of the file): nothing to do.
  assert.deepEqual(await plan(["-e", "GP_PIN=pin~4821", "-e", "GP_FLAVOUR=blue~1"]), [
    "base: skip",
    "metal: skip",
  ]);
  // Resumed without them: every stage ran with them, so every stage runs again.
  assert.deepEqual(await plan([]), [
    "base: environment changed: GP_FLAVOUR (removed), GP_PIN (removed)",
    "metal: environment changed: GP_FLAVOUR (removed), GP_PIN (removed)",
  ]);

  await Deno.writeTextFile(envFile, "GP_FLAVOUR=red~2\nGP_PIN=pin~4821\n");
  assert.deepEqual(await plan(["--env-file", envFile]), [
    "base: environment changed: GP_FLAVOUR",
    "metal: environment changed: GP_FLAVOUR",
  ]);
  const r = await submit([
    "--resume",
    workDir,
    "--env-file",
    envFile,
    "--report",
    `${dir}/resumed.json`,
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(stillAlive(r.seen), []);
  const report = JSON.parse(await Deno.readTextFile(`${dir}/resumed.json`));
  assert.deepEqual(report.stages.map((s: { id: string; result: string }) => s.result), [
    "succeeded",
    "succeeded",
  ]);
  // What the stage built now reflects the new value: skipping it would have kept "blue~1".
  assert.equal(await Deno.readTextFile(flavour), "flavour=red~2\n");
  await checkState(["pin~4821", "blue~1", "red~2"]);
  assert.deepEqual(await plan(["--env-file", envFile]), ["base: skip", "metal: skip"]);
});
