import assert from "node:assert/strict";
import { join } from "node:path";
import {
  JobSpecError,
  type JobSpecIssue,
  loadJobSpec,
  parseJobSpec,
} from "../../lib/jobspec/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";
import { tempDir } from "../_helpers/mod.ts";

const FIX = "/work/shared/fixtures/jobspec";
const LOCATED = /^[^:\n]+:\d+:\d+: (\S+: )?.+$/;

function issuesOf(text: string, opts: { lenient?: boolean } = {}): JobSpecIssue[] {
  try {
    parseJobSpec(text, { file: "t.yaml", ...opts });
  } catch (e) {
    assert.ok(e instanceof JobSpecError, `expected JobSpecError, got ${e}`);
    assert.ok(e instanceof UsageError);
    for (const line of e.message.split("\n")) assert.match(line, LOCATED);
    return e.issues;
  }
  assert.fail("expected the JobSpec to be rejected");
}

const one = (text: string) => {
  const issues = issuesOf(text);
  assert.equal(issues.length, 1, JSON.stringify(issues));
  return issues[0];
};

Deno.test("upstream docs example: YAML errors at exact line and column", async () => {
  const err = await loadJobSpec(join(FIX, "upstream-docs-example.yaml"), {}).then(
    () => assert.fail("accepted"),
    (e) => e,
  );
  assert.ok(err instanceof JobSpecError);
  const at = err.issues.map((i: JobSpecIssue) => `${i.line}:${i.col}`);
  // the stray commas after the quoted registry URLs
  assert.ok(at.includes("35:59"), at.join(" "));
  assert.ok(at.includes("42:58"), at.join(" "));
  // the stage list with no `stages:` key
  assert.ok(at.includes("46:1"), at.join(" "));
  const first = err.message.split("\n")[0];
  assert.equal(
    first,
    `${join(FIX, "upstream-docs-example.yaml")}:35:59: Unexpected scalar at node end`,
  );
  // lenient does not accept broken YAML
  await assert.rejects(
    loadJobSpec(join(FIX, "upstream-docs-example.yaml"), { lenient: true }),
    JobSpecError,
  );
});

Deno.test("upstream mock-os: strict names every stale key, lenient warns and goes on", async () => {
  const file = join(FIX, "upstream-mock-os.yaml");
  const err = await loadJobSpec(file, {}).then(() => assert.fail("accepted"), (e) => e);
  assert.ok(err instanceof JobSpecError);
  const paths = err.issues.map((i: JobSpecIssue) => i.path).sort();
  assert.deepEqual(paths, [
    "clouds_cfgs.azure.secret_name",
    "clouds_cfgs.gcp.platform_id",
    "clouds_cfgs.gcp.secret_name",
    "clouds_cfgs.gcp.secret_payload",
    "job.force_version",
    "oscontainer",
  ]);
  const fv = err.issues.find((i: JobSpecIssue) => i.path === "job.force_version")!;
  assert.equal(`${fv.line}:${fv.col}`, "28:3");
  const osc = err.issues.find((i: JobSpecIssue) => i.path === "oscontainer")!;
  assert.equal(`${osc.line}:${osc.col}`, "33:1");
  assert.match(osc.message, /publish_oscontainer/);

  const { spec, warnings } = await loadJobSpec(file, { lenient: true });
  assert.equal(warnings.length, 6);
  assert.deepEqual(warnings.map((w) => w.path).sort(), paths);
  // TestJobSpec: the known keys are read
  assert.equal(spec.job.build_name, "mockOS-99");
  assert.equal(spec.job.version_suffix, "magical-unicorns");
  assert.equal(spec.recipe.git_ref, "mock");
  assert.deepEqual(spec.clouds_cfgs?.aws?.regions, ["us-east-1"]);
  assert.equal(spec.clouds_cfgs?.gcp?.project, "openshift-mockOS-devel");
  assert.equal(spec.clouds_cfgs?.aliyun?.enabled, false);
  assert.equal(spec.minio.bucket, "builder");
  assert.deepEqual(spec.stages, []);
});

