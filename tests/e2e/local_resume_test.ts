/**
 * `submit --resume` end to end with the local backend: a four-stage JobSpec whose third stage
 * fails (or hangs) while a marker file exists; after the marker is removed, a resume runs only
 * that stage and the one depending on it, and the builds tree ends up as a clean run's. The
 * same after a failure, a Ctrl-C in the middle of the stage, and a kill -9 of the coordinator.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { sha256File, tempDir } from "../_helpers/mod.ts";
import {
  listTree,
  runSubmit,
  startExternalRelay,
  stillAlive,
  type SubmitRun,
} from "./_local_helpers.ts";
import { markerJob, submitEnv } from "./_local_jobs.ts";
import type { RunReport } from "../../lib/coordinator/mod.ts";

interface Job {
  dir: string;
  spec: string;
  marker: string;
  workDir: string;
  env: Record<string, string>;
}

async function newJob(dir: string, whenMarker: "fail" | "wait"): Promise<Job> {
  await Deno.mkdir(`${dir}/tmp`, { recursive: true });
  const job = {
    dir,
    spec: `${dir}/job.yaml`,
    marker: `${dir}/MARKER`,
    workDir: `${dir}/work`,
    env: submitEnv(`${dir}/tmp`),
  };
  await Deno.writeTextFile(job.spec, markerJob(job.marker, whenMarker));
  return job;
}

function submit(job: Job, args: string[], opts: Parameters<typeof runSubmit>[1] = {}) {
  return runSubmit(args, { timeoutMs: 120_000, env: job.env, ...opts });
}

async function readReport(path: string): Promise<RunReport> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** Files of a tree with their content identity: JSON without time stamps, tarballs by entry. */
async function treeDigest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of listTree(root)) {
    const path = `${root}/${f}`;
    if (f.endsWith(".json")) {
      const drop = (v: unknown): unknown =>
        Array.isArray(v) ? v.map(drop) : v && typeof v === "object"
          ? Object.fromEntries(
            Object.entries(v).filter(([k]) => !/timestamp|stamp/i.test(k)).map((
              [k, x],
            ) => [k, drop(x)]),
          )
          : v;
      out[f] = JSON.stringify(drop(JSON.parse(await Deno.readTextFile(path))));
    } else if (f.endsWith(".tar.gz")) {
      // Tarballs carry mtimes: compare the files they hold.
      const x = await Deno.makeTempDir({ dir: root + "/.." });
      try {
        const r = await new Deno.Command("tar", { args: ["-xzf", path, "-C", x] }).output();
        assert.ok(r.success, `tar -xzf ${path}`);
        out[f] = JSON.stringify(await treeDigest(x));
      } finally {
        await Deno.remove(x, { recursive: true });
      }
    } else {
      out[f] = await sha256File(path);
    }
  }
  return out;
}

