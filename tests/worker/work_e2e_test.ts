/**
 * scripts/work.ts as a subprocess, the way executors start it, against a real relay (started
 * in-process) with the fake cosa first on PATH.
 */
import assert from "node:assert/strict";
import { chmod, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { artifactsOf, latestBuild, readBuilds, validateMeta } from "../../lib/cosa/mod.ts";
import type { JobSpec, Stage } from "../../lib/jobspec/mod.ts";
import { type Relay, startRelay } from "../../lib/relay/mod.ts";
import { parseSummaryLine } from "../../lib/workspec/mod.ts";
import { encodeWorkSpec, type RemoteFile, type WorkSpec } from "../../lib/workspec/mod.ts";
import { ROOT, runScript, sha256File, tempDir, waitFor } from "../_helpers/mod.ts";
import { processesMatching } from "../_helpers/procs.ts";

const FAKE_COSA = `${ROOT}/examples/fake-cosa`;
const RECIPE = { git_url: "https://example.com/fake-config.git", git_ref: "main" };

function jobspec(stages: Stage[], extra: Partial<JobSpec> = {}): JobSpec {
  return { job: {}, recipe: RECIPE, minio: { bucket: "builder" }, stages, ...extra } as JobSpec;
}

function workspec(relay: Relay, js: JobSpec, remotefiles: RemoteFile[] = []): WorkSpec {
  const cfg = relay.config();
  return {
    remotefiles,
    jobspec: js,
    executeStages: [js.stages[0].id],
    return: { bucket: "builder", key_prefix: "" },
    relay: {
      host: cfg.host,
      port: cfg.port,
      region: cfg.region,
      secure: false,
      accesskey: cfg.accesskey,
    },
  };
}

function workerEnv(relay: Relay, ws: WorkSpec, srv: string, extra: Record<string, string> = {}) {
  return {
    COSA_WORK_POD_JSON: encodeWorkSpec(ws),
    COSA_RELAY_SECRET_KEY: relay.config().secretkey,
    COSA_SRV_DIR: srv,
    COSA_FORCE_ARCH: "x86_64",
    PATH: `${FAKE_COSA}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    ...extra,
  };
}

async function work(relay: Relay, ws: WorkSpec, srv: string, extra: Record<string, string> = {}) {
  const r = await runScript("work.ts", [], {
    env: workerEnv(relay, ws, srv, extra),
    timeoutMs: 90_000,
  });
  const secret = relay.config().secretkey;
  assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), "secret printed");
  const summary = r.stdout.split("\n").map(parseSummaryLine).find((x) => x);
  return { ...r, summary };
}

/** What the coordinator sends a stage requiring `names` of the latest build (and the cache). */
async function inputsFor(root: string, names: string[]): Promise<RemoteFile[]> {
  const builds = await readBuilds(join(root, "builds"));
  const id = latestBuild(builds, "x86_64")!.id;
  const meta = JSON.parse(await readFile(join(root, "builds", id, "x86_64", "meta.json"), "utf8"));
  const rf: RemoteFile[] = [
    { bucket: "builder", object: "builds.json", force_path: "builds/builds.json" },
    {
      bucket: "builder",
      object: `${id}/x86_64/meta.json`,
      force_path: `builds/${id}/x86_64/meta.json`,
    },
    {
      bucket: "builder",
      object: `${id}/x86_64/commitmeta.json`,
      force_path: `builds/${id}/x86_64/commitmeta.json`,
    },
    { bucket: "builder", object: "cache/cache.tar.gz", compressed: true },
  ];
  for (const a of artifactsOf(meta).filter((a) => names.includes(a.name))) {
    rf.push({
      bucket: "builder",
      object: `${id}/x86_64/${a.path}`,
      force_path: `builds/${id}/x86_64/${a.path}`,
      artifact: { name: a.name, path: a.path, sha256: a.sha256, size: a.size },
    });
  }
  return rf;
}

async function checkStoredBuild(root: string, id: string) {
  const dir = join(root, "builds", id, "x86_64");
  const meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8"));
  assert.deepEqual(validateMeta(meta).errors, []);
  for (const a of artifactsOf(meta)) {
    assert.equal(await sha256File(join(dir, a.path)), a.sha256, a.name);
  }
  return meta;
}

Deno.test("work.ts: base returns builds.json, meta, artifacts, caches; metal stage reuses them", async () => {
  await using root = await tempDir("gp-relay-");
  await using srv1 = await tempDir("gp-srv1-");
  await using srv2 = await tempDir("gp-srv2-");
  await using relay = await startRelay({ root: root.path, bucketDirs: { builder: "builds" } });

  const base = jobspec([{
    id: "base",
    build_artifacts: ["base"],
    return_cache: true,
    return_cache_repo: true,
    return_files: ["src/config/manifest.yaml"],
  }]);
  const r1 = await work(relay, workspec(relay, base), srv1.path);
  assert.equal(r1.code, 0, r1.stdout + r1.stderr);
  assert.match(r1.stdout, /cosa init --force --branch main https:\/\/example.com\/fake-config.git/);
  const id = latestBuild(await readBuilds(join(root.path, "builds")), "x86_64")!.id;
  const meta1 = await checkStoredBuild(root.path, id);
  assert.deepEqual(artifactsOf(meta1).map((a) => a.name).sort(), ["ostree", "qemu"]);
  assert.deepEqual(r1.summary?.artifactsReturned, ["ostree", "qemu"]);
  await stat(join(root.path, "builds", id, "x86_64", "commitmeta.json"));
  for (const c of ["cache.tar.gz", "repo.tar.gz"]) {
    assert.ok((await stat(join(root.path, "builds", "cache", c))).size > 0, c);
  }
  assert.match(
    await readFile(join(root.path, "builds/cache/src/config/manifest.yaml"), "utf8"),
    /fake manifest/,
  );

  // Second worker: requires ostree + the cache, builds metal.
  const metal = jobspec([{
    id: "metal",
    build_artifacts: ["metal"],
    require_artifacts: ["ostree"],
    require_cache: true,
  }]);
  const rf = await inputsFor(root.path, ["ostree"]);
  const ostree = artifactsOf(meta1).find((a) => a.name === "ostree")!;
  const storedOstree = join(root.path, "builds", id, "x86_64", ostree.path);
  const before = (await stat(storedOstree)).mtimeMs;
  const r2 = await work(relay, workspec(relay, metal, rf), srv2.path);
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  // inputs arrived verified, the cache was extracted under srv
  assert.equal(
    await sha256File(join(srv2.path, "builds", id, "x86_64", ostree.path)),
    ostree.sha256,
  );
  await stat(join(srv2.path, "cache/pkgcache-repo/fake-package.rpm"));
  assert.equal((await readdir(join(srv2.path, "cache"))).includes("cache.tar.gz"), false);
  const meta2 = await checkStoredBuild(root.path, id);
  assert.deepEqual(artifactsOf(meta2).map((a) => a.name).sort(), ["metal", "ostree", "qemu"]);
  assert.deepEqual(r2.summary?.artifactsReturned, ["metal"]);
  const metalPath = artifactsOf(meta2).find((a) => a.name === "metal")!.path;
  assert.deepEqual(r2.summary?.uploadedKeys, [
    `${id}/x86_64/${metalPath}`,
    `${id}/x86_64/meta.json`,
  ]);
  assert.equal((await stat(storedOstree)).mtimeMs, before, "unchanged artifact not re-uploaded");
  assert.equal(r2.summary?.filesFetched, rf.length);
  assert.ok((r2.summary?.bytesIn as number) > 0);

  // Same worker dir again: inputs already present with the right sha256 are not transferred.
  const r3 = await work(
    relay,
    workspec(relay, jobspec([{ id: "noop", commands: ["true"] }]), rf),
    srv2.path,
  );
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(r3.summary?.filesSkipped, 1, r3.stdout);
});

Deno.test("work.ts: a failing command gives its exit code and names stage and command", async () => {
  await using root = await tempDir("gp-relay-");
  await using srv = await tempDir("gp-srv-");
  await using relay = await startRelay({ root: root.path, bucketDirs: { builder: "builds" } });
  const js = jobspec([{
    id: "build-metal",
    build_artifacts: ["base", "metal"],
    post_commands: ["echo post-ran-$((40+2))"],
    post_always: true,
  }]);
  await using tl = await tempDir("gp-tl-");
  const termLog = join(tl.path, "termination-log");
  await writeFile(termLog, "");
  const r = await work(relay, workspec(relay, js), srv.path, {
    FAKE_COSA_FAIL: "buildextend-metal",
    COSA_TERMINATION_LOG: termLog,
  });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  const term = JSON.parse(await readFile(termLog, "utf8"));
  assert.equal(term.exitCode, 3);
  assert.match(term.message, /stage "build-metal": main command 2/);
  assert.deepEqual(term.artifactsReturned, ["ostree", "qemu"]);
  assert.match(
    r.stderr,
    /stage "build-metal": main command 2 \(cosa buildextend-metal\) exited with code 3/,
  );
  assert.match(r.stdout, /post-ran-42/);
  // The base build still came back (return runs after a failure).
  const id = latestBuild(await readBuilds(join(root.path, "builds")), "x86_64")!.id;
  await checkStoredBuild(root.path, id);
});

Deno.test("work.ts: secret from a 0600 file, hidden from commands; bad inputs exit 2", async () => {
  await using root = await tempDir("gp-relay-");
  await using srv = await tempDir("gp-srv-");
  await using relay = await startRelay({ root: root.path, bucketDirs: { builder: "builds" } });
  const secretFile = join(srv.path, "..", `${srv.path.split("/").pop()}.secret`);
  await writeFile(secretFile, relay.config().secretkey + "\n", { mode: 0o600 });
  try {
    const js = jobspec([{
      id: "env",
      commands: [
        "if env | grep -q 'COSA_RELAY_SECRET\\|COSA_WORK_POD_JSON'; then exit 42; fi; echo env-clean",
        `if [ -e '${secretFile}' ]; then exit 43; fi; echo file-gone`,
      ],
    }], { recipe: {} });
    const ws = workspec(relay, js);
    const env = workerEnv(relay, ws, srv.path, { COSA_RELAY_SECRET_FILE: secretFile });
    delete (env as Record<string, string>).COSA_RELAY_SECRET_KEY;
    const r = await runScript("work.ts", [], { env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /env-clean/);
    assert.match(r.stdout, /file-gone/);
    // Read once, then removed before any command ran.
    await assert.rejects(stat(secretFile), (e: Error & { code?: string }) => e.code === "ENOENT");

    await writeFile(secretFile, relay.config().secretkey + "\n", { mode: 0o600 });
    await chmod(secretFile, 0o644);
    const r2 = await runScript("work.ts", [], { env, timeoutMs: 60_000 });
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /must be 0600/);
  } finally {
    await Deno.remove(secretFile).catch(() => {});
  }

  const bad = JSON.parse(
    encodeWorkSpec(workspec(relay, jobspec([{ id: "x", commands: ["true"] }]))),
  );
  bad.remotefiles = [{ bucket: "builder", object: "x", force_path: "../../etc/cron.d/x" }];
  const r3 = await runScript("work.ts", [], {
    env: {
      ...workerEnv(relay, workspec(relay, jobspec([{ id: "x", commands: ["true"] }])), srv.path),
      COSA_WORK_POD_JSON: JSON.stringify(bad),
    },
    timeoutMs: 60_000,
  });
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /remotefiles\[0\]\.force_path: .*escapes the srv dir/);
  const r4 = await runScript("work.ts", [], { env: { COSA_WORK_POD_JSON: "" }, timeoutMs: 60_000 });
  assert.equal(r4.code, 2);
});

Deno.test("work.ts: SIGTERM stops the running command's whole process group, exit 143", async () => {
  await using root = await tempDir("gp-relay-");
  await using srv = await tempDir("gp-srv-");
  await using relay = await startRelay({ root: root.path, bucketDirs: { builder: "builds" } });
  const marker = `${31 + Math.floor(Math.random() * 1000) / 1000}`;
  const js = jobspec([{ id: "long", commands: [`sleep ${marker} & sleep ${marker}; wait`] }], {
    recipe: {},
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/scripts/work.ts`],
    env: workerEnv(relay, workspec(relay, js), srv.path),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const sleepers = () =>
    Promise.resolve(processesMatching((cmd) => cmd.startsWith("sleep ") && cmd.includes(marker)));
  const output = child.output();
  try {
    await waitFor(async () => (await sleepers()).length === 2, {
      timeoutMs: 30_000,
      what: "the command to start",
    });
    child.kill("SIGTERM");
    const out = await output;
    assert.equal(out.code, 143, new TextDecoder().decode(out.stderr));
    await waitFor(async () => (await sleepers()).length === 0, {
      timeoutMs: 5_000,
      what: "no sleep left",
    });
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await output.catch(() => {});
    for (const p of await sleepers()) Deno.kill(Number(p), "SIGKILL");
  }
});

