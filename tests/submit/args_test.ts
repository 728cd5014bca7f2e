import assert from "node:assert/strict";
import { HelpShown, parseDuration, parseSubmitArgs } from "../../lib/cli/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";

Deno.test("parseSubmitArgs: defaults", () => {
  const o = parseSubmitArgs([], { COSA_FORCE_ARCH: "s390x" });
  assert.equal(o.command, "run");
  assert.equal(o.spec, undefined);
  assert.deepEqual(o.artifacts, []);
  assert.equal(o.gitRef, "testing-devel");
  assert.equal(o.gitUrl, "https://github.com/coreos/fedora-coreos-config");
  assert.equal(o.bucket, undefined);
  assert.equal(o.arch, "s390x");
  assert.equal(o.output, "table");
  assert.equal(o.backend, "local");
  assert.equal(o.timeoutMs, 3_600_000);
  assert.equal(o.dryRun, false);
  assert.equal(o.lenient, false);
  assert.equal(o.cleanup, false);
});

Deno.test("parseSubmitArgs: Gangplank flags, repeated and comma forms", () => {
  const o = parseSubmitArgs([
    "-s",
    "j.yaml",
    "-A",
    "base,qemu",
    "--build-artifact",
    "metal+metal4k",
    "--kolaTest",
    "basicBios",
    "--kola-test",
    "long",
    "--singleCmd",
    "echo a,b",
    "--singleReq",
    "qemu",
    "--returnFiles",
    "tmp/x",
    "--bucket",
    "bk",
    "--keyPathPrefix",
    "pre",
    "--git-ref",
    "r",
    "--git-url",
    "u",
    "--git-commit",
    "c",
    "--repo",
    "https://a",
    "--repo",
    "https://b",
    "-a",
    "aarch64",
    "--lenient",
    "--dry-run",
    "-o",
    "json",
    "--backend",
    "kube",
    "-w",
    "/tmp/w",
    "-m",
    "cfg.json",
    "--report",
    "r.json",
    "--timeout",
    "1h30m",
    "--cleanup",
  ], { COSA_YUM_REPOS: "https://ignored" });
  assert.equal(o.spec, "j.yaml");
  assert.deepEqual(o.artifacts, ["base,qemu", "metal+metal4k"]);
  assert.deepEqual(o.kolaTests, ["basicBios", "long"]);
  assert.deepEqual(o.singleCmd, ["echo a,b"]);
  assert.deepEqual(o.singleReq, ["qemu"]);
  assert.deepEqual(o.returnFiles, ["tmp/x"]);
  assert.equal(o.bucket, "bk");
  assert.equal(o.keyPathPrefix, "pre");
  assert.deepEqual([o.gitRef, o.gitUrl, o.gitCommit], ["r", "u", "c"]);
  assert.deepEqual(o.repos, ["https://a", "https://b"]);
  assert.equal(o.arch, "aarch64");
  assert.ok(o.lenient && o.dryRun && o.cleanup);
  assert.equal(o.output, "json");
  assert.equal(o.backend, "kube");
  assert.equal(o.workDir, "/tmp/w");
  assert.equal(o.minioConfig, "cfg.json");
  assert.deepEqual(o.reports, ["r.json"]);
  assert.equal(o.timeoutMs, 5_400_000);
});

Deno.test("parseSubmitArgs: env fallbacks (COSA_YUM_REPOS, COSA_GANGPLANK_OS)", () => {
  const o = parseSubmitArgs([], {
    COSA_YUM_REPOS: "https://a, https://b,",
    COSA_GANGPLANK_OS: "rhcos",
  });
  assert.deepEqual(o.repos, ["https://a", "https://b"]);
  assert.equal(o.gitRef, "main");
  assert.equal(o.gitUrl, "https://github.com/openshift/os");
});

Deno.test("parseSubmitArgs: generate and generateSinglePod", () => {
  const g = parseSubmitArgs(["generate", "-A", "base", "--yaml-out", "o.yaml"], {});
  assert.equal(g.command, "generate");
  assert.equal(g.yamlOut, "o.yaml");
  assert.equal(g.single, false);
  const s = parseSubmitArgs(["generateSinglePod", "--cmd", "make", "--req", "qemu"], {});
  assert.equal(s.command, "generate");
  assert.equal(s.single, true);
  assert.deepEqual(s.singleCmd, ["make"]);
  assert.deepEqual(s.singleReq, ["qemu"]);
});

Deno.test("parseSubmitArgs: bad input is a UsageError; --help is HelpShown", () => {
  for (
    const argv of [
      ["--output", "xml"],
      ["--backend", "docker"],
      ["--timeout", "soon"],
      ["--timeout", "0s"],
      ["--nope"],
      ["-s"],
      ["extra-arg"],
    ]
  ) {
    assert.throws(() => parseSubmitArgs(argv, {}), UsageError, argv.join(" "));
  }
  for (const argv of [["--help"], ["generate", "--help"], ["-h"]]) {
    assert.throws(
      () => parseSubmitArgs(argv, {}),
      (e) => e instanceof HelpShown && /Usage:/.test(e.text),
    );
  }
});

Deno.test("parseDuration", () => {
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("90m"), 5_400_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("45"), 45_000);
  assert.throws(() => parseDuration("1d"), UsageError);
  assert.throws(() => parseDuration(""), UsageError);
});
