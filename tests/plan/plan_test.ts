import assert from "node:assert/strict";
import {
  defaultJobSpec,
  generateJobSpec,
  type JobSpec,
  loadJobSpec,
  type Stage,
} from "../../lib/jobspec/mod.ts";
import { PlanError, planJob } from "../../lib/plan/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";
import { ROOT } from "../_helpers/mod.ts";

const specOf = (stages: Stage[], extra: Partial<JobSpec> = {}): JobSpec => ({
  ...defaultJobSpec(),
  delay_meta_merge: true,
  ...extra,
  stages,
});

function planError(spec: JobSpec, opts = {}): PlanError {
  try {
    planJob(spec, opts);
  } catch (e) {
    assert.ok(e instanceof PlanError, String(e));
    assert.ok(e instanceof UsageError);
    return e;
  }
  assert.fail("plan accepted");
}

Deno.test("demo plan: three groups, outputs, waits and commands", async () => {
  const { spec } = await loadJobSpec(`${ROOT}/examples/demo.jobspec.yaml`, {});
  const plan = planJob(spec);
  assert.deepEqual(plan.groups.map((g) => g.order), [1, 2, 3]);
  assert.deepEqual(plan.groups.map((g) => g.stages.map((s) => s.id)), [
    ["base"],
    ["metal", "aws", "kola-qemu"],
    ["finalize"],
  ]);
  const base = plan.stages[0];
  assert.deepEqual(base.returns, {
    artifacts: ["ostree", "qemu"],
    cache: true,
    cacheRepo: true,
    files: [],
  });
  assert.deepEqual(base.requests, { artifacts: [], cache: true, cacheRepo: true });
  assert.deepEqual(base.commands.main, ["cosa fetch; cosa build  --delay-meta-merge;"]);
  const metal = plan.stages.find((s) => s.id === "metal")!;
  assert.deepEqual(metal.requires, { artifacts: ["ostree"], cache: true, cacheRepo: true });
  assert.deepEqual(metal.after, ["base"]);
  assert.deepEqual(metal.waitsFor, []);
  const kola = plan.stages.find((s) => s.id === "kola-qemu")!;
  assert.deepEqual(kola.returns.files, ["tmp/kola-report.txt"]);
  assert.deepEqual(kola.commands.post, ["cosa kola --basic-qemu-scenarios"]);
  const fin = plan.stages.find((s) => s.id === "finalize")!;
  assert.deepEqual(fin.after.sort(), ["aws", "metal"]);
  assert.deepEqual(fin.commands.main, ["cosa meta --finalize;"]);
  assert.deepEqual(plan.warnings, []);
});

Deno.test("groups: order 0 counts as 2, ascending, JobSpec order within a group", () => {
  const plan = planJob(specOf([
    { id: "c", commands: ["x"], execution_order: 5 },
    { id: "a", commands: ["x"] },
    { id: "b", commands: ["x"], execution_order: 0 },
    { id: "d", commands: ["x"], execution_order: 2 },
    { id: "e", commands: ["x"], execution_order: 1 },
  ]));
  assert.deepEqual(plan.groups.map((g) => [g.order, g.stages.map((s) => s.id)]), [
    [1, ["e"]],
    [2, ["a", "b", "d"]],
    [5, ["c"]],
  ]);
  assert.deepEqual(plan.stages.map((s) => s.id), ["e", "a", "b", "d", "c"]);
  assert.equal(plan.stages.find((s) => s.id === "b")!.index, 2);
});

Deno.test("a requirement nothing earlier produces is rejected, naming the stages", () => {
  const err = planError(specOf([
    { id: "aws", build_artifacts: ["aws"], require_artifacts: ["qemu"], execution_order: 1 },
    { id: "base", build_artifacts: ["base"], execution_order: 3 },
  ]));
  assert.equal(err.problems.length, 1);
  assert.deepEqual(err.problems[0].stageIds, ["aws", "base"]);
  assert.match(err.message, /stage "aws" \(group 1\) requires artifact qemu/);
  assert.match(err.message, /stage "base" \(group 3\) produces it only in a later group/);
  // the store may already have it
  planJob(specOf([{ id: "aws", build_artifacts: ["aws"], require_artifacts: ["qemu"] }]), {
    existing: { artifacts: ["qemu"] },
  });
  // or the run checks it later
  const p = planJob(
    specOf([{ id: "aws", build_artifacts: ["aws"], require_artifacts: ["qemu"] }]),
    {
      assumeExisting: true,
    },
  );
  assert.match(p.warnings[0], /must already be in the store/);
});