Deno.test("type errors name path, position, expectation and the value", () => {
  const i = one(
    "stages:\n- id: a\n  commands: [x]\n- id: b\n  commands: [y]\n- id: c\n  commands: [z]\n" +
      "  execution_order: two\n",
  );
  assert.equal(i.path, "stages[2].execution_order");
  assert.equal(`${i.line}:${i.col}`, "8:20");
  assert.equal(i.message, 'expected an integer, got "two"');
  const e = (() => {
    try {
      parseJobSpec("stages:\n- id: c\n  commands: [z]\n  execution_order: two\n", {
        file: "f.yaml",
      });
    } catch (e) {
      return e as Error;
    }
    return new Error("accepted");
  })();
  assert.equal(e.message, 'f.yaml:4:20: stages[0].execution_order: expected an integer, got "two"');

  assert.match(one("job:\n  strict: maybe\n").message, /expected a boolean/);
  assert.match(one("stages: {a: 1}\n").message, /expected a list, got a mapping/);
  assert.match(one("recipe: [1]\n").message, /expected a mapping, got a list/);
  assert.match(
    one("stages:\n- id: a\n  build_artifacts: base\n").message,
    /expected a list, got "base"/,
  );
  assert.match(
    one("stages:\n- id: a\n  commands: [x]\n  execution_order: -1\n").message,
    /at least 0/,
  );
  assert.match(
    one("stages:\n- id: a\n  commands: [x]\n  execution_order: 1.5\n").message,
    /integer/,
  );
  assert.match(one("minio:\n  sshport: 1e400\n").message, /integer/);
});

Deno.test("yaml.v2-compatible scalars: numbers and booleans are read as strings where needed", () => {
  const { spec } = parseJobSpec("recipe:\n  git_ref: 4.8\njob:\n  build_name: 007\n", {});
  assert.equal(spec.recipe.git_ref, "4.8");
  assert.equal(spec.job.build_name, "007");
  const { spec: s2 } = parseJobSpec("job:\n  strict: yes\n", {});
  assert.equal(s2.job.strict, true);
});

Deno.test("unknown keys: did-you-mean, documented renames, lenient warnings", () => {
  const i = one("stages:\n- id: a\n  comands: [x]\n  commands: [y]\n");
  assert.equal(i.path, "stages[0].comands");
  assert.equal(`${i.line}:${i.col}`, "3:3");
  assert.match(i.message, /did you mean commands\?/);
  assert.match(one("stages:\n- id: a\n  command: [x]\n").message, /commands/);
  assert.match(
    one("stages:\n- id: a\n  commands: [x]\n  direct_execution: true\n").message,
    /direct_exec/,
  );
  assert.match(one("reciep:\n  git_ref: x\n").message, /did you mean recipe\?/);
  const r = parseJobSpec("stages:\n- id: a\n  comands: [x]\n  commands: [y]\n", { lenient: true });
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0].message, /ignored/);
  assert.deepEqual(r.spec.stages[0].commands, ["y"]);
});

Deno.test("stage ids: empty, missing and duplicates are errors", () => {
  const issues = issuesOf(
    "stages:\n- id: a\n  commands: [x]\n- id: a\n  commands: [x]\n- id: ''\n  commands: [x]\n" +
      "- commands: [x]\n",
  );
  const msgs = issues.map((i) => `${i.path}@${i.line}: ${i.message}`);
  assert.equal(issues.length, 3, msgs.join("\n"));
  assert.ok(msgs.some((m) => m.startsWith('stages[1].id@4: duplicate stage id "a"')), msgs.join());
  assert.ok(msgs.some((m) => m.startsWith("stages[2].id@6: stage id must not be empty")));
  assert.ok(msgs.some((m) => m.startsWith("stages[3]@8: stage id must not be empty")));
});

