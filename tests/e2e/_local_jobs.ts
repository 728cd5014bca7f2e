/**
 * JobSpecs and checks shared by the local-backend e2e tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT, sha256File } from "../_helpers/mod.ts";
import { runSubmit, type SubmitOptions, type SubmitRun } from "./_local_helpers.ts";

/** How every local e2e job starts: strict, with the stand-in cosa's config repository. */
export const JOB_HEAD = `
job:
  strict: true
recipe:
  git_url: https://example.com/fake-config.git
  git_ref: main
`;

/**
 * base (caches returned) → metal + metal4k in parallel (requiring base's ostree, re-using the
 * caches; metal returns a file) → finalize (requiring both).
 */
export const PIPELINE = `${JOB_HEAD}delay_meta_merge: true
stages:
  - id: base
    execution_order: 1
    build_artifacts: [base]
    return_cache: true
    return_cache_repo: true
  - id: metal
    execution_order: 2
    require_artifacts: [ostree]
    require_cache: true
    require_cache_repo: true
    build_artifacts: [metal]
    commands:
      - "mkdir -p notes && echo metal-notes > notes/metal.txt"
    return_files: [notes/metal.txt]
  - id: metal4k
    execution_order: 2
    require_artifacts: [ostree]
    request_cache: true
    build_artifacts: [metal4k]
  - id: finalize
    execution_order: 3
    require_artifacts: [metal, metal4k]
    build_artifacts: [finalize]
`;

/** Environment of every submit run: the stand-in cosa on PATH, a private TMPDIR. */
export function submitEnv(tmp: string): Record<string, string> {
  return {
    PATH: `${ROOT}/examples/fake-cosa:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    HOME: Deno.env.get("HOME") ?? "/root",
    TMPDIR: tmp,
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
  };
}

/** Writes `yaml` to `<dir>/job.yaml` and runs submit on it with a report. */
export async function submitJob(
  dir: string,
  yaml: string,
  extra: string[] = [],
  opts: SubmitOptions = {},
): Promise<SubmitRun & { report?: Record<string, unknown>; workDir: string }> {
  const spec = `${dir}/job.yaml`;
  const workDir = `${dir}/work`;
  const tmp = `${dir}/tmp`;
  await Deno.mkdir(tmp, { recursive: true });
  await Deno.writeTextFile(spec, yaml);
  const r = await runSubmit(
    ["--spec", spec, "--work-dir", workDir, "--report", `${dir}/report.json`, ...extra],
    { timeoutMs: 90_000, ...opts, env: { ...submitEnv(tmp), ...opts.env } },
  );
  let report: Record<string, unknown> | undefined;
  try {
    report = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
  } catch { /* absent */ }
  return { ...r, ...(report ? { report } : {}), workDir };
}

/** Asserts the builds tree: builds.json, each artifact's sha256/size against meta.json. */
export async function checkBuildsTree(buildsDir: string, arch: string, expectImages: string[]) {
  const builds = JSON.parse(await Deno.readTextFile(`${buildsDir}/builds.json`));
  assert.ok(builds.builds.length >= 1, "builds.json lists a build");
  const id = builds.builds[0].id as string;
  assert.ok(builds.builds[0].arches.includes(arch));
  const dir = `${buildsDir}/${id}/${arch}`;
  const meta = JSON.parse(await Deno.readTextFile(`${dir}/meta.json`));
  assert.equal(meta.buildid, id);
  assert.deepEqual(Object.keys(meta.images).sort(), [...expectImages].sort());
  for (
    const [name, img] of Object.entries(meta.images) as [
      string,
      { path: string; sha256: string; size: number },
    ][]
  ) {
    const f = `${dir}/${img.path}`;
    assert.equal(await sha256File(f), img.sha256, `sha256 of ${name} (${img.path})`);
    assert.equal(Deno.statSync(f).size, img.size, `size of ${name}`);
  }
  return { id, meta, dir };
}

/** The lines of the combined output that mention `text`. */
export function linesWith(run: SubmitRun, text: string): string[] {
  return (run.stdout + run.stderr).split("\n").filter((l) => l.includes(text));
}

/**
 * base → metal → metal4k → finalize (needs metal and metal4k). While `marker` exists the third
 * stage fails (exit 9) or waits for it to go away.
 */
export function markerJob(marker: string, whenMarker: "fail" | "wait"): string {
  const onMarker = whenMarker === "fail"
    ? `if test -e ${marker}; then echo marker present; exit 9; fi`
    : `while test -e ${marker}; do sleep 0.2; done`;
  return `${JOB_HEAD}stages:
  - id: base
    execution_order: 1
    build_artifacts: [base]
    return_cache: true
  - id: metal
    execution_order: 2
    require_artifacts: [ostree]
    require_cache: true
    build_artifacts: [metal]
  - id: metal4k
    execution_order: 3
    require_artifacts: [ostree]
    request_cache: true
    commands:
      - "echo third-stage-started; ${onMarker}"
    build_artifacts: [metal4k]
  - id: finalize
    execution_order: 4
    require_artifacts: [metal, metal4k]
    build_artifacts: [finalize]
`;
}
