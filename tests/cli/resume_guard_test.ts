import assert from "node:assert/strict";
import { hostname } from "node:os";
import { loadResume } from "../../lib/cli/resume.ts";
import { parseSubmitArgs } from "../../lib/cli/submit_args.ts";
import { RUN_STATE_FILE, type RunState } from "../../lib/coordinator/resume.ts";
import { processStart } from "../../lib/executors/local_cleanup.ts";
import { tempDir } from "../_helpers/mod.ts";

function state(coordinator?: RunState["coordinator"]): RunState {
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
    ...(coordinator ? { coordinator } : {}),
  };
}

Deno.test("--resume refuses a work dir whose coordinator still runs; a dead one is no obstacle", async () => {
  await using tmp = await tempDir();
  const opts = parseSubmitArgs(["--resume", tmp.path], {});
  const write = (s: RunState) =>
    Deno.writeTextFile(`${tmp.path}/${RUN_STATE_FILE}`, JSON.stringify(s));
  // This test process plays the coordinator that still runs.
  await write(state({ host: hostname(), pid: Deno.pid, start: processStart(Deno.pid)! }));
  await assert.rejects(
    loadResume(opts, tmp.path, () => {}),
    /run gp-1 is still running there \(coordinator pid \d+\); stop it or wait/,
  );
  // Same pid, another start time: the pid was reused, the coordinator is gone (kill -9).
  await write(state({ host: hostname(), pid: Deno.pid, start: "1" }));
  const r = await loadResume(opts, tmp.path, () => {});
  assert.equal(r.state.runId, "gp-1");
  assert.deepEqual(r.spec.stages.map((s) => s.id), ["a"]);
  // A run that ended has no coordinator record.
  await write(state());
  assert.equal((await loadResume(opts, tmp.path, () => {})).workDir, tmp.path);
});