Deno.test("semantic checks: shorthands, artifacts, kola, publish, repos, overrides, paths", () => {
  const cases: [string, RegExp, string][] = [
    [
      "stages:\n- id: a\n  build_artifacts: [darkCloud]\n",
      /not a known buildable/,
      "stages[0].build_artifacts[0]",
    ],
    [
      "stages:\n- id: a\n  build_artifacts: [iso]\n",
      /cannot be built on its own/,
      "stages[0].build_artifacts[0]",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  require_artifacts: [base]\n",
      /ostree and qemu/,
      "stages[0].require_artifacts[0]",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  request_artifacts: [qemuu]\n",
      /did you mean qemu/,
      "stages[0].request_artifacts[0]",
    ],
    [
      "stages:\n- id: a\n  kola_tests: [basicbios2]\n",
      /unknown kola test/,
      "stages[0].kola_tests[0]",
    ],
    [
      "stages:\n- id: a\n  publish_artifacts: [aws]\n",
      /clouds_cfgs.aws is not configured/,
      "stages[0].publish_artifacts[0]",
    ],
    [
      "stages:\n- id: a\n  publish_artifacts: [metal]\n",
      /cannot publish/,
      "stages[0].publish_artifacts[0]",
    ],
    [
      "clouds_cfgs:\n  aliyun: {public: true}\nstages:\n- id: a\n  publish_artifacts: [aliyun]\n",
      /public/,
      "stages[0].publish_artifacts[0]",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  return_files: [../etc/passwd]\n",
      /\.\./,
      "stages[0].return_files[0]",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  return_files: [/etc/passwd]\n",
      /relative/,
      "stages[0].return_files[0]",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  overrides: [{uri: 'ftp://x.rpm', rpm: true}]\n",
      /file:\/\//,
      "stages[0].overrides[0].uri",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  overrides: [{uri: 'file://x.rpm'}]\n",
      /rpm or tarball/,
      "stages[0].overrides[0]",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  overrides: [{rpm: true}]\n",
      /missing required key uri/,
      "stages[0].overrides[0]",
    ],
    [
      "stages:\n- id: a\n  commands: [x]\n  overrides: [{uri: 'file://x', tarball: true, tarball_type: zip}]\n",
      /one of all, rpms, rpm, rootfs/,
      "stages[0].overrides[0].tarball_type",
    ],
    [
      "recipe:\n  repos:\n  - name: ../evil\n    inline: x\n",
      /must not contain/,
      "recipe.repos[0].name",
    ],
    ["recipe:\n  repos:\n  - name: a\n", /url or inline/, "recipe.repos[0]"],
    ["recipe:\n  repos:\n  - url: ftp://x\n", /http/, "recipe.repos[0].url"],
    [
      "publish_oscontainer:\n  registries:\n  - url: r\n    secret_type: magic\n",
      /one of inline, cluster, token/,
      "publish_oscontainer.registries[0].secret_type",
    ],
    [
      "publish_oscontainer:\n  registries:\n  - secret_type: token\n",
      /missing required key url/,
      "publish_oscontainer.registries[0]",
    ],
    ["stages:\n- id: a\n", /nothing to run/, "stages[0]"],
    [
      "stages:\n- id: a\n  commands: ['echo {{ .JobSpec.Job.BuildName']\n",
      /unclosed action/,
      "stages[0].commands[0]",
    ],
    ["minio:\n  key_prefix: ../x\n", /\.\./, "minio.key_prefix"],
    ["a: 1\na: 2\n", /unique/, ""],
    ["job: {}\n---\njob: {}\n", /multiple documents/, ""],
    ["", /empty/, ""],
    ["- 1\n", /expected a mapping/, ""],
    ["{1: 2}\n", /keys must be strings/, ""],
  ];
  for (const [text, re, path] of cases) {
    const issues = issuesOf(text);
    assert.ok(
      issues.some((i) => i.path === path && re.test(i.message)),
      `${JSON.stringify(text)}: ${JSON.stringify(issues)}`,
    );
    for (const i of issues) assert.ok(i.line >= 1 && i.col >= 1, JSON.stringify(i));
  }
  // secret_type is case-insensitive and normalised
  const { spec } = parseJobSpec(
    "publish_oscontainer:\n  registries:\n  - url: r\n    secret_type: Token\n",
    {},
  );
  assert.equal(spec.publish_oscontainer?.registries?.[0].secret_type, "token");
});

