/**
 * The oscontainer push after a successful stage (reference §5 11.2, §9 "Registry push", with
 * §12.1.21 and §12.2.1-3 fixed): reference parsing, when a push happens, the three secret types,
 * TLS flags, failures naming the registry, and no secret in any log line or argv.
 */
import assert from "node:assert/strict";
import { chmod, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobSpec, Registry, Stage } from "../../lib/jobspec/mod.ts";
import {
  BashRunner,
  ImageRefError,
  parseImageRef,
  type RunScriptOptions,
  runWorker,
  type WorkerDeps,
  type WorkerResult,
} from "../../lib/worker/mod.ts";
import type { WorkSpec } from "../../lib/workspec/mod.ts";
import { ROOT, tempDir } from "../_helpers/mod.ts";
import { fakeBuild, FakeRunner, MemStore } from "./fakes.ts";

const B = "builder";
const INLINE_AUTH = btoa("robot:inl1ne-Passw0rd");
const INLINE = JSON.stringify({ auths: { "quay.example.com:8443": { auth: INLINE_AUTH } } });
const TOKEN = "eyJhbGciOi.SA-T0KEN-VALUE.sig";

Deno.test("parseImageRef: registry with port, tag, digest, no tag, localhost, implicit registry", () => {
  assert.deepEqual(parseImageRef("quay.example.com:8443/org/os:latest"), {
    registry: "quay.example.com:8443",
    explicitRegistry: true,
    path: "org/os",
    tag: "latest",
    name: "quay.example.com:8443/org/os",
  });
  const digest = "sha256:" + "ab".repeat(32);
  // TrimRight(":tag") would have eaten characters of the digest (§12.1.21).
  assert.deepEqual(parseImageRef(`registry.io/a/b@${digest}`), {
    registry: "registry.io",
    explicitRegistry: true,
    path: "a/b",
    digest,
    name: "registry.io/a/b",
  });
  assert.deepEqual(parseImageRef(`registry.io/a/b:v1@${digest}`).tag, "v1");
  assert.deepEqual(parseImageRef("registry.io/org/os"), {
    registry: "registry.io",
    explicitRegistry: true,
    path: "org/os",
    name: "registry.io/org/os",
  });
  assert.deepEqual(parseImageRef("localhost/os:tag"), {
    registry: "localhost",
    explicitRegistry: true,
    path: "os",
    tag: "tag",
    name: "localhost/os",
  });
  assert.equal(parseImageRef("localhost:5000/os").registry, "localhost:5000");
  // A tag made of "cutset" characters of the path stays a tag; the path stays whole.
  assert.equal(parseImageRef("r.io/fedora:fedora").path, "fedora");
  assert.deepEqual(parseImageRef("org/os:1"), {
    registry: "docker.io",
    explicitRegistry: false,
    path: "org/os",
    tag: "1",
    name: "org/os",
  });
  assert.equal(parseImageRef("docker://r.io/x:1").name, "r.io/x");
  for (
    const bad of ["", "r.io/", "r.io/Upper", "r.io/x:", "r.io/x@sha256:zz", "a b/c", "r.io/x:t/y"]
  ) {
    assert.throws(() => parseImageRef(bad), ImageRefError, bad);
  }
});

function workspec(stage: Stage, registries: Registry[]): WorkSpec {
  return {
    remotefiles: [],
    jobspec: {
      job: {},
      recipe: {},
      minio: { bucket: B },
      stages: [stage],
      publish_oscontainer: { registries },
    } as JobSpec,
    executeStages: [stage.id],
    return: { bucket: B, key_prefix: "" },
    relay: { host: "127.0.0.1", port: 1, region: "us-east-1", secure: false, accesskey: "AK" },
  };
}

interface Seen {
  text: string;
  env: Record<string, string>;
  authMode?: number;
  authText?: string;
  dirMode?: number;
}

