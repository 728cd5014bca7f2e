/**
 * End to end, local backend: failures. A failing command in each position, a dependency that
 * never appears, a worker killed by a signal: non-zero exit naming the stage, later groups not
 * run, nothing left behind.
 */
import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { listTree, portOpen, stillAlive } from "./_local_helpers.ts";
import { submitJob } from "./_local_jobs.ts";

interface Report {
  exitCode: number;
  result: string;
  error?: { stageId?: string; missing?: string[]; type: string };
  relay: { port: number };
  stages: { id: string; result: string; exitCode: number | null; reason?: string }[];
}

/** A job: `first` (group 1, ok), `bad` (group 2, the failing stage + a sibling), `later` (3). */
function job(bad: string, siblingSleeps = false): string {
  return `
job:
  strict: true
stages:
  - id: first
    execution_order: 1
    commands: ["echo first-ran"]
  - id: bad
    execution_order: 2
${bad}
  - id: sibling
    execution_order: 2
    commands: ["${siblingSleeps ? "sleep 60" : "echo sibling-ran"}"]
  - id: later
    execution_order: 3
    commands: ["echo later-ran"]
`;
}

async function checkFailed(
  tmp: string,
  yaml: string,
  opts: { exit?: number; logHas?: RegExp; extra?: string[] } = {},
) {
  const run = await submitJob(tmp, yaml, opts.extra ?? []);
  const out = run.stdout + run.stderr;
  assert.notEqual(run.code, 0, out);
  assert.match(out, /stage "bad" failed: exit code \d+/);
  const report = run.report as unknown as Report;
  assert.ok(report, "report written on failure");
  assert.equal(report.result, "failed");
  assert.equal(report.error?.stageId, "bad");
  const by = Object.fromEntries(report.stages.map((s) => [s.id, s]));
  assert.equal(by.first.result, "succeeded");
  assert.equal(by.bad.result, "failed");
  if (opts.exit !== undefined) assert.equal(by.bad.exitCode, opts.exit);
  assert.equal(by.later.result, "not-run");
  assert.ok(!out.includes("later-ran"), "a later group ran");
  assert.ok(!listTree(`${run.workDir}/logs`).includes("later.log"));
  if (opts.logHas) assert.match(Deno.readTextFileSync(`${run.workDir}/logs/bad.log`), opts.logHas);
  assert.deepEqual(stillAlive(run.seen), []);
  assert.equal(await portOpen(report.relay.port), false);
  assert.deepEqual(listTree(`${tmp}/tmp`), []);
  return { run, report };
}

Deno.test("local e2e: failing prep command", async () => {
  await using tmp = await tempDir("gp-e2e-fail-");
  await checkFailed(
    tmp.path,
    job(`    prep_commands: ["exit 3"]\n    commands: ["echo main-ran"]`),
    {
      exit: 3,
    },
  );
});

Deno.test("local e2e: failing main command stops the run and cancels the sibling", async () => {
  await using tmp = await tempDir("gp-e2e-fail-");
  const { report } = await checkFailed(
    tmp.path,
    job(`    commands: ["sleep 1", "exit 4"]`, true),
    { exit: 4 },
  );
  const sib = report.stages.find((s) => s.id === "sibling")!;
  assert.equal(sib.result, "cancelled");
});

Deno.test("local e2e: failing concurrent main command", async () => {
  await using tmp = await tempDir("gp-e2e-fail-");
  await checkFailed(
    tmp.path,
    job(`    concurrent: true\n    commands: ["sleep 0.3; echo slow-done", "exit 6"]`),
    { exit: 6 },
  );
});

Deno.test("local e2e: failing post command", async () => {
  await using tmp = await tempDir("gp-e2e-fail-");
  await checkFailed(
    tmp.path,
    job(`    commands: ["echo main-ran"]\n    post_commands: ["exit 5"]`),
    { exit: 5, logHas: /main-ran/ },
  );
});

Deno.test("local e2e: post_always runs after a failing main command; the stage still fails", async () => {
  await using tmp = await tempDir("gp-e2e-fail-");
  await checkFailed(
    tmp.path,
    job(
      `    post_always: true\n    commands: ["exit 7"]\n    post_commands: ["echo post-always-ran"]`,
    ),
    { exit: 7, logHas: /post-always-ran/ },
  );
});

Deno.test("local e2e: a worker killed by a signal fails its stage", async () => {
  await using tmp = await tempDir("gp-e2e-fail-");
  // Find the worker process (the ancestor running work.ts) and SIGKILL it.
  const killer = [
    "    commands:",
    "      - |",
    "        p=$PPID",
    '        while [ "$p" -gt 1 ]; do',
    "          if tr '\\0' ' ' < /proc/$p/cmdline | grep -q work.ts; then kill -9 $p; sleep 5; fi",
    "          p=$(awk '{print $4}' /proc/$p/stat)",
    "        done",
    "        exit 0",
  ].join("\n");
  const { report } = await checkFailed(tmp.path, job(killer), { exit: 137 });
  assert.match(report.stages.find((s) => s.id === "bad")!.reason ?? "", /SIGKILL/);
});

Deno.test("local e2e: a dependency never produced fails within the timeout, naming it", async () => {
  await using tmp = await tempDir("gp-e2e-fail-");
  const yaml = `
job:
  strict: true
stages:
  - id: slow-metal
    execution_order: 2
    prep_commands: ["sleep 60"]
    build_artifacts: [metal]
  - id: wants-metal
    execution_order: 2
    require_artifacts: [metal]
    commands: ["echo should-not-run"]
`;
  const t0 = Date.now();
  const run = await submitJob(tmp.path, yaml, [
    "--timeout",
    "2s",
    "--poll-interval",
    "200ms",
  ]);
  const elapsed = Date.now() - t0;
  const out = run.stdout + run.stderr;
  assert.notEqual(run.code, 0, out);
  assert.match(out, /stage "wants-metal": required artifact "metal".* never appeared/);
  const report = run.report as unknown as Report;
  assert.equal(report.error?.type, "DependencyTimeoutError");
  assert.equal(report.error?.stageId, "wants-metal");
  assert.match(report.error!.missing![0], /artifact "metal"/);
  assert.ok(!out.includes("should-not-run"));
  assert.ok(elapsed < 30_000, `took ${elapsed} ms`);
  assert.equal(report.stages.find((s) => s.id === "slow-metal")?.result, "cancelled");
  assert.deepEqual(stillAlive(run.seen), []);
});