Deno.test("all problems are reported at once, sorted by position", () => {
  const issues = issuesOf(
    "job:\n  strict: 3\nstages:\n- id: a\n  execution_order: x\n  commands: [y]\n- id: a\n  commands: [z]\n",
  );
  assert.deepEqual(issues.map((i) => i.line), [2, 5, 7]);
});

Deno.test("aliases and anchors are followed", () => {
  const { spec } = parseJobSpec(
    "stages:\n- &s\n  id: a\n  commands: &c [x, y]\n- id: b\n  commands: *c\n",
    {},
  );
  assert.deepEqual(spec.stages[1].commands, ["x", "y"]);
});

Deno.test("a full spec with every section parses", () => {
  const text = `
archives:
  brew: {enabled: true, principle: p, profile: pr, tag: t}
  s3: {acl: private, bucket: b, path: p}
clouds_cfgs:
  aws: {enabled: true, ami_path: a, geo: cn, grant_user: [u1], grant_user_snapshot: [u2], public: false, regions: [r]}
  aws-cn: {enabled: true, ami_path: a}
  azure: {enabled: true, resource_group: g, storage_account: s, storage_container: c, storage_location: l, force: true}
  gcp: {enabled: true, bucket: b, create_image: true, deprecated: false, description: d, family: f, license: [l1, l2], log_level: info, project: p, public: true}
  aliyun: {enabled: true, bucket: b, public: false, regions: [r]}
job: {build_name: n, is_production: true, strict: true, version_suffix: s, force_arch: x, miniocfgfile: ""}
recipe:
  git_ref: r
  git_url: https://example.com/r
  git_commit: abc
  repos:
  - {name: a, url: https://example.com/a.repo}
  - {inline: "[x]"}
spec: {git_ref: r, git_url: u}
minio: {bucket: bkt, key_prefix: p/q, configfile: c, sshforward: h, sshuser: u, sshkey: k, sshport: 22}
publish_oscontainer:
  buildstrategy_tls_verify: false
  registries:
  - {url: "r/x:t", tls_verify: false, secret_type: inline, secret: "{}"}
delay_meta_merge: true
copy-build: "1.2.3"
stages:
- id: all
  description: d
  concurrent: true
  direct_exec: false
  not_blocking: false
  require_artifacts: [qemu]
  request_artifacts: [metal]
  build_artifacts: [aws]
  commands: [c]
  publish_artifacts: [aws, aws-cn, azure, gcp, aliyun]
  prep_commands: [p]
  post_commands: [q]
  post_always: true
  execution_order: 3
  return_cache: true
  require_cache: false
  request_cache: true
  return_cache_repo: true
  require_cache_repo: false
  request_cache_repo: true
  return_files: [a/b]
  kola_tests: [basicBios]
  overrides:
  - {uri: "https://x/y.rpm", rpm: true}
  - {uri: "file:///t.tar", tarball: true, tarball_type: rootfs}
`;
  const { spec, warnings } = parseJobSpec(text, {});
  assert.equal(warnings.length, 0);
  assert.equal(spec["copy-build"], "1.2.3");
  assert.equal(spec.clouds_cfgs?.["aws-cn"]?.ami_path, "a");
  assert.equal(spec.minio.sshport, 22);
  assert.equal(spec.stages[0].overrides?.[1].tarball_type, "rootfs");
  assert.equal(spec.publish_oscontainer?.buildstrategy_tls_verify, false);
  // The JSON wire form round-trips
  assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
});

Deno.test("loadJobSpec: missing file is a located JobSpecError", async () => {
  await using dir = await tempDir();
  const err = await loadJobSpec(join(dir.path, "nope.yaml"), {}).then(
    () => assert.fail("accepted"),
    (e) => e,
  );
  assert.ok(err instanceof JobSpecError);
  assert.match(err.message, /nope\.yaml: cannot read JobSpec: no such file/);
});
