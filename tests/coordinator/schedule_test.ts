import assert from "node:assert/strict";
import {
  schedule,
  type ScheduledGroup,
  type ScheduledStage,
} from "../../lib/coordinator/schedule.ts";
import { DependencyTimeoutError, StageFailedError } from "../../lib/coordinator/errors.ts";
import type { StageOutcome } from "../../lib/executors/types.ts";

function groups(spec: Record<number, string[]>): ScheduledGroup[] {
  let i = 0;
  return Object.entries(spec).map(([o, ids]) => ({
    order: Number(o),
    stages: ids.map((id) => ({ id, index: i++ })),
  }));
}

/** A launch that ends each stage with the given code after `ms`, or when aborted. */
function fakeLaunch(
  codes: Record<string, number>,
  events: string[],
  ms = 20,
): (s: ScheduledStage, _i: unknown, o: { signal: AbortSignal }) => Promise<StageOutcome> {
  return (s, _i, { signal }) =>
    new Promise((resolve) => {
      events.push(`start ${s.id}`);
      const t = setTimeout(() => {
        events.push(`end ${s.id}`);
        resolve({ exitCode: codes[s.id] ?? 0 });
      }, codes[s.id] === undefined ? ms : ms / 2);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        events.push(`killed ${s.id}`);
        resolve({ exitCode: 143, reason: "cancelled" });
      }, { once: true });
    });
}

const ready = () => Promise.resolve({ ready: true as const, inputs: undefined });

Deno.test("groups run in order, stages of a group in parallel", async () => {
  const events: string[] = [];
  const r = await schedule({
    groups: groups({ 1: ["a"], 2: ["b", "c"], 3: ["d"] }),
    check: ready,
    launch: fakeLaunch({}, events),
    dependencyTimeoutMs: 1000,
    pollIntervalMs: 5,
    signal: new AbortController().signal,
  });
  assert.equal(r.error, undefined);
  assert.deepEqual(r.records.map((x) => x.result), Array(4).fill("succeeded"));
  assert.deepEqual(events.slice(0, 2), ["start a", "end a"]);
  assert.deepEqual(events.slice(2, 4).sort(), ["start b", "start c"]);
  assert.deepEqual(events.slice(6), ["start d", "end d"]);
});

Deno.test("first failure cancels the group's other stages; later groups never start", async () => {
  const events: string[] = [];
  const r = await schedule({
    groups: groups({ 1: ["a"], 2: ["b", "bad", "c"], 3: ["d"] }),
    check: ready,
    launch: fakeLaunch({ bad: 3 }, events, 200),
    dependencyTimeoutMs: 1000,
    pollIntervalMs: 5,
    signal: new AbortController().signal,
  });
  assert.ok(r.error instanceof StageFailedError);
  assert.equal(r.error.stageId, "bad");
  assert.equal(r.error.workerExitCode, 3);
  assert.match(r.error.message, /stage "bad" failed: exit code 3/);
  const by = Object.fromEntries(r.records.map((x) => [x.id, x]));
  assert.equal(by.a.result, "succeeded");
  assert.equal(by.bad.result, "failed");
  assert.equal(by.b.result, "cancelled");
  assert.equal(by.c.result, "cancelled");
  assert.equal(by.d.result, "not-run");
  assert.ok(!events.includes("start d"));
  assert.ok(events.includes("killed b") && events.includes("killed c"));
});

Deno.test("dependency wait re-checks until satisfied", async () => {
  let checks = 0;
  const waiting: string[][] = [];
  const r = await schedule({
    groups: groups({ 2: ["x"] }),
    check: () => {
      checks++;
      return Promise.resolve(
        checks < 4
          ? { ready: false as const, missing: ['artifact "qemu"'] }
          : { ready: true as const, inputs: "files" },
      );
    },
    launch: (_s, inputs) => {
      assert.equal(inputs, "files");
      return Promise.resolve({ exitCode: 0 });
    },
    onWaiting: (_s, missing) => waiting.push(missing),
    dependencyTimeoutMs: 5000,
    pollIntervalMs: 2,
    signal: new AbortController().signal,
  });
  assert.equal(r.error, undefined);
  assert.equal(checks, 4);
  assert.equal(waiting.length, 3);
  assert.equal(r.records[0].result, "succeeded");
});

Deno.test("dependency timeout names the stage and what is missing (fake clock)", async () => {
  let t = 0;
  let launched = false;
  const r = await schedule({
    groups: groups({ 1: ["needs-qemu"], 2: ["after"] }),
    check: () => Promise.resolve({ ready: false as const, missing: ['artifact "qemu"'] }),
    launch: () => {
      launched = true;
      return Promise.resolve({ exitCode: 0 });
    },
    dependencyTimeoutMs: 3_600_000,
    pollIntervalMs: 15_000,
    now: () => t,
    sleep: (ms) => {
      t += ms;
      return Promise.resolve();
    },
    signal: new AbortController().signal,
  });
  assert.ok(r.error instanceof DependencyTimeoutError);
  assert.equal(r.error.stageId, "needs-qemu");
  assert.deepEqual(r.error.missing, ['artifact "qemu"']);
  assert.match(r.error.message, /needs-qemu.*artifact "qemu"/);
  assert.equal(t, 3_600_000);
  assert.equal(launched, false);
  assert.equal(r.records[0].result, "dependency-timeout");
  assert.equal(r.records[1].result, "not-run");
});

Deno.test("an outer abort cancels running and waiting stages", async () => {
  const ctl = new AbortController();
  const events: string[] = [];
  const p = schedule({
    groups: groups({ 1: ["run", "wait"], 2: ["never"] }),
    check: (s) =>
      Promise.resolve(
        s.id === "wait"
          ? { ready: false as const, missing: ["x"] }
          : { ready: true as const, inputs: undefined },
      ),
    launch: fakeLaunch({}, events, 10_000),
    dependencyTimeoutMs: 60_000,
    pollIntervalMs: 10_000,
    signal: ctl.signal,
  });
  setTimeout(() => ctl.abort(new Error("SIGINT")), 30);
  const r = await p;
  assert.equal((r.error as Error).message, "SIGINT");
  assert.deepEqual(r.records.map((x) => x.result), ["cancelled", "cancelled", "not-run"]);
});

Deno.test("an infrastructure error in launch stops the run", async () => {
  const r = await schedule({
    groups: groups({ 1: ["a"], 2: ["b"] }),
    check: ready,
    launch: () => Promise.reject(new Error("spawn failed")),
    dependencyTimeoutMs: 1000,
    pollIntervalMs: 5,
    signal: new AbortController().signal,
  });
  assert.equal((r.error as Error).message, "spawn failed");
  assert.deepEqual(r.records.map((x) => x.result), ["failed", "not-run"]);
});