/** A worker with a fake runner: `mkbuild <id> <names>` makes a build; push commands recorded. */
async function setup(opts: { failOn?: RegExp; output?: string } = {}) {
  const d = await tempDir("gp-osc-");
  const srv = d.path;
  const lines: string[] = [];
  const pushes: Seen[] = [];
  const handler = async (text: string, o: RunScriptOptions) => {
    const m = /^mkbuild (\S+) (.*)$/m.exec(text);
    if (m) {
      await fakeBuild(srv, m[1], m[2].split(","));
      return 0;
    }
    if (/^(cosa upload-oscontainer|skopeo)/.test(text)) {
      const rec: Seen = { text: text.trim(), env: o.env };
      const f = o.env.REGISTRY_AUTH_FILE;
      if (f) {
        rec.authMode = (await stat(f)).mode & 0o777;
        rec.dirMode = (await stat(join(f, ".."))).mode & 0o777;
        rec.authText = await readFile(f, "utf8");
      }
      pushes.push(rec);
      if (opts.output) o.onLine(opts.output, "stdout");
      return opts.failOn?.test(text) ? 5 : 0;
    }
    return 0;
  };
  const runner = new FakeRunner(handler);
  const tokenFile = join(srv, "..", `${srv.split("/").pop()}-token`);
  await writeFile(tokenFile, TOKEN + "\n", { mode: 0o600 });
  return {
    srv,
    lines,
    pushes,
    runner,
    tokenFile,
    run: (ws: WorkSpec, more: Partial<WorkerDeps> = {}): Promise<WorkerResult> =>
      runWorker(ws, {
        srvDir: srv,
        env: { COSA_FORCE_ARCH: "x86_64", PATH: "/usr/bin:/bin" },
        secretKey: "S3CR3T-KEY",
        store: new MemStore(),
        runner,
        log: (l) => lines.push(l),
        signal: new AbortController().signal,
        staggerMs: 5,
        saTokenPath: tokenFile,
        ...more,
      }),
    async [Symbol.asyncDispose]() {
      await Deno.remove(tokenFile).catch(() => {});
      await d[Symbol.asyncDispose]();
    },
  };
}

const stage = (cmd: string): Stage => ({ id: "build", commands: [cmd] });
const inline = (url = "quay.example.com:8443/org/os:stable"): Registry => ({
  url,
  secret_type: "inline",
  secret: INLINE,
});

function assertNoSecrets(where: string[], label: string) {
  for (const l of where) {
    for (
      const s of [INLINE, INLINE_AUTH, "inl1ne-Passw0rd", TOKEN, btoa(`serviceaccount:${TOKEN}`)]
    ) {
      assert.ok(!l.includes(s), `${label}: secret in ${JSON.stringify(l)}`);
    }
  }
}

async function dockerDirGone(srv: string) {
  assert.ok(!(await readdir(srv)).includes(".docker"), ".docker left behind");
}

Deno.test("push only when the stage produced a new ostree; inline auth 0600 in a 0700 dir, removed after", async () => {
  await using e = await setup({ output: `echo of the auth: ${INLINE}` });
  // 1. No build before: the new build is pushed.
  let r = await e.run(workspec(stage("mkbuild b1 ostree,qemu"), [inline()]));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(e.pushes.length, 2);
  const [up, copy] = e.pushes;
  assert.equal(up.text, "cosa upload-oscontainer --name=quay.example.com:8443/org/os");
  assert.equal(
    copy.text,
    "skopeo copy docker://quay.example.com:8443/org/os:b1 docker://quay.example.com:8443/org/os:stable",
  );
  for (const p of e.pushes) {
    assert.equal(p.env.REGISTRY_AUTH_FILE, join(e.srv, ".docker", "config.json"));
    assert.equal(p.authMode, 0o600);
    assert.equal(p.dirMode, 0o700);
    assert.equal(p.authText, INLINE, "inline secret written verbatim");
    assert.equal(p.env.FORCE_UNPRIVILEGED, "1");
    assert.equal(p.env.HOME, e.srv);
    assert.equal(p.env.DISABLE_TLS_VERIFICATION, undefined);
  }
  await dockerDirGone(e.srv);
  assertNoSecrets(e.lines, "log");
  assert.ok(e.lines.some((l) => l.includes("echo of the auth: ***")));

  // 2. Same ostree (only another artifact added): no push.
  e.pushes.length = 0;
  r = await e.run(workspec(stage("mkbuild b1 metal"), [inline()]));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(e.pushes.length, 0);
  assert.ok(e.lines.some((l) => l.includes("not pushing the oscontainer")));

  // 3. A new build (new ostree): pushed again, with its own build id.
  r = await e.run(workspec(stage("mkbuild b2 ostree"), [inline()]));
  assert.equal(r.exitCode, 0, r.message);
  assert.match(e.pushes[1].text, /:b2 docker:/);

  // 4. No registries: nothing, and a stage without a build pushes nothing either.
  e.pushes.length = 0;
  r = await e.run(workspec(stage("mkbuild b3 ostree"), []));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(e.pushes.length, 0);
});

