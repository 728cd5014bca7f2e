import assert from "node:assert/strict";
import type { RunJobOptions } from "../../lib/coordinator/run.ts";
import {
  decideResume,
  readRunState,
  RUN_STATE_FILE,
  type RunState,
} from "../../lib/coordinator/resume.ts";
import type { JobSpec } from "../../lib/jobspec/mod.ts";
import { planJob } from "../../lib/plan/mod.ts";
import { EnvDigest } from "../../lib/coordinator/env_digest.ts";
import { tempDir } from "../_helpers/mod.ts";
import { FakeExecutor, MemStore, runFake, spec } from "./_fakes.ts";

/**
 * A four-stage pipeline: `a` builds (qemu) and returns the cache, `b` consumes qemu, `c`
 * consumes qemu and builds metal, `d` consumes metal. Only `c` and `d` depend on `c`.
 */
function pipeline(cCommand = "echo c"): JobSpec {
  return spec([
    { id: "a", execution_order: 1, build_artifacts: ["base"], return_cache: true },
    { id: "b", execution_order: 2, require_artifacts: ["qemu"], commands: ["echo b"] },
    {
      id: "c",
      execution_order: 3,
      require_artifacts: ["qemu"],
      build_artifacts: ["metal"],
      commands: [cCommand],
    },
    { id: "d", execution_order: 4, require_artifacts: ["metal"], commands: ["echo d"] },
  ]);
}

const meta = (images: Record<string, string>) =>
  JSON.stringify({
    buildid: "1",
    images: Object.fromEntries(
      Object.entries(images).map(([n, p]) => [n, { path: p, sha256: "ab".repeat(32), size: 4 }]),
    ),
  });

/** Executor whose stages write into `store` like workers returning files; `c` may fail. */
function workers(store: MemStore, failC: { on: boolean }) {
  return new FakeExecutor((l) => {
    switch (l.stageId) {
      case "a":
        store.put("builds.json", JSON.stringify({ builds: [{ id: "1", arches: ["x86_64"] }] }));
        store.put("1/x86_64/meta.json", meta({ ostree: "o.tar", qemu: "q.qcow2" }));
        store.put("1/x86_64/q.qcow2", "qcow");
        store.put("1/x86_64/o.tar", "ostr");
        store.put("cache/cache.tar.gz", "cache");
        break;
      case "b":
        store.put("cache/b-report.txt", "b ok");
        break;
      case "c":
        if (failC.on) return Promise.resolve({ exitCode: 7 });
        store.put("1/x86_64/meta.json", meta({ ostree: "o.tar", qemu: "q.qcow2", metal: "m.raw" }));
        store.put("1/x86_64/m.raw", "metl");
        break;
      case "d":
        store.put("cache/d-report.txt", "d ok");
        break;
    }
    return Promise.resolve({ exitCode: 0 });
  });
}

function run(
  workDir: string,
  sp: JobSpec,
  store: MemStore,
  exec: FakeExecutor,
  extra: Partial<RunJobOptions> = {},
) {
  return runFake(workDir, sp, exec, { store, dependencyTimeoutMs: 2_000, ...extra });
}

Deno.test("resume: after a failed third stage only it and its dependents run; the others are skipped", async () => {
  await using tmp = await tempDir();
  const store = new MemStore();
  const failC = { on: true };
  const first = await run(tmp.path, pipeline(), store, workers(store, failC));
  assert.equal(first.r.exitCode, 1);
  assert.deepEqual(first.r.stages.map((s) => s.result), [
    "succeeded",
    "succeeded",
    "failed",
    "not-run",
  ]);
  const st = await Deno.stat(`${tmp.path}/${RUN_STATE_FILE}`);
  assert.equal(st.mode! & 0o777, 0o600);
  const state = await readRunState(tmp.path);
  assert.equal(state.stages.c.result, "failed");
  assert.equal(state.stages.d.result, "not-run");
  assert.deepEqual(state.stages.a.outputs.sort(), [
    "1/x86_64/meta.json",
    "1/x86_64/o.tar",
    "1/x86_64/q.qcow2",
    "builds.json",
    "cache/cache.tar.gz",
  ]);
  assert.equal(state.objects["1/x86_64/q.qcow2"].size, 4);
  assert.match(state.objects["1/x86_64/q.qcow2"].sha256, /^[0-9a-f]{64}$/);

  failC.on = false;
  const exec2 = workers(store, failC);
  const second = await run(tmp.path, pipeline(), store, exec2, { resume: state });
  assert.equal(second.r.exitCode, 0, second.lines.join("\n"));
  assert.deepEqual(exec2.launches.map((l) => l.stageId), ["c", "d"]);
  assert.deepEqual(second.r.stages.map((s) => s.result), [
    "skipped",
    "skipped",
    "succeeded",
    "succeeded",
  ]);
  assert.match(second.r.stages[0].reason!, /succeeded in run gp-/);
  assert.match(await Deno.readTextFile(`${tmp.path}/logs/a.log`), /skipped \(resume\)/);
  assert.match(await Deno.readTextFile(`${tmp.path}/logs/c.log`), /runs again \(resume\): failed/);
  // The state now records every stage as done: a second resume runs nothing.
  const exec3 = workers(store, failC);
  const third = await run(tmp.path, pipeline(), store, exec3, {
    resume: await readRunState(tmp.path),
  });
  assert.equal(third.r.exitCode, 0);
  assert.deepEqual(exec3.launches, []);
});

