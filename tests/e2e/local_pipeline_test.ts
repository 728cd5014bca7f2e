/**
 * End to end, local backend: `submit.ts` as a subprocess runs a whole JobSpec (base, then
 * metal + metal4k in parallel re-using caches, then finalize) with the stand-in cosa; the builds
 * tree, logs, report and exit code are checked file by file.
 */
import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { listTree, portOpen, stillAlive } from "./_local_helpers.ts";
import { checkBuildsTree, linesWith, PIPELINE, submitJob } from "./_local_jobs.ts";

Deno.test("local e2e: a whole pipeline succeeds and lands in <workDir>/builds", async () => {
  await using tmp = await tempDir("gp-e2e-local-");
  const run = await submitJob(tmp.path, PIPELINE);
  const out = run.stdout + run.stderr;
  assert.equal(run.code, 0, out);
  const report = run.report as {
    exitCode: number;
    result: string;
    arch: string;
    buildsLocation: string;
    latestBuild: string;
    relay: { port: number; bytesReceived: number };
    stages: {
      id: string;
      result: string;
      exitCode: number;
      artifacts: string[];
      bytesOut: number;
      logFile: string;
    }[];
  };
  assert.equal(report.exitCode, 0);
  assert.equal(report.result, "succeeded");
  assert.equal(report.buildsLocation, `${run.workDir}/builds`);
  assert.deepEqual(report.stages.map((s) => [s.id, s.result, s.exitCode]), [
    ["base", "succeeded", 0],
    ["metal", "succeeded", 0],
    ["metal4k", "succeeded", 0],
    ["finalize", "succeeded", 0],
  ]);

  // builds tree, file by file
  const builds = `${run.workDir}/builds`;
  const { id, dir, meta } = await checkBuildsTree(builds, report.arch, [
    "ostree",
    "metal",
    "metal4k",
  ]);
  assert.equal(report.latestBuild, id);
  assert.equal(meta["coreos-assembler.delayed-meta-merge"] ?? false, false);
  // caches where the coordinator looks for them, and the return_files entry
  const tree = listTree(builds);
  assert.ok(tree.includes("cache/cache.tar.gz"), tree.join("\n"));
  assert.ok(tree.includes("cache/repo.tar.gz"));
  assert.equal(Deno.readTextFileSync(`${builds}/cache/notes/metal.txt`), "metal-notes\n");
  assert.ok(listTree(dir).includes("meta.json"));

  // logs: one file per stage, lines also on the console with the prefix
  for (const s of report.stages) {
    assert.ok(Deno.statSync(s.logFile).isFile, s.logFile);
    assert.ok(s.logFile.startsWith(`${run.workDir}/logs/`));
  }
  assert.ok(Deno.readTextFileSync(`${run.workDir}/logs/metal.log`).includes("buildextend-metal"));
  assert.ok(linesWith(run, "[metal +").length > 0);
  assert.match(out, /STAGE\s+RESULT\s+EXIT\s+DURATION/);
  assert.ok(out.includes(`builds are in ${builds}`));

  // artifacts already present at the destination are not transferred again: each image file
  // is returned exactly once (by the stage that built it), finalize re-sends none of them.
  const images = Object.values(meta.images as Record<string, { path: string; size: number }>);
  for (const img of images) {
    const key = `${id}/${report.arch}/${img.path}`;
    const by = report.stages.filter((s) => s.artifacts.includes(key)).map((s) => s.id);
    assert.equal(by.length, 1, `${key} returned by ${by.join(", ")}`);
  }
  const fin = report.stages.find((s) => s.id === "finalize")!;
  assert.ok(!fin.artifacts.some((k) => images.some((i) => k.endsWith(`/${i.path}`))));
  // bytes moved: the image bytes uploaded over the whole run equal the images' sizes, once
  const imageBytes = images.reduce((n, i) => n + i.size, 0);
  let movedImageBytes = 0;
  for (const s of report.stages) {
    for (const k of s.artifacts) {
      const img = images.find((i) => k === `${id}/${report.arch}/${i.path}`);
      if (img) movedImageBytes += img.size;
    }
  }
  assert.equal(movedImageBytes, imageBytes);
  assert.ok(report.relay.bytesReceived >= imageBytes);

  // nothing left running, relay closed, temp dirs gone
  assert.deepEqual(stillAlive(run.seen), []);
  assert.equal(await portOpen(report.relay.port), false);
  assert.deepEqual(listTree(`${tmp.path}/tmp`), []);
});
