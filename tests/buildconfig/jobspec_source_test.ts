import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors/mod.ts";
import {
  cloneArgv,
  effectiveRecipe,
  impliedStages,
  jobSpecOrigin,
  parseBuild,
} from "../../lib/buildconfig/mod.ts";

const files = (...present: string[]) => (p: string) => present.includes(p);

Deno.test("origin order: payload jobspec, then COSA_JOBSPEC_URL at COSA_JOBSPEC_REF, then /srv, then none", () => {
  const env = {
    COSA_JOBSPEC_URL: "https://git.example.com/jobs.git",
    COSA_JOBSPEC_REF: "release-4.12",
    COSA_JOBSPEC_FILE: "ci/job.yaml",
  };
  const all = files("/srv/source/ci/job.yaml", "/srv/ci/job.yaml");
  assert.deepEqual(
    jobSpecOrigin({ env, srvDir: "/srv", payloadDir: "/srv/source", isFile: all }),
    { kind: "payload", path: "/srv/source/ci/job.yaml" },
  );
  // A single-file payload named *.yaml is the JobSpec whatever COSA_JOBSPEC_FILE says.
  assert.deepEqual(
    jobSpecOrigin({
      env,
      srvDir: "/srv",
      payloadDir: "/srv/source",
      payloadFile: "/srv/source/mine.yml",
      isFile: files(),
    }),
    { kind: "payload", path: "/srv/source/mine.yml" },
  );
  // §12.1.7 fixed: the ref is the ref (not the file name), the file is the file.
  const repo = jobSpecOrigin({
    env,
    srvDir: "/srv",
    payloadDir: "/srv/source",
    isFile: files("/srv/ci/job.yaml"),
  });
  assert.deepEqual(repo, {
    kind: "repo",
    url: "https://git.example.com/jobs.git",
    ref: "release-4.12",
    file: "ci/job.yaml",
  });
  assert.deepEqual(cloneArgv(repo as { url: string; ref: string }, "/tmp/x"), [
    "git",
    "clone",
    "--depth=1",
    "--branch=release-4.12",
    "--",
    "https://git.example.com/jobs.git",
    "/tmp/x",
  ]);
  // §12.1.7 fixed: the file in /srv is used (Gangplank's inverted check never used it).
  assert.deepEqual(
    jobSpecOrigin({ env: {}, srvDir: "/srv", isFile: files("/srv/jobspec.yaml") }),
    { kind: "srv", path: "/srv/jobspec.yaml" },
  );
  assert.deepEqual(jobSpecOrigin({ env: {}, srvDir: "/srv", isFile: files() }), { kind: "none" });
});

Deno.test("hostile origin inputs are refused naming the variable", () => {
  const bad = (env: Record<string, string>, re: RegExp) =>
    assert.throws(() => jobSpecOrigin({ env, srvDir: "/srv", isFile: files() }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, re);
      return true;
    });
  bad({ COSA_JOBSPEC_FILE: "../../etc/shadow" }, /COSA_JOBSPEC_FILE/);
  bad({ COSA_JOBSPEC_FILE: "/etc/shadow" }, /COSA_JOBSPEC_FILE/);
  bad(
    { COSA_JOBSPEC_URL: "https://x/y.git", COSA_JOBSPEC_REF: "--upload-pack=touch /tmp/p" },
    /COSA_JOBSPEC_REF/,
  );
  bad({ COSA_JOBSPEC_REF: "main" }, /COSA_JOBSPEC_REF is set without COSA_JOBSPEC_URL/);
  assert.throws(() => cloneArgv({ url: "--upload-pack=x" }, "/d"), /COSA_JOBSPEC_URL/);
});

Deno.test("implied stages: COSA_CMDS as a script (§12.1.14), *.cosa.sh in name order, id clashes refused", () => {
  const st = impliedStages({
    env: { COSA_CMDS: "cosa fetch && cosa build" },
    scripts: ["b.cosa.sh", "notes.txt", "a.cosa.sh", "sub/c.cosa.sh"],
    scriptPath: (n) => `source/${n}`,
    existing: [{ id: "build" }],
  });
  assert.deepEqual(st, [
    {
      id: "envVar",
      description: "envVar defined commands",
      direct_exec: true,
      commands: ["cosa fetch && cosa build"],
    },
    {
      id: "cosa.sh",
      description: "*.cosa.sh scripts",
      direct_exec: true,
      commands: [
        "/bin/bash -xeu -o pipefail source/a.cosa.sh",
        "/bin/bash -xeu -o pipefail source/b.cosa.sh",
      ],
    },
  ]);
  assert.deepEqual(
    impliedStages({ env: { COSA_CMDS: "  " }, scripts: [], scriptPath: (n) => n, existing: [] }),
    [],
  );
  // A script name is quoted for the shell.
  const q = impliedStages({
    env: {},
    scripts: ["x;reboot.cosa.sh"],
    scriptPath: (n) => n,
    existing: [],
  });
  assert.equal(q[0].commands![0], "/bin/bash -xeu -o pipefail 'x;reboot.cosa.sh'");
  assert.throws(
    () =>
      impliedStages({
        env: { COSA_CMDS: "x" },
        scripts: [],
        scriptPath: (n) => n,
        existing: [{ id: "envVar" }],
      }),
    /reserved/,
  );
});

Deno.test("recipe: the JobSpec's, else the Build's git source, else SOURCE_URI/SOURCE_REF", () => {
  const build = parseBuild(
    '{"metadata":{"name":"b"},"spec":{"source":{"git":{"uri":"https://g/cfg","ref":"stable"}}}}',
  );
  const none = parseBuild('{"metadata":{"name":"b"},"spec":{}}');
  const env = { SOURCE_URI: "https://s/cfg", SOURCE_REF: "next" };
  const own = { recipe: { git_url: "https://own/cfg", git_ref: "main" } };
  assert.deepEqual(effectiveRecipe(own, build, env), own.recipe);
  assert.deepEqual(effectiveRecipe({ recipe: { repos: [{ url: "https://r" }] } }, build, env), {
    repos: [{ url: "https://r" }],
    git_url: "https://g/cfg",
    git_ref: "stable",
  });
  assert.deepEqual(effectiveRecipe({ recipe: {} }, none, env), {
    git_url: "https://s/cfg",
    git_ref: "next",
  });
  assert.deepEqual(effectiveRecipe({ recipe: {} }, none, {}), {});
});