Deno.test("work.ts: delayed merge — parallel workers return fragments, finalize merges them", async () => {
  await using root = await tempDir("gp-relay-");
  await using srvBase = await tempDir("gp-srv-");
  await using srvA = await tempDir("gp-srv-");
  await using srvB = await tempDir("gp-srv-");
  await using srvF = await tempDir("gp-srv-");
  await using relay = await startRelay({ root: root.path, bucketDirs: { builder: "builds" } });
  const stages: Stage[] = [
    { id: "base", build_artifacts: ["base"], return_cache: true },
    { id: "metal", build_artifacts: ["metal"], require_artifacts: ["ostree"] },
    { id: "aws", build_artifacts: ["aws"], concurrent: true, commands: ["cosa kola run basic"] },
    { id: "finalize", build_artifacts: ["finalize"] },
  ];
  const js = jobspec(stages, { delay_meta_merge: true });
  const ws = (id: string, rf: RemoteFile[] = []) => ({
    ...workspec(relay, js, rf),
    executeStages: [id],
  });
  const r0 = await work(relay, ws("base"), srvBase.path);
  assert.equal(r0.code, 0, r0.stdout + r0.stderr);
  const id = latestBuild(await readBuilds(join(root.path, "builds")), "x86_64")!.id;
  const dir = join(root.path, "builds", id, "x86_64");
  assert.equal(
    JSON.parse(
      await readFile(join(dir, "meta.json"), "utf8"),
    )["coreos-assembler.delayed-meta-merge"],
    true,
  );

  const inputs = await inputsFor(root.path, ["ostree"]);
  const [ra, rb] = await Promise.all([
    work(relay, ws("metal", inputs), srvA.path),
    work(relay, ws("aws", inputs), srvB.path),
  ]);
  assert.equal(ra.code, 0, ra.stdout + ra.stderr);
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  const names = await readdir(dir);
  assert.ok(names.includes("meta.metal.json") && names.includes("meta.aws.json"), names.join());
  assert.ok(names.some((n) => n.includes("-metal.")) && names.some((n) => n.includes("-aws.")));
  assert.ok((await readdir(join(dir, "logs"))).some((n) => /kola.*tar\.xz$/.test(n)));
  // meta.json itself was not modified by the extend stages
  assert.deepEqual(
    Object.keys(JSON.parse(await readFile(join(dir, "meta.json"), "utf8")).images).sort(),
    [
      "ostree",
      "qemu",
    ],
  );

  // finalize receives meta.json and its fragments, merges them, returns meta.json.
  const frags: RemoteFile[] = ["meta.metal.json", "meta.aws.json"].map((n) => ({
    bucket: "builder",
    object: `${id}/x86_64/${n}`,
    force_path: `builds/${id}/x86_64/${n}`,
  }));
  const rf = await work(
    relay,
    ws("finalize", [...inputs.filter((f) => !f.artifact), ...frags]),
    srvF.path,
  );
  assert.equal(rf.code, 0, rf.stdout + rf.stderr);
  assert.match(rf.stdout, /merged 2 fragment/);
  const meta = await checkStoredBuild(root.path, id);
  assert.deepEqual(artifactsOf(meta).map((a) => a.name).sort(), ["aws", "metal", "ostree", "qemu"]);
});

