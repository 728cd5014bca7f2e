/**
 * kill -9 of a local run's coordinator mid-stage: its workers notice within seconds (their stdin
 * lifeline closes) and stop with the stage's commands; `submit --cleanup` then removes the
 * run's temp dir and its unfinished uploads, and reports it; a live run is left alone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runScript, tempDir, waitFor, withTestState } from "../_helpers/mod.ts";
import { runSubmit, stillAlive } from "./_local_helpers.ts";

const FAKE_COSA = `${ROOT}/examples/fake-cosa`;
const SPEC = `stages:
- id: long
  commands:
  - |
    sleep 300 &
    printf '%s-%s\\n' ready now
    wait
`;

/** Pids of processes whose cwd is at or below `dir`. */
function processesIn(dir: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cwd = Deno.readLinkSync(`/proc/${e.name}/cwd`);
      if (cwd === dir || cwd.startsWith(dir + "/")) out.push(Number(e.name));
    } catch { /* gone or not ours */ }
  }
  return out;
}

function runDirs(tmp: string): string[] {
  return [...Deno.readDirSync(tmp)].map((e) => e.name).filter((n) =>
    n.startsWith("gangplank-local-")
  ).sort();
}

Deno.test({
  name:
    "kill -9 of a local coordinator: workers stop within seconds, --cleanup removes what is left",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("gp-kill9-");
    const tmpdir = join(tmp.path, "tmp");
    await Deno.mkdir(tmpdir);
    const spec = join(tmp.path, "j.yaml");
    await Deno.writeTextFile(spec, SPEC);
    const workDir = join(tmp.path, "work");
    const env = { TMPDIR: tmpdir, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    let killedAt = 0;
    const run = await runSubmit(
      ["-s", spec, "-w", workDir, "--worker-path", FAKE_COSA],
      {
        env,
        timeoutMs: 120_000,
        interruptWhen: (out) => {
          if (!out.includes("ready-now")) return undefined;
          // An upload the relay never completed (as a killed multipart upload leaves it).
          const parts = join(workDir, ".gangplank-relay", "uploads", "killed-upload");
          Deno.mkdirSync(parts, { recursive: true });
          Deno.writeTextFileSync(join(parts, "part-1"), "x".repeat(1000));
          killedAt = performance.now();
          return "SIGKILL";
        },
      },
    );
    assert.equal(run.signal, "SIGKILL", run.stderr);
    const workers = run.seen.filter((p) => !p.cmd.includes("scripts/submit.ts"));
    assert.ok(workers.some((p) => p.cmd.includes("sleep 300")), JSON.stringify(run.seen));
    // Every process the run started (worker, bash, sleep) is gone within 10 s of the kill.
    await waitFor(() => stillAlive(workers).length === 0 && processesIn(tmpdir).length === 0, {
      timeoutMs: 10_000,
      what: "the killed run's workers to stop",
    });
    console.log(
      `workers gone ${((performance.now() - killedAt) / 1000).toFixed(1)} s after kill -9`,
    );
    // What kill -9 left: the run's temp dir and the unfinished upload.
    const left = runDirs(tmpdir);
    assert.equal(left.length, 1, JSON.stringify(left));

    // A live run in the same temp parent must be left alone by --cleanup.
    const liveSpec = join(tmp.path, "live.yaml");
    await Deno.writeTextFile(liveSpec, "stages:\n- id: live\n  commands: ['sleep 300']\n");
    const live = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/scripts/submit.ts`, "-s", liveSpec, "-w", join(tmp.path, "w2")],
      env: withTestState({ ...env, NO_COLOR: "1" }),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await waitFor(() => runDirs(tmpdir).length === 2 && processesIn(tmpdir).length > 0, {
        timeoutMs: 60_000,
        what: "the live run's worker",
      });
      const liveDir = runDirs(tmpdir).find((d) => !left.includes(d))!;

      const c = await runScript("submit.ts", ["--cleanup", "-w", workDir], { env });
      assert.equal(c.code, 0, c.stderr);
      // The dead run's dir and upload are gone; the live run's dir and worker are not.
      assert.deepEqual(runDirs(tmpdir), [liveDir]);
      assert.deepEqual([...Deno.readDirSync(join(workDir, ".gangplank-relay", "uploads"))], []);
      assert.ok(processesIn(join(tmpdir, liveDir)).length > 0, "the live run's worker was stopped");
      assert.match(
        c.stdout,
        /0 worker process group\(s\) stopped, 1 temp dir\(s\) and 1 unfinished upload\(s\) removed/,
      );
      assert.ok(
        c.stdout.includes(`left ${join(tmpdir, liveDir)} (pid ${live.pid}) alone`),
        c.stdout,
      );
    } finally {
      live.kill("SIGTERM");
      await live.status;
    }
    await waitFor(() => runDirs(tmpdir).length === 0 && processesIn(tmpdir).length === 0, {
      timeoutMs: 20_000,
      what: "the live run to end cleanly",
    });
  },
});

Deno.test({
  name: "--cleanup stops the workers of a dead coordinator that are still running",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A worker that ignores its lifeline (as one from before this version would): cleanup
    // finds it through the run's records and stops its whole process group.
    await using tmp = await tempDir("gp-kill9b-");
    const { writeOwner, recordWorker } = await import("../../lib/executors/local_cleanup.ts");
    const runDir = join(tmp.path, "gangplank-local-r1-x");
    await Deno.mkdir(runDir);
    // A dead "coordinator": a process that has exited.
    const owner = new Deno.Command("sleep", { args: ["300"] }).spawn();
    await writeOwner(runDir, { pid: owner.pid, runId: "r1" });
    owner.kill("SIGKILL");
    await owner.status;
    const worker = new Deno.Command("sh", {
      args: ["-c", "sleep 300 & wait"],
      cwd: runDir,
      detached: true,
    }).spawn();
    await recordWorker(runDir, worker.pid);
    await waitFor(() => processesIn(runDir).length === 2, { what: "sh and sleep" });
    const c = await runScript("submit.ts", ["--cleanup"], { env: { TMPDIR: tmp.path } });
    assert.equal(c.code, 0, c.stderr);
    assert.ok(c.stdout.includes(`stopped worker process group ${worker.pid}`), c.stdout);
    await worker.status;
    await waitFor(() => processesIn(tmp.path).length === 0, { what: "the stage's sleep" });
    assert.deepEqual(runDirs(tmp.path), []);
  },
});
