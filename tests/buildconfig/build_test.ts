// deno-lint-ignore-file no-explicit-any -- edits of a parsed JSON fixture
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { UsageError } from "../../lib/errors/mod.ts";
import { BuildSpecError, entryRole, parseBuild } from "../../lib/buildconfig/mod.ts";

const FIXTURE = readFileSync(
  new URL("./fixtures/build.json", import.meta.url),
  "utf8",
);

function variant(edit: (b: Record<string, any>) => void): string {
  const b = JSON.parse(FIXTURE);
  edit(b);
  return JSON.stringify(b);
}

function refused(text: string, field: string): BuildSpecError {
  let err: unknown;
  try {
    parseBuild(text);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof BuildSpecError, `expected a BuildSpecError for ${field}, got ${err}`);
  assert.equal(err.field, field);
  assert.equal(err.exitCode, 2);
  assert.equal(err.message.includes("\n"), false, "one line");
  assert.ok(err.message.startsWith(`BUILD: ${field}`), err.message);
  return err;
}

Deno.test("the real Build fixture: name, namespace, number, git source, strategy env, no output", () => {
  const b = parseBuild(FIXTURE);
  assert.deepEqual(b, {
    name: "r-master-19",
    namespace: "example",
    number: "19",
    buildConfig: "cosa-runner-master",
    serviceAccount: "jenkins-kvm",
    git: { uri: "https://github.com/coreos/fedora-coreos-config", ref: "testing-devel" },
    strategyEnv: {
      OCP_CUSTOM_BUILDER: "1",
      OPENSHIFT_CUSTOM_BUILD_BASE_IMAGE:
        "docker-registry.default.svc:5000/example/coreos-assembler@sha256:4a16bf77decab2e65485ec9cb529063961bdf0e574d651b42d9ebaae60354e98",
      COSA_CMDS: "cosa init",
    },
  });
});

Deno.test("YAML Builds (Gangplank's mock builds) and outputs of both kinds parse", () => {
  const b = parseBuild(
    "metadata: {name: cosa-1}\nspec:\n  source: {contextDir: /srv/work, binary: {asFile: job.yaml}}\n" +
      "  output:\n    to: {kind: ImageStreamTag, name: 'os:latest', namespace: other}\n" +
      "    pushSecret: {name: builder-dockercfg}\n",
  );
  assert.deepEqual(b.output, {
    kind: "ImageStreamTag",
    name: "os:latest",
    namespace: "other",
    pushSecret: "builder-dockercfg",
  });
  assert.equal(b.contextDir, "/srv/work");
  assert.deepEqual(b.binary, { asFile: "job.yaml" });
  const d = parseBuild(variant((x) => {
    x.spec.output = {
      to: { kind: "DockerImage", name: "127.0.0.1:5000/os/fcos@sha256:" + "a".repeat(64) },
    };
    x.spec.source.binary = {};
    x.spec.source.contextDir = "/";
  }));
  assert.equal(d.output?.kind, "DockerImage");
  assert.deepEqual(d.binary, {});
  assert.equal(d.contextDir, undefined, "contextDir / is the default srv dir");
});

