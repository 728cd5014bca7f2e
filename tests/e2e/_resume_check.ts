/**
 * The resume scenario for container backends (podman, kube): the third stage fails in its
 * worker (its command fails on a path every container has: a marker file on this host is not
 * visible in a container, and failing it through `-e` would change every stage's environment,
 * which a resume rightly re-runs everything for); a resume with the JobSpec fixed (`-s`, only
 * that stage's command differs) runs only that stage and its dependent, and the builds tree
 * matches a clean local run's.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RunReport } from "../../lib/coordinator/mod.ts";
import { type RunResult, runScript } from "../_helpers/mod.ts";
import { assertSameBuilds, scriptEnv } from "./_podman_helpers.ts";
import { markerJob } from "./_local_jobs.ts";

/**
 * Runs the scenario in `dir`; `run` runs the backend's script with the given arguments (it
 * adds the backend's own). Returns both runs' reports.
 */
export async function resumeOnBackend(
  dir: string,
  run: (args: string[]) => Promise<RunResult>,
): Promise<{ first: RunReport; second: RunReport }> {
  const spec = `${dir}/job.yaml`;
  const failing = `${dir}/job-failing.yaml`;
  await Deno.writeTextFile(spec, markerJob(`${dir}/no-marker`, "fail"));
  await Deno.writeTextFile(failing, markerJob("/", "fail"));
  const w = `${dir}/work`;
  const report = async (name: string) =>
    JSON.parse(await Deno.readTextFile(`${dir}/${name}.json`)) as RunReport;

  const r1 = await run([
    "-s",
    failing,
    "-w",
    w,
    "--report",
    `${dir}/first.json`,
  ]);
  assert.notEqual(r1.code, 0, r1.stdout + r1.stderr);
  const first = await report("first");
  assert.deepEqual(first.stages.map((s) => s.result), [
    "succeeded",
    "succeeded",
    "failed",
    "not-run",
  ]);

  const [r2, clean] = await Promise.all([
    run(["--resume", w, "-s", spec, "--report", `${dir}/second.json`]),
    runScript("submit.ts", ["-s", spec, "-w", `${dir}/local`], {
      env: scriptEnv(),
      cwd: dir,
      timeoutMs: 300_000,
    }),
  ]);
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  const second = await report("second");
  assert.deepEqual(second.stages.map((s) => [s.id, s.result]), [
    ["base", "skipped"],
    ["metal", "skipped"],
    ["metal4k", "succeeded"],
    ["finalize", "succeeded"],
  ]);
  const names = await assertSameBuilds(`${w}/builds`, `${dir}/local/builds`, second.arch);
  assert.ok(names.includes("metal4k"), names.join(","));
  return { first, second };
}
