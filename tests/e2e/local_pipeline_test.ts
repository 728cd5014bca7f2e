/**
 * End to end, local backend: `submit.ts` as a subprocess runs a whole JobSpec (base, then
 * metal + metal4k in parallel re-using caches, then finalize) with the stand-in cosa; the builds
 * tree, logs, report and exit code are checked file by file.
 */
import assert from "node:assert/strict";
import type { RunReport } from "../../lib/coordinator/mod.ts";
import { sha256File, tempDir } from "../_helpers/mod.ts";
import { listTree, portOpen, startExternalRelay, stillAlive } from "./_local_helpers.ts";
import { checkBuildsTree, JOB_HEAD, linesWith, PIPELINE, submitJob } from "./_local_jobs.ts";

Deno.test("local e2e: a whole pipeline succeeds and lands in <workDir>/builds", async () => {
  await using tmp = await tempDir("gp-e2e-local-");
  const run = await submitJob(tmp.path, PIPELINE);
  const out = run.stdout + run.stderr;
  assert.equal(run.code, 0, out);
  const report = run.report as unknown as RunReport;

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
    "qemu",
    "metal",
    "metal4k",
  ]);
  assert.equal(report.latestBuild, id);
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

  // artifacts already present at the destination are not transferred again: the stages that
  // fetched an image (metal, metal4k, finalize) upload only what they made, and finalize, alone
  // in its group, writes no image object.
  const images = meta.images as Record<string, { path: string; size: number }>;
  const by = Object.fromEntries(report.stages.map((s) => [s.id, s]));
  assert.deepEqual(by.base.artifacts, ["ostree", "qemu"]);
  assert.deepEqual(by.metal.artifacts, ["metal"]);
  assert.deepEqual(by.metal4k.artifacts, ["metal4k"]);
  assert.deepEqual(by.finalize.artifacts, []);
  assert.ok(by.metal.bytesOut < images.metal.size + images.ostree.size, `${by.metal.bytesOut}`);
  assert.ok(by.metal.bytesOut >= images.metal.size);
  assert.ok(by.metal4k.bytesOut < images.metal4k.size + images.ostree.size);
  assert.ok(by.finalize.bytesOut < Math.min(...Object.values(images).map((i) => i.size)));
  assert.ok(
    !by.finalize.objects.some((k) => Object.values(images).some((i) => k.endsWith(i.path))),
  );
  assert.ok(by.finalize.objects.includes(`${id}/${report.arch}/meta.json`));
  // every image object was uploaded exactly once over the whole run
  for (const img of Object.values(images)) {
    const key = `${id}/${report.arch}/${img.path}`;
    const uploaders = report.stages.filter((s) => s.objects.includes(key)).map((s) => s.id);
    assert.equal(uploaders.length, 1, `${key} uploaded by ${uploaders.join(", ")}`);
  }
  // each image was downloaded where required: metal and metal4k fetched the ostree
  assert.ok(by.metal.bytesIn >= images.ostree.size);

  // nothing left running, relay closed, temp dirs gone
  assert.deepEqual(stillAlive(run.seen), []);
  assert.equal(await portOpen(report.relay.port), false);
  assert.deepEqual(listTree(`${tmp.path}/tmp`), []);
});

Deno.test("local e2e: an external S3 endpoint (-m) with a key prefix", async () => {
  await using tmp = await tempDir("gp-e2e-ext-");
  await using relay = await startExternalRelay(tmp.path);
  const { srv, cfg } = relay;
  {
    const yaml = `
job: {strict: true}
recipe: {git_url: "https://example.com/fake-config.git"}
minio: {bucket: builder, key_prefix: team/a}
stages:
  - id: base
    execution_order: 1
    build_artifacts: [base]
  - id: metal
    require_artifacts: [ostree]
    build_artifacts: [metal]
`;
    const run = await submitJob(tmp.path, yaml, ["-m", cfg]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = run.report as unknown as RunReport;
    assert.equal(report.relay.external, true);
    assert.equal(report.relay.keyPrefix, "team/a");
    assert.match(report.buildsLocation, /^s3:\/\/127\.0\.0\.1:\d+\/builder\/team\/a$/);
    await checkBuildsTree(`${srv}/builder/team/a`, report.arch, ["ostree", "qemu", "metal"]);
    // nothing of the build landed in the work dir: only logs and the run state (--resume)
    assert.deepEqual(listTree(run.workDir).filter((f) => !f.startsWith("logs/")), [
      ".gangplank-run.json",
    ]);
    assert.deepEqual(stillAlive(run.seen), []);
  }
});

Deno.test("local e2e: the sha256 of what a stage returned is recorded without reading it back", async () => {
  await using tmp = await tempDir("gp-e2e-local-digest-");
  const size = 48 * 1024 * 1024;
  const run = await submitJob(
    tmp.path,
    `${JOB_HEAD}stages:
  - id: make
    execution_order: 1
    commands:
      - "head -c ${size} /dev/urandom > big.bin"
    return_files: [big.bin]
`,
  );
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const report = run.report as unknown as RunReport;
  const returned = report.stages[0].returned ?? [];
  const big = returned.find((o) => o.key.endsWith("big.bin"));
  assert.ok(big, `returned: ${JSON.stringify(returned)}`);
  assert.equal(big.size, size);
  // The file the run gathered is the one whose digest was recorded.
  const found = listTree(run.workDir).filter((f) => f.endsWith("big.bin"));
  assert.equal(found.length, 1, found.join(" "));
  assert.equal(big.sha256, await sha256File(`${run.workDir}/${found[0]}`));
  // Uploaded once; the relay sent far less than the artifact (the digest came from a HEAD).
  assert.ok((report.relay.bytesReceived ?? 0) >= size, JSON.stringify(report.relay));
  assert.ok(
    (report.relay.bytesSent ?? Infinity) < size / 4,
    `relay sent ${report.relay.bytesSent} bytes for a ${size}-byte artifact`,
  );
});