/** The builds tree of a clean run of the same JobSpec (made once, without the marker). */
let clean: Promise<Record<string, string>> | undefined;
function cleanTree(): Promise<Record<string, string>> {
  clean ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "gp-resume-clean-" });
    try {
      const job = await newJob(dir, "fail");
      const r = await submit(job, ["-s", job.spec, "-w", job.workDir]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return await treeDigest(`${job.workDir}/builds`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return clean;
}

/** The worker processes a killed coordinator left behind (ours), ended by pid. */
function endLeftovers(run: SubmitRun): void {
  for (const p of stillAlive(run.seen)) {
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
}

/**
 * After the first run was stopped in its third stage (`reason` is why a resume runs it
 * again): the dry run says what will happen, the resume runs only metal4k and finalize (base's
 * and metal's files are not rewritten), reports and logs show the first two skipped, and the
 * builds tree equals a clean run's.
 */
async function resumeAndCheck(job: Job, reason: RegExp): Promise<SubmitRun> {
  const base = `${job.workDir}/builds`;
  const buildId = JSON.parse(await Deno.readTextFile(`${base}/builds.json`)).builds[0].id;
  const ostree = listTree(`${base}/${buildId}/x86_64`).find((f) => f.includes("ostree"))!;
  const before = await Deno.stat(`${base}/${buildId}/x86_64/${ostree}`);
  await Deno.remove(job.marker);

  const dry = await submit(job, ["--resume", job.workDir, "--dry-run", "-o", "json"]);
  assert.equal(dry.code, 0, dry.stdout + dry.stderr);
  const doc = JSON.parse(dry.stdout);
  assert.deepEqual(
    doc.resume.stages.map((s: { id: string; run: boolean }) => [s.id, s.run]),
    [["base", false], ["metal", false], ["metal4k", true], ["finalize", true]],
  );
  assert.match(doc.resume.stages[2].reason, reason);
  assert.equal(doc.resume.stages[3].reason, "depends on metal4k");

  const r = await submit(job, [
    "--resume",
    job.workDir,
    "--report",
    `${job.dir}/resumed.json`,
    "--report",
    `${job.dir}/resumed.html`,
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(stillAlive(r.seen), []);
  const report = await readReport(`${job.dir}/resumed.json`);
  assert.deepEqual(report.stages.map((s) => [s.id, s.result]), [
    ["base", "skipped"],
    ["metal", "skipped"],
    ["metal4k", "succeeded"],
    ["finalize", "succeeded"],
  ]);
  // Only the third and fourth stages had workers: base's ostree was not written again.
  const after = await Deno.stat(`${base}/${buildId}/x86_64/${ostree}`);
  assert.equal(after.ino, before.ino);
  assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
  const baseLog = await Deno.readTextFile(`${job.workDir}/logs/base.log`);
  const lastRun = baseLog.slice(baseLog.lastIndexOf("=== run "));
  assert.match(lastRun, /gangplank: skipped \(resume\): succeeded in run gp-/);
  assert.doesNotMatch(lastRun, /starting worker/);
  const m4k = await Deno.readTextFile(`${job.workDir}/logs/metal4k.log`);
  assert.match(m4k.slice(m4k.lastIndexOf("=== run ")), /starting worker/);
  const html = await Deno.readTextFile(`${job.dir}/resumed.html`);
  assert.equal(
    (html.match(/class="tl-row" data-stage="[^"]+" data-result="skipped"/g) ?? []).length,
    2,
  );
  assert.deepEqual(await treeDigest(base), await cleanTree());
  // The resumed run's lock went with it.
  assert.ok(!existsSync(`${job.workDir}/.gangplank-run.lock`));
  return r;
}

Deno.test("resume e2e: after the third stage failed on a marker, only it and its dependent run", async () => {
  await using tmp = await tempDir("gp-resume-");
  const job = await newJob(tmp.path, "fail");
  await Deno.writeTextFile(job.marker, "");
  const r = await submit(job, [
    "-s",
    job.spec,
    "-w",
    job.workDir,
    "--report",
    `${tmp.path}/1.json`,
  ]);
  assert.notEqual(r.code, 0);
  const first = await readReport(`${tmp.path}/1.json`);
  assert.deepEqual(first.stages.map((s) => s.result), [
    "succeeded",
    "succeeded",
    "failed",
    "not-run",
  ]);
  assert.ok(!existsSync(`${job.workDir}/.gangplank-run.lock`));
  await resumeAndCheck(job, /^failed \(exit code 9\)$/);
});

Deno.test("resume e2e: after a Ctrl-C in the middle of the third stage", async () => {
  await using tmp = await tempDir("gp-resume-");
  const job = await newJob(tmp.path, "wait");
  await Deno.writeTextFile(job.marker, "");
  const r = await submit(job, ["-s", job.spec, "-w", job.workDir], {
    interruptWhen: (out) => out.includes("] third-stage-started") ? "SIGINT" : undefined,
  });
  assert.equal(r.code, 130, r.stdout + r.stderr);
  assert.deepEqual(stillAlive(r.seen), []);
  // Ctrl-C released the work dir: the lock file is gone.
  assert.ok(!existsSync(`${job.workDir}/.gangplank-run.lock`));
  await resumeAndCheck(job, /^interrupted$/);
});

Deno.test("resume e2e: after kill -9 of the coordinator in the middle of the third stage", async () => {
  await using tmp = await tempDir("gp-resume-");
  const job = await newJob(tmp.path, "wait");
  await Deno.writeTextFile(job.marker, "");
  const r = await submit(job, ["-s", job.spec, "-w", job.workDir], {
    interruptWhen: (out) => out.includes("] third-stage-started") ? "SIGKILL" : undefined,
  });
  endLeftovers(r);
  assert.equal(r.signal, "SIGKILL");
  // The state file was replaced atomically: whole, and saying the third stage was running.
  const state = JSON.parse(await Deno.readTextFile(`${job.workDir}/.gangplank-run.json`));
  assert.equal(state.stages.metal4k.result, "running");
  assert.equal(state.stages.metal.result, "succeeded");
  // The killed run's lock file stays, naming a process that is gone: the resume takes it over.
  const lock = JSON.parse(await Deno.readTextFile(`${job.workDir}/.gangplank-run.lock`));
  assert.equal(lock.runId, state.runId);
  assert.ok(!existsSync(`/proc/${lock.pid}`), `pid ${lock.pid} still runs`);
  const resumed = await resumeAndCheck(job, /^interrupted$/);
  assert.match(
    resumed.stderr,
    new RegExp(
      `gangplank: --resume \\S+: taking over the lock left by run ${state.runId} \\(coordinator pid ${lock.pid} on `,
    ),
  );
});

Deno.test("resume e2e: bad --resume input is refused with exit 2, nothing created", async () => {
  await using tmp = await tempDir("gp-resume-");
  const job = await newJob(tmp.path, "fail");
  const empty = `${tmp.path}/empty`;
  await Deno.mkdir(empty);
  let r = await submit(job, ["--resume", empty]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--resume .*empty: no run state \(\.gangplank-run\.json\)/);
  assert.deepEqual(listTree(empty), []);
  r = await submit(job, ["--resume", empty, "-w", `${tmp.path}/other`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /-w .*other: a resumed run works in the work dir it resumes/);
  r = await submit(job, ["--resume", empty, "-A", "base"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /-A: the recorded JobSpec is used; give a new one with -s/);
  assert.deepEqual(listTree(tmp.path).filter((f) => !f.startsWith("tmp/")), ["job.yaml"]);
});

Deno.test("resume e2e: an external store (-m): needs -m again; a deleted output re-runs its stage", async () => {
  await using tmp = await tempDir("gp-resume-ext-");
  await using relay = await startExternalRelay(tmp.path);
  const { srv, cfg } = relay;
  {
    const job = await newJob(tmp.path, "fail");
    await Deno.writeTextFile(job.marker, "");
    const first = await submit(job, ["-s", job.spec, "-w", job.workDir, "-m", cfg]);
    assert.notEqual(first.code, 0);
    await Deno.remove(job.marker);

    let r = await submit(job, ["--resume", job.workDir]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /kept its objects in an external S3 endpoint \(127\.0\.0\.1:\d+\); give its config again with -m/,
    );

    // Someone deletes metal's image from the store: metal runs again, and what needs it.
    const builds = `${srv}/builder`;
    const id = JSON.parse(await Deno.readTextFile(`${builds}/builds.json`)).builds[0].id;
    const metal = listTree(`${builds}/${id}/x86_64`).find((f) => f.includes("-metal."))!;
    await Deno.remove(`${builds}/${id}/x86_64/${metal}`);
    const dry = await submit(job, ["--resume", job.workDir, "-m", cfg, "--dry-run", "-o", "json"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(
      JSON.parse(dry.stdout).resume.stages.map((s: { id: string; reason: string }) =>
        `${s.id}: ${s.reason.replace(/run gp-[0-9a-f-]+/, "run X")}`
      ),
      [
        "base: succeeded in run X, 6 output(s) verified by sha256",
        `metal: output missing: ${id}/x86_64/${metal}`,
        "metal4k: failed (exit code 9)",
        "finalize: depends on metal",
      ],
    );

    r = await submit(job, ["--resume", job.workDir, "-m", cfg, "--report", `${tmp.path}/r.json`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = await readReport(`${tmp.path}/r.json`);
    assert.deepEqual(report.stages.map((s) => s.result), [
      "skipped",
      "succeeded",
      "succeeded",
      "succeeded",
    ]);
    assert.deepEqual(await treeDigest(builds), await cleanTree());
  }
});