Deno.test("hostile and malformed Builds: a one-line error naming the field", () => {
  refused("", "");
  refused("[1, 2]", "");
  refused("{not json", "");
  refused("a: &x [1]\nb: *x\n", "");
  refused("x".repeat(1024 * 1024 + 1), "");
  refused(variant((b) => (b.kind = "BuildConfig")), "kind");
  refused(variant((b) => (b.apiVersion = "apps/v1")), "apiVersion");
  refused(variant((b) => delete b.metadata), "metadata");
  refused(variant((b) => delete b.metadata.name), "metadata.name");
  refused(variant((b) => (b.metadata.name = "../etc")), "metadata.name");
  refused(variant((b) => (b.metadata.namespace = 7)), "metadata.namespace");
  refused(variant((b) => delete b.spec), "spec");
  const strat = refused(variant((b) => (b.spec.strategy.type = "Docker")), "spec.strategy.type");
  assert.match(strat.message, /unsupported build strategy "Docker"/);
  refused(
    variant((b) => (b.spec.strategy.customStrategy.env = { A: 1 })),
    "spec.strategy.customStrategy.env",
  );
  refused(
    variant((b) => b.spec.strategy.customStrategy.env.push("X=1")),
    "spec.strategy.customStrategy.env[3]",
  );
  refused(
    variant((b) => b.spec.strategy.customStrategy.env.push({ name: "A;rm -rf", value: "1" })),
    "spec.strategy.customStrategy.env[3].name",
  );
  refused(variant((b) => (b.spec.source.git = { ref: "main" })), "spec.source.git.uri");
  refused(variant((b) => (b.spec.source.git.ref = ["main"])), "spec.source.git.ref");
  refused(variant((b) => (b.spec.source.contextDir = "/srv/../etc")), "spec.source.contextDir");
  refused(
    variant((b) => (b.spec.source.binary = { asFile: "../../etc/passwd" })),
    "spec.source.binary.asFile",
  );
  refused(
    variant((b) => (b.spec.output = { to: { kind: "Image", name: "x" } })),
    "spec.output.to.kind",
  );
  refused(variant((b) => (b.spec.output = { to: { kind: "DockerImage" } })), "spec.output.to.name");
  refused(
    variant((b) => (b.spec.output = { to: { kind: "ImageStreamTag", name: "os" } })),
    "spec.output.to.name",
  );
  refused(
    variant((b) => (b.spec.output = { pushSecret: { name: "s" } })),
    "spec.output.pushSecret",
  );
});

Deno.test("valueFrom strategy env entries are left to the pod's environment", () => {
  const b = parseBuild(variant((x) => {
    x.spec.strategy.customStrategy.env = [
      { name: "COSA_CMDS", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
      { name: "COSA_JOBSPEC_URL", value: "https://git.example.com/jobs.git" },
    ];
  }));
  assert.deepEqual(b.strategyEnv, { COSA_JOBSPEC_URL: "https://git.example.com/jobs.git" });
});

Deno.test("role: WorkSpec → worker (even with BUILD), BUILD → buildconfig, neither → exit 2 naming both", () => {
  assert.equal(entryRole({ COSA_WORK_POD_JSON: "{}", BUILD: FIXTURE }), "worker");
  assert.equal(entryRole({ COSA_WORK_POD_JSON_PARTS: "2" }), "worker");
  assert.equal(entryRole({ BUILD: FIXTURE }), "buildconfig");
  for (const env of [{}, { BUILD: "" }, { COSA_WORK_POD_JSON: "" }]) {
    assert.throws(() => entryRole(env), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /COSA_WORK_POD_JSON/);
      assert.match(e.message, /BUILD/);
      assert.equal(e.message.includes("\n"), false);
      return true;
    });
  }
});

Deno.test("scripts/work.ts with neither COSA_WORK_POD_JSON nor BUILD: one line naming both, exit 2; a bad BUILD names the field", async () => {
  const run = async (env: Record<string, string>) => {
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", new URL("../../scripts/work.ts", import.meta.url).pathname],
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: o.code, err: new TextDecoder().decode(o.stderr).trim() };
  };
  const none = await run({});
  assert.equal(none.code, 2);
  assert.equal(none.err.split("\n").length, 1, none.err);
  assert.match(none.err, /COSA_WORK_POD_JSON.*BUILD/);
  const bad = await run({ BUILD: FIXTURE.replace('"Custom"', '"Docker"') });
  assert.equal(bad.code, 2);
  assert.equal(bad.err.split("\n").length, 1, bad.err);
  assert.match(bad.err, /BUILD: spec\.strategy\.type: unsupported build strategy "Docker"/);
});