Deno.test("work.ts: registry secrets arrive apart from the WorkSpec, hidden from commands", async () => {
  await using root = await tempDir("gp-relay-");
  await using srv = await tempDir("gp-srv-");
  await using relay = await startRelay({ root: root.path, bucketDirs: { builder: "builds" } });
  const AUTH = '{"auths":{"quay.io":{"auth":"dG9wLXNlY3JldA=="}}}';
  const js = jobspec([{
    id: "env",
    commands: ["if env | grep -q 'COSA_REGISTRY_SECRETS\\|auths'; then exit 42; fi"],
  }], {
    recipe: {},
    publish_oscontainer: { registries: [{ url: "quay.io/me/os", secret_type: "inline" }] },
  });
  const ws = workspec(relay, js);
  const ok = await runScript("work.ts", [], {
    env: workerEnv(relay, ws, srv.path, { COSA_REGISTRY_SECRETS: JSON.stringify({ "0": AUTH }) }),
    timeoutMs: 60_000,
  });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.ok(!(ok.stdout + ok.stderr).includes("dG9wLXNlY3JldA=="), ok.stdout + ok.stderr);

  const file = join(srv.path, "..", `${srv.path.split("/").pop()}.registry`);
  await writeFile(file, JSON.stringify({ "0": AUTH }), { mode: 0o644 });
  try {
    const loose = await runScript("work.ts", [], {
      env: workerEnv(relay, ws, srv.path, { COSA_REGISTRY_SECRETS_FILE: file }),
      timeoutMs: 60_000,
    });
    assert.equal(loose.code, 2);
    assert.match(loose.stderr, /COSA_REGISTRY_SECRETS_FILE: .* must be 0600/);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
  const bad = await runScript("work.ts", [], {
    env: workerEnv(relay, ws, srv.path, { COSA_REGISTRY_SECRETS: "not-json-s3cr3t" }),
    timeoutMs: 60_000,
  });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /COSA_REGISTRY_SECRETS: expected a JSON object/);
  assert.ok(!bad.stderr.includes("not-json-s3cr3t"));
});