Deno.test("a failed stage pushes nothing", async () => {
  await using e = await setup();
  const r = await e.run(workspec(stage("mkbuild b1 ostree\nexit 3"), [inline()]), {
    runner: new FakeRunner(async (t, o) => {
      if (t.startsWith("mkbuild")) {
        await fakeBuild(e.srv, "b1", ["ostree"]);
        return 3;
      }
      return e.runner.handler(t, o);
    }),
  });
  assert.equal(r.exitCode, 3);
  assert.equal(e.pushes.length, 0);
});

Deno.test("token: the SA token goes into the auth file, never onto argv or into logs", async () => {
  await using e = await setup({ output: `token is ${TOKEN}` });
  const r = await e.run(
    workspec(stage("mkbuild b1 ostree"), [{
      url: "registry.svc:5000/ns/os:4.1",
      secret_type: "token",
    }]),
  );
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(e.pushes.length, 2);
  for (const p of e.pushes) {
    assert.ok(!p.text.includes(TOKEN), "token on a command line");
    assert.ok(!p.text.includes("buildah"));
    assert.equal(p.authMode, 0o600);
    assert.deepEqual(JSON.parse(p.authText!), {
      auths: { "registry.svc:5000": { auth: btoa(`serviceaccount:${TOKEN}`) } },
    });
    for (const v of Object.values(p.env)) assert.ok(!v.includes(TOKEN), "token in env");
  }
  await dockerDirGone(e.srv);
  assertNoSecrets(e.lines, "log");
  assert.ok(e.lines.some((l) => l === "token is ***"));
});

Deno.test("token: an unreadable token file is a clear error naming the registry", async () => {
  await using e = await setup();
  const r = await e.run(
    workspec(stage("mkbuild b1 ostree"), [{ url: "r.example.org/os:1", secret_type: "token" }]),
    { saTokenPath: join(e.srv, "nope") },
  );
  assert.equal(r.exitCode, 1);
  assert.match(r.message!, /registry r\.example\.org .*token.*nope/);
  assert.equal(e.pushes.length, 0);
});

Deno.test("cluster: a clear error naming the registry, nothing run", async () => {
  await using e = await setup();
  const r = await e.run(
    workspec(stage("mkbuild b1 ostree"), [{
      url: "quay.io/org/os:1",
      secret_type: "cluster",
      secret: "my-pull-secret",
    }]),
  );
  assert.equal(r.exitCode, 1);
  assert.match(r.message!, /registry quay\.io .*cluster.*in-cluster secret mapping/);
  assert.equal(e.pushes.length, 0);
  await dockerDirGone(e.srv);
});

Deno.test("tls_verify false: skopeo TLS flags and DISABLE_TLS_VERIFICATION", async () => {
  await using e = await setup();
  const r = await e.run(
    workspec(stage("mkbuild b1 ostree"), [{ ...inline("localhost:5000/os"), tls_verify: false }]),
  );
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(
    e.pushes[1].text,
    "skopeo copy --src-tls-verify=false --dest-tls-verify=false docker://localhost:5000/os:b1 " +
      "docker://localhost:5000/os",
  );
  for (const p of e.pushes) assert.equal(p.env.DISABLE_TLS_VERIFICATION, "1");
});

Deno.test("a failed push is a stage failure naming the registry; auth removed; caches not returned", async () => {
  for (const failOn of [/^cosa upload-oscontainer/, /^skopeo/]) {
    await using e = await setup({ failOn, output: `auth ${INLINE_AUTH}` });
    const s: Stage = { ...stage("mkbuild b1 ostree"), return_files: ["builds/builds.json"] };
    const r = await e.run(
      workspec(s, [inline("quay.example.com:8443/org/os@sha256:" + "c".repeat(64))]),
    );
    assert.equal(r.exitCode, 1);
    assert.match(r.message!, /registry quay\.example\.com:8443/);
    assert.match(r.message!, failOn.source.includes("cosa") ? /upload-oscontainer/ : /skopeo/);
    assertNoSecrets([r.message!, ...e.lines], "failure");
    await dockerDirGone(e.srv);
    assert.equal(
      r.uploaded.some((k) => k.startsWith("cache/")),
      false,
      "return_files after failure",
    );
    assert.equal(r.buildId, "b1", "the build itself is still returned");
  }
});