Deno.test("resume: an output changed or missing re-runs its stage and the stages consuming it", async () => {
  await using tmp = await tempDir();
  const store = new MemStore();
  await run(tmp.path, pipeline(), store, workers(store, { on: false }));
  const state = await readRunState(tmp.path);
  const plan = planJob(pipeline(), { assumeExisting: true });
  const hash = (k: string) => store.sha256("builder", k);
  const signal = new AbortController().signal;

  store.put("cache/b-report.txt", "tampered");
  let d = await decideResume({ state, spec: pipeline(), plan, hash, signal });
  assert.deepEqual([...d].map(([id, x]) => [id, x.run, x.reason]), [
    ["a", false, d.get("a")!.reason],
    ["b", true, "output changed: cache/b-report.txt"],
    ["c", false, d.get("c")!.reason],
    ["d", false, d.get("d")!.reason],
  ]);

  store.objects.delete("1/x86_64/m.raw");
  d = await decideResume({ state, spec: pipeline(), plan, hash, signal });
  assert.equal(d.get("c")!.reason, "output missing: 1/x86_64/m.raw");
  assert.equal(d.get("d")!.reason, "depends on c");
  assert.equal(d.get("a")!.run, false);

  store.put("1/x86_64/q.qcow2", "QCOW");
  d = await decideResume({ state, spec: pipeline(), plan, hash, signal });
  assert.equal(d.get("a")!.reason, "output changed: 1/x86_64/q.qcow2");
  assert.equal(d.get("b")!.reason, "output changed: cache/b-report.txt");
  assert.equal(d.get("c")!.reason, "output missing: 1/x86_64/m.raw");
  assert.equal(d.get("d")!.reason, "depends on c");
});

Deno.test("resume: a changed stage (or JobSpec around it) re-runs with its dependents", async () => {
  await using tmp = await tempDir();
  const store = new MemStore();
  await run(tmp.path, pipeline(), store, workers(store, { on: false }));
  const state = await readRunState(tmp.path);
  const signal = new AbortController().signal;
  const hash = (k: string) => store.sha256("builder", k);
  const changed = pipeline("echo c, differently");
  let d = await decideResume({
    state,
    spec: changed,
    plan: planJob(changed, { assumeExisting: true }),
    hash,
    signal,
  });
  assert.deepEqual([...d].map(([id, x]) => `${id}:${x.run ? x.reason : "skip"}`), [
    "a:skip",
    "b:skip",
    "c:spec changed",
    "d:depends on c",
  ]);
  const recipe = pipeline();
  recipe.recipe = { git_ref: "other-branch" };
  d = await decideResume({
    state,
    spec: recipe,
    plan: planJob(recipe, { assumeExisting: true }),
    hash,
    signal,
  });
  assert.ok([...d.values()].every((x) => x.run && x.reason === "spec changed"));
  const more = pipeline();
  more.stages.push({ id: "e", execution_order: 5, commands: ["echo e"] });
  d = await decideResume({
    state,
    spec: more,
    plan: planJob(more, { assumeExisting: true }),
    hash,
    signal,
  });
  // A new stage does not change the others' definitions.
  assert.deepEqual([...d].map(([id, x]) => `${id}:${x.run ? x.reason : "skip"}`), [
    "a:skip",
    "b:skip",
    "c:skip",
    "d:skip",
    "e:new stage",
  ]);
});

Deno.test("resume: the state on disk says a stage is running while its worker runs (kill -9 safe)", async () => {
  await using tmp = await tempDir();
  const store = new MemStore();
  const seen: Record<string, RunState["stages"][string]["result"]>[] = [];
  const inner = workers(store, { on: false });
  const exec = new FakeExecutor(async (l) => {
    const s = JSON.parse(await Deno.readTextFile(`${tmp.path}/${RUN_STATE_FILE}`)) as RunState;
    seen.push(Object.fromEntries(Object.entries(s.stages).map(([k, v]) => [k, v.result])));
    return await inner.behave(l);
  });
  await run(tmp.path, pipeline(), store, exec);
  assert.deepEqual(seen, [
    { a: "running", b: "not-run", c: "not-run", d: "not-run" },
    { a: "succeeded", b: "running", c: "not-run", d: "not-run" },
    { a: "succeeded", b: "succeeded", c: "running", d: "not-run" },
    { a: "succeeded", b: "succeeded", c: "succeeded", d: "running" },
  ]);
  const state = await readRunState(tmp.path);
  // What a kill -9 during c leaves: c "running" → a resume runs it again, "interrupted".
  state.stages.c.result = "running";
  const d = await decideResume({
    state,
    spec: pipeline(),
    plan: planJob(pipeline(), { assumeExisting: true }),
    hash: (k) => store.sha256("builder", k),
    signal: new AbortController().signal,
  });
  assert.equal(d.get("c")!.reason, "interrupted");
  assert.equal(d.get("d")!.reason, "depends on c");
  assert.equal(d.get("b")!.run, false);
});

