import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseJobSpec } from "../../lib/jobspec/mod.ts";
import { ROOT, tempDir } from "../_helpers/mod.ts";
import { runInProcess } from "../_helpers/cli.ts";
import { submit } from "../../lib/cli/mod.ts";

/** `submit` in-process, with a clean environment. */
const runSubmit = (args: string[]) => runInProcess("submit", submit, args);

const DEMO = `${ROOT}/examples/demo.jobspec.yaml`;
const LOCATED = /^[^\n]+:\d+:\d+: [^\n]+$/;
const lines = (s: string) => s.split("\n").filter((l) => l !== "");

Deno.test("dry-run of the demo: table on stdout, exit 0, nothing on stderr", async () => {
  const r = await runSubmit(["--spec", DEMO, "--dry-run"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  for (
    const want of [
      "Plan      3 group(s), 5 stage(s)",
      "Group 1: 1 stage",
      "Group 2: 3 stages in parallel",
      'Stage "metal"',
      "cosa fetch; cosa build  --delay-meta-merge;",
      "cosa buildextend-metal",
      "cosa buildextend-aws",
      "requires:  ostree, cache, repo cache",
      "returns:   ostree, qemu, cache, repo cache",
      "returns:   file tmp/kola-report.txt",
      "(rendered on the worker)",
      "cosa meta --finalize;",
    ]
  ) assert.ok(r.stdout.includes(want), `missing ${JSON.stringify(want)} in\n${r.stdout}`);
});

Deno.test("dry-run -o json and -o yaml: the same { plan } document", async () => {
  const j = await runSubmit(["-s", DEMO, "--dry-run", "-o", "json"]);
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout);
  assert.deepEqual(Object.keys(doc), ["plan"]);
  assert.deepEqual(doc.plan.groups.map((g: { order: number }) => g.order), [1, 2, 3]);
  const kola = doc.plan.groups[1].stages.find((s: { id: string }) => s.id === "kola-qemu");
  assert.deepEqual(kola.returns.files, ["tmp/kola-report.txt"]);
  assert.equal(kola.commands.main[0].renderedOnWorker, true);
  assert.equal(doc.plan.bucket, "builder");
  const y = await runSubmit(["-s", DEMO, "--dry-run", "-o", "yaml"]);
  assert.equal(y.code, 0, y.stderr);
  assert.deepEqual(parseYaml(y.stdout), doc);
});

Deno.test("dry-run renders JobSpec templates; --bucket/--keyPathPrefix override", async () => {
  await using dir = await tempDir();
  const f = join(dir.path, "j.yaml");
  await Deno.writeTextFile(
    f,
    "job: {build_name: nightly}\nstages:\n- id: a\n  commands: ['echo {{.JobSpec.Job.BuildName}} <in && x']\n",
  );
  const r = await runSubmit([
    "-s",
    f,
    "--dry-run",
    "-o",
    "json",
    "--bucket",
    "bkt",
    "--keyPathPrefix",
    "p/q",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.plan.groups[0].stages[0].commands.main[0].command, "echo nightly <in && x");
  assert.equal(doc.plan.bucket, "bkt");
  assert.equal(doc.plan.keyPrefix, "p/q");
});

Deno.test("invalid JobSpecs: exit 2, one located line per problem on stderr, nothing on stdout", async () => {
  await using dir = await tempDir();
  const f = join(dir.path, "bad.yaml");
  await Deno.writeTextFile(
    f,
    "stages:\n- id: a\n  comands: [x]\n  commands: [y]\n- id: a\n  commands: [y]\n  execution_order: two\n",
  );
  const r = await runSubmit(["--spec", f, "--dry-run"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  const ls = lines(r.stderr);
  assert.equal(ls.length, 3, r.stderr);
  for (const l of ls) assert.match(l, LOCATED);
  assert.equal(ls[0], `${f}:3:3: stages[0].comands: unknown key; did you mean commands?`);
  assert.equal(ls[2], `${f}:7:20: stages[1].execution_order: expected an integer, got "two"`);

  const docs = await runSubmit([
    "-s",
    "/work/shared/fixtures/jobspec/upstream-docs-example.yaml",
    "--dry-run",
  ]);
  assert.equal(docs.code, 2);
  assert.match(docs.stderr, /upstream-docs-example\.yaml:35:59: /);
  for (const l of lines(docs.stderr)) assert.match(l, LOCATED);

  const missing = await runSubmit(["-s", join(dir.path, "none.yaml"), "--dry-run"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /none\.yaml: cannot read JobSpec: no such file/);
});

Deno.test("--lenient: stale keys are warnings, the run goes on", async () => {
  const mock = "/work/shared/fixtures/jobspec/upstream-mock-os.yaml";
  const strict = await runSubmit(["-s", mock, "--dry-run"]);
  assert.equal(strict.code, 2);
  assert.equal(lines(strict.stderr).length, 6, strict.stderr);
  const lenient = await runSubmit(["-s", mock, "--dry-run", "--lenient"]);
  assert.equal(lenient.code, 0, lenient.stderr);
  assert.equal(lines(lenient.stderr).length, 6);
  for (const l of lines(lenient.stderr)) {
    assert.match(l, /^warning: .*upstream-mock-os\.yaml:\d+:\d+: /);
  }
});

Deno.test("impossible plans and bad templates: exit 2 naming the stage", async () => {
  await using dir = await tempDir();
  const f = join(dir.path, "p.yaml");
  await Deno.writeTextFile(
    f,
    "stages:\n- id: aws\n  build_artifacts: [aws]\n  require_artifacts: [qemu]\n" +
      "- id: t\n  commands: ['echo {{.JobSpec.Job.Nope}}']\n",
  );
  const r = await runSubmit(["-s", f, "--dry-run"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /stage "aws" \(group 2\) requires artifact qemu/);
  const ok = await runSubmit(["-s", f, "--dry-run", "--assume-existing"]);
  assert.equal(ok.code, 2); // the template problem remains
  assert.match(ok.stderr, /stage "t": template: can't evaluate field Nope in type Job/);
});

Deno.test("generate -A base,qemu+metal: header + YAML that parses strictly", async () => {
  const r = await runSubmit(["generate", "-A", "base,qemu+metal"]);
  assert.equal(r.code, 0, r.stderr);
  const [h1, h2] = r.stdout.split("\n");
  assert.equal(h1, "# Generated by Gangplank CLI");
  assert.match(h2, /^# \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const { spec } = parseJobSpec(r.stdout, {});
  assert.deepEqual(spec.stages.map((s) => s.build_artifacts), [["base"], ["qemu", "metal"]]);
  assert.deepEqual(spec.stages[1].require_artifacts, ["ostree"]);
  assert.equal(spec.delay_meta_merge, true);
  assert.equal(spec.job.strict, true);
  // and its plan is valid
  const dry = await runSubmit(["-A", "base,qemu+metal", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.ok(dry.stdout.startsWith("JobSpec   <generated>\n"), dry.stdout);
});

Deno.test("generate --yaml-out truncates and replaces the file; single-stage form", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "job.yaml");
  await Deno.writeTextFile(out, "x".repeat(10_000));
  const r = await runSubmit([
    "generateSinglePod",
    "-A",
    "base",
    "--kolaTest",
    "basicBios",
    "--cmd",
    "echo a,b",
    "--yaml-out",
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "");
  const text = await Deno.readTextFile(out);
  assert.ok(!text.includes("xxx"));
  const { spec } = parseJobSpec(text, {});
  assert.equal(spec.stages.length, 1);
  assert.deepEqual(spec.stages[0].commands, ["echo a,b"]);
  assert.deepEqual(spec.stages[0].kola_tests, ["basicBios"]);
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["job.yaml"]);
});

Deno.test("bad flags and shorthands: exit 2 with one line; --help exits 0", async () => {
  const bad = await runSubmit(["--output", "xml", "--dry-run"]);
  assert.equal(bad.code, 2);
  assert.equal(lines(bad.stderr).length, 1, bad.stderr);
  const art = await runSubmit([
    "generate",
    "-A",
    "base,mandrake",
    "--kolaTest",
    "nope",
  ]);
  assert.equal(art.code, 2);
  assert.deepEqual(lines(art.stderr).length, 2, art.stderr);
  assert.equal(art.stdout, "");
  const help = await runSubmit(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--build-artifact/);
  assert.match(help.stdout, /generate/);
  const ghelp = await runSubmit(["generate", "--help"]);
  assert.equal(ghelp.code, 0);
  assert.match(ghelp.stdout, /--yaml-out/);
});