Deno.test("a stage's own build does not satisfy its requirement", () => {
  const err = planError(
    specOf([{ id: "q", build_artifacts: ["qemu"], require_artifacts: ["qemu"] }]),
  );
  assert.deepEqual(err.problems[0].stageIds, ["q"]);
});

Deno.test("same-group producers are waited for; wait cycles are rejected", () => {
  const plan = planJob(specOf([
    { id: "base", build_artifacts: ["base"], execution_order: 1 },
    { id: "metal", build_artifacts: ["metal"], require_artifacts: ["ostree"], execution_order: 1 },
  ]));
  assert.deepEqual(plan.stages[1].waitsFor, ["base"]);
  const err = planError(specOf([
    { id: "m", build_artifacts: ["metal"], require_artifacts: ["aws"], execution_order: 2 },
    { id: "a", build_artifacts: ["aws"], require_artifacts: ["gcp"], execution_order: 2 },
    { id: "g", build_artifacts: ["gcp"], require_artifacts: ["metal"], execution_order: 2 },
    { id: "ok", commands: ["x"], require_artifacts: ["metal"], execution_order: 2 },
  ]));
  assert.equal(err.problems.length, 1, err.message);
  assert.deepEqual(err.problems[0].stageIds.sort(), ["a", "g", "m"]);
  assert.match(err.message, /wait for each other in a cycle/);
});

Deno.test("caches: required caches need an earlier (or same-group) return_cache or the store", () => {
  const err = planError(specOf([
    { id: "x", commands: ["x"], require_cache: true, require_cache_repo: true },
  ]));
  assert.equal(err.problems.length, 2);
  assert.match(err.message, /the cache \(require_cache\)/);
  assert.match(err.message, /the repo cache \(require_cache_repo\)/);
  planJob(specOf([{ id: "x", commands: ["x"], require_cache: true }]), {
    existing: { cache: true },
  });
  const plan = planJob(specOf([
    { id: "b", commands: ["x"], return_cache: true, execution_order: 1 },
    { id: "x", commands: ["x"], require_cache: true, request_cache_repo: true },
  ]));
  assert.deepEqual(plan.stages[1].after, ["b"]);
  assert.deepEqual(plan.stages[1].requests, { artifacts: [], cache: false, cacheRepo: true });
});

Deno.test("constructed specs: duplicate/empty ids and unexpandable commands are plan errors", () => {
  const err = planError(specOf([
    { id: "a", commands: ["x"] },
    { id: "a", commands: ["x"] },
    { id: "", commands: ["x"] },
    { id: "k", kola_tests: ["nope"] },
    { id: "p", publish_artifacts: ["aws"] },
    { id: "b", build_artifacts: ["darkCloud"] },
  ]));
  assert.equal(err.problems.length, 5, err.message);
  assert.match(err.message, /duplicate stage id/);
  assert.match(err.message, /must not be empty/);
  assert.match(err.message, /kola test nope/);
  assert.match(err.message, /clouds_cfgs.aws is not configured/);
  assert.match(err.message, /darkCloud is not a known buildable artifact/);
});

Deno.test("warnings: two stages of a group building the same artifact, early finalize", () => {
  const plan = planJob(specOf([
    { id: "m1", build_artifacts: ["metal"], execution_order: 1 },
    { id: "m2", build_artifacts: ["metal"], execution_order: 1 },
    { id: "f", build_artifacts: ["finalize"], execution_order: 1 },
    { id: "late", commands: ["x"], execution_order: 3 },
  ]));
  assert.equal(plan.warnings.length, 2, plan.warnings.join("\n"));
});

Deno.test("every generated spec plans against an empty store when its deps are in it", () => {
  for (
    const [a, k] of [
      [["base"], []],
      [["base", "qemu+metal"], ["basicBios"]],
      [["base", "metal", "metal4k", "live", "finalize"], ["iso", "metal4k"]],
      [["base", "aws", "gcp", "extensions", "finalize"], ["long", "upgrade"]],
      [["base", "aws"], ["basicQemu"], true],
    ] as [string[], string[], boolean?][]
  ) {
    const plan = planJob(generateJobSpec({ artifacts: a, kolaTests: k, singleStage: false }));
    // no stage waits within its group: generation orders stages strictly
    for (const s of plan.stages) assert.deepEqual(s.waitsFor, [], `${a} ${s.id}`);
  }
});