Deno.test("resume: a work dir without a run state, or with a broken one, is a usage error", async () => {
  await using tmp = await tempDir();
  await assert.rejects(readRunState(tmp.path), /no run state \(\.gangplank-run\.json\)/);
  await Deno.writeTextFile(`${tmp.path}/${RUN_STATE_FILE}`, "{ torn");
  await assert.rejects(readRunState(tmp.path), /not JSON/);
  await Deno.writeTextFile(`${tmp.path}/${RUN_STATE_FILE}`, '{"version":9}');
  await assert.rejects(readRunState(tmp.path), /not a gangplank run state/);
});

Deno.test("resume: a changed -e/--env-file value re-runs every stage that ran with it; the state holds no value", async () => {
  await using tmp = await tempDir();
  const store = new MemStore();
  const key = crypto.getRandomValues(new Uint8Array(32));
  const env = (e: Record<string, string>) => ({ workerEnv: e, envDigest: new EnvDigest(e, key) });
  const failC = { on: true };
  const first = await run(
    tmp.path,
    pipeline(),
    store,
    workers(store, failC),
    env({ PIN: "~4821~", MODE: "~blue~" }),
  );
  assert.equal(first.r.exitCode, 1);
  const text = await Deno.readTextFile(`${tmp.path}/${RUN_STATE_FILE}`);
  assert.ok(!text.includes("~4821~") && !text.includes("~blue~"), text);

  // Same environment: only the failed stage and its dependent run.
  failC.on = false;
  const same = workers(store, failC);
  const second = await run(tmp.path, pipeline(), store, same, {
    resume: await readRunState(tmp.path),
    ...env({ MODE: "~blue~", PIN: "~4821~" }),
  });
  assert.equal(second.r.exitCode, 0, second.lines.join("\n"));
  assert.deepEqual(same.launches.map((l) => l.stageId), ["c", "d"]);
  assert.equal(same.launches[0].env.PIN, "~4821~");

  // One value changed: every stage ran with it, so every stage runs again, saying why.
  const changed = workers(store, failC);
  const third = await run(tmp.path, pipeline(), store, changed, {
    resume: await readRunState(tmp.path),
    ...env({ MODE: "~blue~", PIN: "~4822~" }),
  });
  assert.equal(third.r.exitCode, 0, third.lines.join("\n"));
  assert.deepEqual(changed.launches.map((l) => [l.stageId, l.env.PIN]), [
    ["a", "~4822~"],
    ["b", "~4822~"],
    ["c", "~4822~"],
    ["d", "~4822~"],
  ]);
  assert.match(
    await Deno.readTextFile(`${tmp.path}/logs/b.log`),
    /runs again \(resume\): environment changed: PIN\n/,
  );
  const state = await readRunState(tmp.path);
  const signal = new AbortController().signal;
  const decide = (e: Record<string, string>, k = key) =>
    decideResume({
      state,
      spec: pipeline(),
      plan: planJob(pipeline(), { assumeExisting: true }),
      hash: (x) => store.sha256("builder", x),
      env: new EnvDigest(e, k),
      signal,
    }).then((d) => [...d].map(([id, x]) => `${id}:${x.run ? x.reason : "skip"}`));
  assert.deepEqual(await decide({ PIN: "~4822~", MODE: "~blue~" }), [
    "a:skip",
    "b:skip",
    "c:skip",
    "d:skip",
  ]);
  assert.deepEqual(await decide({ PIN: "~4822~" }), [
    "a:environment changed: MODE (removed)",
    "b:environment changed: MODE (removed)",
    "c:environment changed: MODE (removed)",
    "d:environment changed: MODE (removed)",
  ]);
  // Without the key the digests cannot be checked: everything runs (never a wrong skip).
  const other = crypto.getRandomValues(new Uint8Array(32));
  assert.match(
    (await decide({ PIN: "~4822~", MODE: "~blue~" }, other))[0],
    /^a:environment not verifiable \(its digests were made with another key\): MODE, PIN$/,
  );
  const all = await Deno.readTextFile(`${tmp.path}/${RUN_STATE_FILE}`);
  for (const v of ["~4821~", "~4822~", "~blue~"]) assert.ok(!all.includes(v), `${v} in the state`);
});
