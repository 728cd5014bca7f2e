/**
 * The run state file as a resume reads it, while many stages start and end at once: every
 * `started()`/`ended()` resolves only once the file on disk records that stage so, and the
 * writes of a group starting together are coalesced instead of queued one per stage.
 */
import assert from "node:assert/strict";
import { readRunState, type RunState, writeRunState } from "../../lib/coordinator/resume.ts";
import { RunStateTracker } from "../../lib/coordinator/run_state.ts";
import { stagesOf } from "../../lib/coordinator/plan_view.ts";
import { planJob } from "../../lib/plan/mod.ts";
import type { StageReport } from "../../lib/coordinator/report.ts";
import { tempDir } from "../_helpers/mod.ts";
import { spec } from "./_fakes.ts";

function fifty() {
  const s = spec(
    Array.from({ length: 50 }, (_, i) => ({
      id: `p${i + 1}`,
      execution_order: 1,
      commands: ["true"],
    })),
  );
  return { spec: s, stages: stagesOf(planJob(s)) };
}

function tracker(workDir: string, writes: RunState[]) {
  const { spec: s, stages } = fifty();
  const t = new RunStateTracker({
    workDir,
    runId: "gp-test",
    backend: "local",
    arch: "x86_64",
    spec: s,
    store: { external: false, bucket: "builder", keyPrefix: "" },
    stages,
    hash: () => Promise.resolve({ sha256: "ab".repeat(32), size: 4 }),
    warn: (l) => assert.fail(l),
    write: async (dir, state) => {
      writes.push(state);
      await writeRunState(dir, state);
    },
  });
  return { t, stages };
}

Deno.test("run state: 50 stages starting at once are each on disk as running when started() resolves, in a few writes", async () => {
  await using dir = await tempDir();
  const writes: RunState[] = [];
  const { t, stages } = tracker(dir.path, writes);
  await t.begin();
  const before = writes.length;
  await Promise.all(stages.map(async (s) => {
    await t.started(s);
    // What a resume would read at this moment (the worker is about to start).
    const onDisk = await readRunState(dir.path);
    assert.equal(onDisk.stages[s.id].result, "running", s.id);
  }));
  const n = writes.length - before;
  assert.ok(n >= 1 && n <= 3, `${n} writes for 50 stages starting at once`);
  assert.deepEqual(
    Object.values((await readRunState(dir.path)).stages).map((r) => r.result),
    Array(50).fill("running"),
  );
});

Deno.test("run state: a stage ending while a write is in flight is in the next write, with its outputs", async () => {
  await using dir = await tempDir();
  const writes: RunState[] = [];
  const { t, stages } = tracker(dir.path, writes);
  await t.begin();
  const starting = Promise.all(stages.map((s) => t.started(s)));
  const rep = (id: string): StageReport => ({
    id,
    index: 0,
    order: 1,
    result: "succeeded",
    exitCode: 0,
    durationMs: 1,
    waitMs: 0,
    bytesIn: 0,
    bytesOut: 4,
    artifacts: [],
    objects: [`${id}.txt`],
    logFile: "x.log",
  });
  // Ends racing the starts: each resolves with its own end on disk.
  await Promise.all(
    stages.slice(0, 10).map(async (s) => {
      await t.ended(s, rep(s.id));
      const onDisk = await readRunState(dir.path);
      assert.equal(onDisk.stages[s.id].result, "succeeded", s.id);
      assert.deepEqual(onDisk.stages[s.id].outputs, [`${s.id}.txt`]);
      assert.equal(onDisk.objects[`${s.id}.txt`]?.size, 4);
    }),
  );
  await starting;
  await t.finish();
  const last = await readRunState(dir.path);
  assert.equal(Object.values(last.stages).filter((r) => r.result === "succeeded").length, 10);
  assert.equal(Object.values(last.stages).filter((r) => r.result === "running").length, 40);
  assert.ok(writes.length < 20, `${writes.length} writes`);
});