Deno.test("second registry gets its own auth; an invalid url fails with exit 2 before anything runs", async () => {
  await using e = await setup();
  let r = await e.run(workspec(stage("mkbuild b1 ostree"), [
    inline(),
    { url: "other.example.net/os:x", secret_type: "token" },
  ]));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(e.pushes.length, 4);
  assert.equal(e.pushes[3].authText!.includes("other.example.net"), true);
  r = await e.run(workspec(stage("mkbuild b2 ostree"), [inline("r.io/Bad Name")]));
  assert.equal(r.exitCode, 2);
  assert.match(r.message!, /Bad Name/);
  assert.equal(e.pushes.length, 4);
});

Deno.test("integration: real runner, stand-in cosa and a fake skopeo on PATH", async () => {
  await using d = await tempDir("gp-osc-int-");
  const srv = join(d.path, "srv");
  const bin = join(d.path, "bin");
  await Deno.mkdir(srv);
  await Deno.mkdir(bin);
  const skopeo = join(bin, "skopeo");
  await writeFile(
    skopeo,
    `#!/bin/sh
{ echo "ARGS $*"; echo "AUTHMODE $(stat -c %a "$REGISTRY_AUTH_FILE")"; echo "TLS \${DISABLE_TLS_VERIFICATION:-}"; } >> "$HOME/skopeo.log"
echo "skopeo: copying"
`,
  );
  await chmod(skopeo, 0o755);
  const lines: string[] = [];
  const ws = workspec({ id: "build", commands: ["cosa fetch", "cosa build"] }, [inline()]);
  ws.jobspec.recipe = { git_url: "https://example.com/fake-config.git" };
  const run = () =>
    runWorker(ws, {
      srvDir: srv,
      env: {
        COSA_FORCE_ARCH: "x86_64",
        PATH: `${bin}:${ROOT}/examples/fake-cosa:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      },
      secretKey: "S3CR3T-KEY",
      store: new MemStore(),
      runner: new BashRunner(),
      log: (l) => lines.push(l),
      signal: new AbortController().signal,
      saTokenPath: join(d.path, "none"),
    });
  const r = await run();
  assert.equal(r.exitCode, 0, `${r.message}\n${lines.join("\n")}`);
  const rec = (await readFile(join(srv, "fake-cosa-upload-oscontainer.jsonl"), "utf8"))
    .trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(rec.length, 1);
  assert.deepEqual(rec[0].args, ["--name=quay.example.com:8443/org/os"]);
  assert.equal(rec[0].authMode, "600");
  assert.equal(rec[0].home, srv);
  assert.equal(rec[0].forceUnprivileged, "1");
  const sk = await readFile(join(srv, "skopeo.log"), "utf8");
  assert.match(
    sk,
    new RegExp(
      // The stand-in cosa's upload-oscontainer pushes its OCI layout to <name>:<build id>, then
      // the worker copies that to the registry's url.
      `^ARGS copy --quiet oci:tmp/oscontainer:${r.buildId} ` +
        `docker://quay.example.com:8443/org/os:${r.buildId}\nAUTHMODE 600\nTLS \n` +
        `ARGS copy docker://quay.example.com:8443/org/os:${r.buildId} ` +
        `docker://quay.example.com:8443/org/os:stable\nAUTHMODE 600\nTLS \n$`,
    ),
  );
  await dockerDirGone(srv);
  assertNoSecrets(lines, "integration log");
  // A stage that does not change the ostree pushes nothing more.
  ws.jobspec.stages = [{ id: "build", commands: ["cosa buildextend-metal"] }];
  const r2 = await run();
  assert.equal(r2.exitCode, 0, r2.message);
  assert.equal((await readFile(join(srv, "skopeo.log"), "utf8")).split("ARGS").length, 3);
});
