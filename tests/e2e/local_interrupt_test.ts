/**
 * End to end, local backend: Ctrl-C (SIGINT) and SIGTERM at several points of a run. The
 * coordinator exits 130/143, and the test checks (through /proc) that no process it started
 * is left, that the relay port is closed and that no temp dir remains.
 */
import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { listTree, portOpen, stillAlive } from "./_local_helpers.ts";
import { submitJob } from "./_local_jobs.ts";

const SLOW = `
job:
  strict: true
stages:
  - id: first
    execution_order: 1
    commands: ["echo first-ran"]
  - id: sleeper
    execution_order: 2
    commands: ["echo sleeper-started; sleep 60"]
  - id: sleeper-too
    execution_order: 2
    concurrent: true
    commands: ["sleep 61", "sleep 62"]
  - id: never
    execution_order: 3
    commands: ["echo never-ran"]
`;

/** A job whose single stage returns a few MiB through return_files. */
const RETURNING = `
job:
  strict: true
stages:
  - id: returner
    commands:
      - "mkdir -p out && for i in $(seq 1 40); do head -c 2097152 /dev/urandom > out/f$i.bin; done"
      - "echo files-ready"
    return_files: [${Array.from({ length: 40 }, (_, i) => `out/f${i + 1}.bin`).join(", ")}]
`;

async function interrupted(
  yaml: string,
  when: (out: string) => boolean,
  sig: Deno.Signal = "SIGINT",
) {
  await using tmp = await tempDir("gp-e2e-int-");
  const userFile = `${tmp.path}/work/mine.txt`;
  await Deno.mkdir(`${tmp.path}/work`, { recursive: true });
  await Deno.writeTextFile(userFile, "not the run's");
  const run = await submitJob(tmp.path, yaml, [], {
    interruptWhen: (out) => (when(out) ? sig : undefined),
  });
  const out = run.stdout + run.stderr;
  assert.equal(run.code, sig === "SIGINT" ? 130 : 143, out);
  assert.ok(!out.includes("never-ran"));
  assert.deepEqual(stillAlive(run.seen), [], "processes left behind");
  const port = out.match(/relay listening on 127\.0\.0\.1:(\d+)/)?.[1];
  if (port) assert.equal(await portOpen(Number(port)), false, "relay still listening");
  assert.deepEqual(listTree(`${tmp.path}/tmp`), [], "temp dirs left behind");
  assert.equal(Deno.readTextFileSync(userFile), "not the run's");
  return { run, out };
}

Deno.test("local e2e: SIGINT right at start (relay starting) exits 130, nothing left", async () => {
  await interrupted(SLOW, () => true);
});

Deno.test("local e2e: SIGINT once the relay listens exits 130", async () => {
  await interrupted(SLOW, (o) => o.includes("relay listening on"));
});

Deno.test("local e2e: SIGINT while workers run exits 130 and kills them", async () => {
  const { run, out } = await interrupted(SLOW, (o) => o.includes("sleeper-started"));
  assert.ok(run.seen.some((p) => p.cmd.includes("scripts/work.ts")), "a worker was seen");
  assert.match(out, /interrupted/i);
});

Deno.test("local e2e: SIGTERM while workers run exits 143", async () => {
  await interrupted(SLOW, (o) => o.includes("sleeper-started"), "SIGTERM");
});

Deno.test("local e2e: SIGINT while a worker returns its files exits 130", async () => {
  const { out } = await interrupted(RETURNING, (o) => /gangway: uploaded cache\/out\/f/.test(o));
  // interrupted part-way: not every file made it
  const uploaded = out.match(/gangway: uploaded cache\/out\/f/g) ?? [];
  assert.ok(uploaded.length >= 1 && uploaded.length < 40, `${uploaded.length} uploaded`);
});
