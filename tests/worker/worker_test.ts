import assert from "node:assert/strict";
import { mkdir, readFile, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobSpec, Stage } from "../../lib/jobspec/mod.ts";
import { runWorker, type WorkerDeps, type WorkerResult } from "../../lib/worker/mod.ts";
import type { RemoteFile, WorkSpec } from "../../lib/workspec/mod.ts";
import { extractTarGz } from "../../lib/archive/mod.ts";
import { tempDir } from "../_helpers/mod.ts";
import { artifactData, fakeBuild, FakeRunner, MemStore, sha256, writeRel } from "./fakes.ts";

const B = "builder";

function spec(stages: Stage[], extra: Partial<JobSpec> = {}): JobSpec {
  return { job: {}, recipe: {}, minio: { bucket: B }, stages, ...extra } as JobSpec;
}

function workspec(
  stages: Stage[],
  opts: { remotefiles?: RemoteFile[]; prefix?: string; extra?: Partial<JobSpec> } = {},
): WorkSpec {
  return {
    remotefiles: opts.remotefiles ?? [],
    jobspec: spec(stages, opts.extra),
    executeStages: [stages[0].id],
    return: { bucket: B, key_prefix: opts.prefix ?? "" },
    relay: { host: "127.0.0.1", port: 1, region: "us-east-1", secure: false, accesskey: "AK" },
  };
}

interface Env {
  srv: string;
  store: MemStore;
  runner: FakeRunner;
  lines: string[];
  run(ws: WorkSpec, more?: Partial<WorkerDeps>): Promise<WorkerResult>;
}

async function setup(
  handler?: ConstructorParameters<typeof FakeRunner>[0],
): Promise<Env & AsyncDisposable> {
  const d = await tempDir("gp-worker-");
  const store = new MemStore();
  const runner = new FakeRunner(handler);
  const lines: string[] = [];
  return {
    srv: d.path,
    store,
    runner,
    lines,
    run: (ws, more = {}) =>
      runWorker(ws, {
        srvDir: d.path,
        env: { MOCK_ENV: "1", COSA_FORCE_ARCH: "x86_64" },
        secretKey: "S3CR3T-KEY",
        store,
        runner,
        log: (l) => lines.push(l),
        signal: new AbortController().signal,
        staggerMs: 5,
        ...more,
      }),
    [Symbol.asyncDispose]: () => d[Symbol.asyncDispose](),
  };
}

const codeOf = (text: string) => Number(/exit (\d+)/.exec(text)?.[1] ?? "0");

Deno.test("prep → main (serial, in order) → post; env is exactly the one given", async () => {
  await using e = await setup((t) => codeOf(t));
  const r = await e.run(workspec([{
    id: "s",
    prep_commands: ["echo p1", "echo p2"],
    commands: ["echo c1", "echo c2", "echo c3"],
    post_commands: ["echo post"],
  }]));
  assert.equal(r.exitCode, 0, r.message);
  assert.deepEqual(e.runner.seen.map((s) => s.text.trim()), [
    "echo p1\necho p2",
    "echo c1",
    "echo c2",
    "echo c3",
    "echo post",
  ]);
  for (const s of e.runner.seen) {
    assert.deepEqual(s.env, { MOCK_ENV: "1", COSA_FORCE_ARCH: "x86_64" });
    assert.equal(s.cwd, e.srv);
  }
});

Deno.test("serial failure: later commands skipped, post skipped, message names stage and command", async () => {
  await using e = await setup((t) => codeOf(t));
  const r = await e.run(workspec([{
    id: "build-base",
    commands: ["echo one", "cosa build; exit 3", "echo three"],
    post_commands: ["echo post"],
  }]));
  assert.equal(r.exitCode, 3);
  assert.equal(
    r.message,
    'stage "build-base": main command 2 (cosa build; exit 3) exited with code 3',
  );
  assert.deepEqual(e.runner.seen.map((s) => s.text.trim()), ["echo one", "cosa build; exit 3"]);
  assert.equal(r.failures.length, 1);
  assert.equal(r.failures[0].part, "main");
  assert.equal(r.failures[0].index, 2);
});

Deno.test("post_always runs post after a failure; exit code stays the main command's", async () => {
  await using e = await setup((t) => codeOf(t));
  const r = await e.run(workspec([{
    id: "s",
    commands: ["exit 4"],
    post_commands: ["echo post; exit 9"],
    post_always: true,
  }]));
  assert.equal(r.exitCode, 4);
  assert.deepEqual(e.runner.seen.map((s) => s.text.trim()), ["exit 4", "echo post; exit 9"]);
  assert.deepEqual(r.failures.map((f) => [f.part, f.exitCode]), [["main", 4], ["post", 9]]);
});

Deno.test("post failure alone fails the stage; prep failure skips main", async () => {
  await using e = await setup((t) => codeOf(t));
  const r = await e.run(workspec([{ id: "s", commands: ["true"], post_commands: ["exit 7"] }]));
  assert.equal(r.exitCode, 7);
  assert.match(r.message!, /^stage "s": post commands exited with code 7$/);
  await using e2 = await setup((t) => codeOf(t));
  const r2 = await e2.run(workspec([{
    id: "p",
    prep_commands: ["exit 5"],
    commands: ["echo never"],
    post_commands: ["echo post"],
    post_always: true,
  }]));
  assert.equal(r2.exitCode, 5);
  assert.match(r2.message!, /prep commands exited with code 5/);
  assert.deepEqual(e2.runner.seen.map((s) => s.text.trim()), ["exit 5", "echo post"]);
});

Deno.test("concurrent: all commands run and EVERY failure is collected", async () => {
  await using e = await setup(async (t) => {
    const ms = Number(/sleep (\d+)/.exec(t)?.[1] ?? "0");
    await new Promise((r) => setTimeout(r, ms));
    return codeOf(t);
  });
  const cmds = ["exit 11", "true", "sleep 30; exit 12", "sleep 200; exit 13", "sleep 1", "exit 14"];
  const r = await e.run(workspec([{
    id: "c",
    concurrent: true,
    prep_commands: ["echo prep"],
    commands: cmds,
    post_commands: ["echo post"],
    post_always: true,
  }]));
  assert.equal(r.exitCode, 11); // first failing command by position
  assert.deepEqual(r.failures.filter((f) => f.part === "main").map((f) => f.exitCode).sort(), [
    11,
    12,
    13,
    14,
  ]);
  const seen = e.runner.seen.map((s) => s.text.trim());
  assert.equal(seen[0], "echo prep");
  assert.equal(seen[seen.length - 1], "echo post");
  assert.deepEqual(seen.slice(1, -1).sort(), [...cmds].sort());
  // They overlapped (the slow one was still running when later ones started) and post came last.
  const slow = e.runner.seen.find((s) => s.text.includes("sleep 200"))!;
  const last = e.runner.seen.find((s) => s.text.trim() === "exit 14")!;
  assert.ok(last.start < slow.end, "commands ran in parallel");
  const post = e.runner.seen[e.runner.seen.length - 1];
  assert.ok(post.start >= slow.end, "post waited for all commands");
  for (const f of [11, 12, 13, 14]) {
    assert.ok(e.lines.some((l) => l.includes(`exited with code ${f}`)), `failure ${f} reported`);
  }
});

Deno.test("concurrent stage with no main commands does not hang", async () => {
  await using e = await setup();
  const r = await e.run(workspec([{ id: "c", concurrent: true, prep_commands: ["true"] }]));
  assert.equal(r.exitCode, 0);
});

Deno.test("templates render against JobSpec and the latest build's meta; errors run nothing", async () => {
  await using e = await setup();
  await fakeBuild(e.srv, "b.1", ["ostree"]);
  const r = await e.run(workspec([{
    id: "t",
    commands: ["echo {{.Meta.BuildID}} {{.JobSpec.Job.BuildName}} <<EOF\nx\nEOF"],
  }], { extra: { job: { build_name: "mock & <os>" } } }));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(e.runner.seen[0].text.trim(), "echo b.1 mock & <os> <<EOF\nx\nEOF");
  assert.equal(await readlink(join(e.srv, "builds", "latest")), "b.1");

  await using e2 = await setup();
  const r2 = await e2.run(
    workspec([{ id: "t", commands: ["echo ok", "echo {{ .This.Wont.Work }}"] }]),
  );
  assert.equal(r2.exitCode, 2);
  assert.match(
    r2.message!,
    /^stage "t": main command 2 \(echo \{\{ \.This\.Wont\.Work \}\}\): cannot render/,
  );
  assert.equal(e2.runner.seen.length, 0);
});

Deno.test("no commands at all is an error (exit 2)", async () => {
  await using e = await setup();
  const r = await e.run(workspec([{ id: "empty" }]));
  assert.equal(r.exitCode, 2);
  assert.match(r.message!, /no commands to execute/);
});

Deno.test("cosa init runs only with a recipe URL and no src/config", async () => {
  await using e = await setup(async (t, o) => {
    if (t.startsWith("cosa init")) await mkdir(join(o.cwd, "src", "config"), { recursive: true });
    return 0;
  });
  const extra = {
    recipe: { git_url: "https://example.com/c fg.git", git_ref: "testing", git_commit: "abc" },
  };
  const r = await e.run(workspec([{ id: "s", commands: ["true"] }], { extra }));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(
    e.runner.seen[0].text.trim(),
    "cosa init --force --branch testing --commit abc 'https://example.com/c fg.git'",
  );
  e.runner.seen = [];
  await e.run(workspec([{ id: "s", commands: ["true"] }], { extra }));
  assert.deepEqual(e.runner.seen.map((s) => s.text.trim()), ["true"]);

  await using e2 = await setup((t) => (t.startsWith("cosa init") ? 128 : 0));
  const r2 = await e2.run(
    workspec([{ id: "s", commands: ["true"] }], { extra: { recipe: { git_url: "u" } } }),
  );
  assert.equal(r2.exitCode, 128);
  assert.match(r2.message!, /failed to clone recipe/);
  assert.equal(e2.runner.seen[0].text.trim(), "cosa init u");
  assert.equal(e2.runner.seen.length, 1);
});

Deno.test("fetch: verified, written at force_path, bad sha256 fails before any command", async () => {
  await using e = await setup();
  const data = artifactData("b.1", "qemu");
  e.store.put(B, "p/b.1/x86_64/q.img", data);
  e.store.put(
    B,
    "p/builds.json",
    JSON.stringify({
      "schema-version": "1",
      builds: [{ id: "b.1", arches: ["x86_64"] }],
      timestamp: "",
    }),
  );
  const rf: RemoteFile[] = [
    {
      bucket: B,
      object: "p/b.1/x86_64/q.img",
      force_path: "builds/b.1/x86_64/q.img",
      artifact: { name: "qemu", path: "q.img", sha256: sha256(data), size: data.length },
    },
    { bucket: B, object: "p/builds.json", force_path: "builds/builds.json" },
  ];
  const r = await e.run(
    workspec([{ id: "s", commands: ["true"] }], { remotefiles: rf, prefix: "p" }),
  );
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(await readFile(join(e.srv, "builds/b.1/x86_64/q.img"), "utf8"), data);
  assert.equal(r.bytesIn, data.length + e.store.get(B, "p/builds.json")!.length);
  assert.equal(r.filesFetched, 2);

  // Already present with the right sha256: not transferred again.
  const again = await e.run(
    workspec([{ id: "s", commands: ["true"] }], { remotefiles: rf.slice(0, 1), prefix: "p" }),
  );
  assert.equal(again.filesSkipped, 1);
  assert.equal(again.bytesIn, 0);

  await using e2 = await setup();
  e2.store.put(B, "k", "tampered");
  const r2 = await e2.run(workspec([{ id: "s", commands: ["true"] }], {
    remotefiles: [{
      bucket: B,
      object: "k",
      force_path: "builds/x",
      artifact: { path: "x", sha256: sha256("orig") },
    }],
  }));
  assert.equal(r2.exitCode, 1);
  assert.match(r2.message!, /remotefiles\[0\] builder\/k: .*sha256 mismatch/);
  assert.equal(e2.runner.seen.length, 0);
  await assert.rejects(stat(join(e2.srv, "builds", "x")));
});

Deno.test("fetch: a symlink inside srv cannot redirect a download outside it", async () => {
  await using outside = await tempDir("gp-outside-");
  await using e = await setup();
  await symlink(outside.path, join(e.srv, "builds"));
  e.store.put(B, "x", "data");
  const r = await e.run(workspec([{ id: "s", commands: ["true"] }], {
    remotefiles: [{ bucket: B, object: "x", force_path: "builds/x" }],
  }));
  assert.equal(r.exitCode, 1);
  assert.match(r.message!, /escapes the srv dir/);
  await assert.rejects(stat(join(outside.path, "x")));
});

Deno.test("fetch: compressed caches are extracted under srv (srv/ prefix stripped)", async () => {
  await using src = await tempDir();
  await writeRel(src.path, "cache/pkg/a.rpm", "rpm-data");
  const { packTarGz } = await import("../../lib/archive/mod.ts");
  const tgz = join(src.path, "c.tar.gz");
  await packTarGz({ root: src.path, paths: ["cache"], dest: tgz, entryPrefix: "srv" });
  await using e = await setup();
  e.store.put(B, "cache/cache.tar.gz", await readFile(tgz));
  const r = await e.run(workspec([{ id: "s", commands: ["true"] }], {
    remotefiles: [{ bucket: B, object: "cache/cache.tar.gz", compressed: true }],
  }));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(await readFile(join(e.srv, "cache/pkg/a.rpm"), "utf8"), "rpm-data");
  await assert.rejects(stat(join(e.srv, "cache/cache.tar.gz")));
});

Deno.test("repos: written to src/config with safe names; unsafe name fails", async () => {
  await using e = await setup();
  const r = await e.run(workspec([{ id: "s", commands: ["true"] }], {
    extra: { recipe: { repos: [{ name: "named repo", inline: "[x]\n" }, { inline: "[y]\n" }] } },
  }));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(await readFile(join(e.srv, "src/config/named repo.repo"), "utf8"), "[x]\n");
  assert.equal(await readFile(join(e.srv, `src/config/${sha256("[y]\n")}.repo`), "utf8"), "[y]\n");
  await using e2 = await setup();
  const r2 = await e2.run(workspec([{ id: "s", commands: ["true"] }], {
    extra: { recipe: { repos: [{ name: "../../evil", inline: "x" }] } },
  }));
  assert.equal(r2.exitCode, 1);
  assert.match(r2.message!, /recipe\.repos\[0\]/);
  assert.equal(e2.runner.seen.length, 0);
});

Deno.test("return: artifacts, meta, kola logs, builds.json merged with the store's, caches, return_files", async () => {
  await using e = await setup(async (t, o) => {
    if (t.includes("BUILD")) {
      await fakeBuild(o.cwd, "b.2", ["ostree", "qemu"]);
      await writeRel(o.cwd, "tmp/kola-basic.tar.xz", "kola-log");
      await writeRel(o.cwd, "tmp/other.tar.xz", "not kola");
      await writeRel(o.cwd, "cache/pkgs/p.rpm", "pkg");
      await writeRel(o.cwd, "tmp/repo/config", "repo");
      await writeRel(o.cwd, "out/report.txt", "report");
      await writeRel(o.cwd, "builds/b.2/x86_64/stray.bin", "not an artifact");
      await writeRel(o.cwd, "builds/b.2/x86_64/commitmeta.json", "{}");
    }
    return 0;
  });
  // Another worker already returned build b.1
  e.store.put(
    B,
    "p/builds.json",
    JSON.stringify({
      "schema-version": "1.0.0",
      builds: [{ id: "b.1", arches: ["aarch64"] }],
      timestamp: "",
    }),
  );
  const r = await e.run(workspec([{
    id: "base",
    commands: ["BUILD"],
    return_cache: true,
    return_cache_repo: true,
    return_files: ["out/report.txt"],
  }], { prefix: "p" }));
  assert.equal(r.exitCode, 0, r.message);
  const meta = JSON.parse(e.store.text(B, "p/b.2/x86_64/meta.json")!);
  for (const n of ["ostree", "qemu"]) {
    const a = meta.images[n];
    assert.equal(sha256(e.store.get(B, `p/b.2/x86_64/${a.path}`)!), a.sha256);
  }
  assert.deepEqual(r.artifactsReturned.sort(), ["ostree", "qemu"]);
  assert.equal(e.store.text(B, "p/b.2/x86_64/commitmeta.json"), "{}");
  assert.equal(e.store.get(B, "p/b.2/x86_64/stray.bin"), undefined);
  assert.equal(e.store.text(B, "p/b.2/x86_64/logs/kola-basic.tar.xz"), "kola-log");
  assert.equal(e.store.get(B, "p/b.2/x86_64/logs/other.tar.xz"), undefined);
  const builds = JSON.parse(e.store.text(B, "p/builds.json")!);
  assert.deepEqual(builds.builds.map((b: { id: string }) => b.id).sort(), ["b.1", "b.2"]);
  assert.equal(e.store.text(B, "p/cache/out/report.txt"), "report");
  // builds.json is written last, after the files it refers to
  assert.equal(e.store.puts[e.store.puts.length - 1 - 3], "p/builds.json");
  // caches: srv/cache/... entries
  await using x = await tempDir();
  await writeFile(join(x.path, "c.tgz"), e.store.get(B, "p/cache/cache.tar.gz")!);
  await extractTarGz(join(x.path, "c.tgz"), join(x.path, "out"));
  assert.equal(await readFile(join(x.path, "out/srv/cache/pkgs/p.rpm"), "utf8"), "pkg");
  await writeFile(join(x.path, "r.tgz"), e.store.get(B, "p/cache/repo.tar.gz")!);
  await extractTarGz(join(x.path, "r.tgz"), join(x.path, "out2"), { stripPrefix: "srv" });
  assert.equal(await readFile(join(x.path, "out2/tmp/repo/config"), "utf8"), "repo");
  assert.equal(r.buildId, "b.2");
  assert.ok(r.bytesOut > 0);
});

Deno.test("return: fetched artifacts unchanged are not uploaded again (with key_prefix)", async () => {
  await using e = await setup(async (t, o) => {
    if (t.includes("METAL")) await fakeBuild(o.cwd, "b.1", ["metal"]);
    return 0;
  });
  // The store holds base build b.1 (ostree); the worker receives it like the coordinator sends it.
  await using seed = await tempDir();
  const meta = await fakeBuild(seed.path, "b.1", ["ostree"]);
  const file = meta.images!.ostree.path;
  e.store.put(
    B,
    `pre/b.1/x86_64/${file}`,
    await readFile(join(seed.path, "builds/b.1/x86_64", file)),
  );
  e.store.put(
    B,
    "pre/b.1/x86_64/meta.json",
    await readFile(join(seed.path, "builds/b.1/x86_64/meta.json")),
  );
  e.store.put(B, "pre/builds.json", await readFile(join(seed.path, "builds/builds.json")));
  const rf: RemoteFile[] = [
    {
      bucket: B,
      object: `pre/b.1/x86_64/${file}`,
      force_path: `builds/b.1/x86_64/${file}`,
      artifact: { name: "ostree", path: file, sha256: meta.images!.ostree.sha256 },
    },
    { bucket: B, object: "pre/b.1/x86_64/meta.json", force_path: "builds/b.1/x86_64/meta.json" },
    { bucket: B, object: "pre/builds.json", force_path: "builds/builds.json" },
  ];
  const r = await e.run(
    workspec([{ id: "metal", commands: ["METAL"] }], { remotefiles: rf, prefix: "pre" }),
  );
  assert.equal(r.exitCode, 0, r.message);
  assert.ok(!e.store.puts.includes(`pre/b.1/x86_64/${file}`), e.store.puts.join(","));
  assert.deepEqual(r.artifactsReturned, ["metal"]);
  assert.ok(e.store.puts.includes("pre/b.1/x86_64/meta.json"));
  assert.ok(!e.store.puts.includes("pre/builds.json"), "builds.json unchanged: not rewritten");
  const m = JSON.parse(e.store.text(B, "pre/b.1/x86_64/meta.json")!);
  assert.deepEqual(Object.keys(m.images).sort(), ["metal", "ostree"]);
});

Deno.test("return: meta.json updated concurrently by another worker is merged, not clobbered", async () => {
  await using e = await setup(async (t, o) => {
    if (t.includes("QEMU")) await fakeBuild(o.cwd, "b.1", ["qemu"]);
    return 0;
  });
  await using seed = await tempDir();
  await fakeBuild(seed.path, "b.1", ["ostree"]);
  const metaBytes = await readFile(join(seed.path, "builds/b.1/x86_64/meta.json"));
  e.store.put(B, "b.1/x86_64/meta.json", metaBytes);
  // While our worker runs, a parallel worker returns metal.
  const other = JSON.parse(new TextDecoder().decode(metaBytes));
  other.images.metal = { path: "m.img", sha256: sha256("m"), size: 1 };
  const runner = e.runner;
  const orig = runner.handler;
  const r = await e.run(
    workspec([{ id: "qemu", commands: ["QEMU"] }], {
      remotefiles: [{
        bucket: B,
        object: "b.1/x86_64/meta.json",
        force_path: "builds/b.1/x86_64/meta.json",
      }],
    }),
    {
      runner: new FakeRunner(async (t, o) => {
        e.store.put(B, "b.1/x86_64/meta.json", JSON.stringify(other));
        return await orig(t, o);
      }),
    },
  );
  assert.equal(r.exitCode, 0, r.message);
  const m = JSON.parse(e.store.text(B, "b.1/x86_64/meta.json")!);
  assert.deepEqual(Object.keys(m.images).sort(), ["metal", "ostree", "qemu"]);
});

Deno.test("return runs after a failed stage (logs, meta come back); caches do not", async () => {
  await using e = await setup(async (t, o) => {
    await fakeBuild(o.cwd, "b.9", ["ostree"]);
    await writeRel(o.cwd, "tmp/kola-x.tar.xz", "log");
    await writeRel(o.cwd, "cache/x", "c");
    return t.includes("FAIL") ? 6 : 0;
  });
  const r = await e.run(workspec([{ id: "f", commands: ["FAIL"], return_cache: true }]));
  assert.equal(r.exitCode, 6);
  assert.ok(e.store.get(B, "b.9/x86_64/meta.json"));
  assert.equal(e.store.text(B, "b.9/x86_64/logs/kola-x.tar.xz"), "log");
  assert.ok(e.store.get(B, "builds.json"));
  assert.equal(e.store.get(B, "cache/cache.tar.gz"), undefined);
});

Deno.test("return: upload errors and escaping return_files fail the worker (exit 1)", async () => {
  await using outside = await tempDir("gp-outside-");
  await writeFile(join(outside.path, "secret"), "x");
  await using e = await setup(async (_t, o) => {
    await fakeBuild(o.cwd, "b.1", ["ostree"]);
    await symlink(join(outside.path, "secret"), join(o.cwd, "link"));
    return 0;
  });
  e.store.failPut.add("b.1/x86_64/meta.json");
  const r = await e.run(workspec([{
    id: "u",
    commands: ["x"],
    return_files: ["../etc/passwd", "link", "nothere"],
  }]));
  assert.equal(r.exitCode, 1);
  assert.match(r.message!, /upload\(s\) failed/);
  assert.match(r.message!, /b\.1\/x86_64\/meta\.json: simulated upload failure/);
  assert.match(r.message!, /return_files "\.\.\/etc\/passwd": escapes the srv dir/);
  assert.match(r.message!, /return_files "link": .*escapes the srv dir/);
  assert.match(r.message!, /return_files "nothere"/);
  assert.equal(e.store.get(B, "cache/link"), undefined);
});

Deno.test("the relay secret never reaches the log", async () => {
  await using e = await setup((_t, o) => {
    o.onLine("token is S3CR3T-KEY here", "stdout");
    return 0;
  });
  const r = await e.run(workspec([{ id: "s", commands: ["x"] }]));
  assert.equal(r.exitCode, 0);
  assert.ok(e.lines.some((l) => l === "token is *** here"));
  assert.ok(!e.lines.some((l) => l.includes("S3CR3T-KEY")));
});

Deno.test("abort: the running command sees the signal and the worker reports it", async () => {
  const ac = new AbortController();
  await using e = await setup((_t, o) =>
    new Promise<number>((resolve) => {
      o.signal.addEventListener("abort", () => resolve(143), { once: true });
      ac.abort();
    })
  );
  const r = await e.run(workspec([{ id: "s", commands: ["sleep", "never"] }]), {
    signal: ac.signal,
  });
  assert.equal(r.aborted, true);
  assert.notEqual(r.exitCode, 0);
  assert.equal(e.runner.seen.length, 1);
});

Deno.test("return: builds.json rewritten concurrently right after our write is merged again", async () => {
  await using e = await setup(async (_t, o) => {
    await fakeBuild(o.cwd, "b.2", ["ostree"]);
    return 0;
  });
  const other = JSON.stringify({
    "schema-version": "1.0.0",
    builds: [{ id: "b.1", arches: ["x86_64"] }],
    timestamp: "",
  });
  let clobbers = 0;
  e.store.afterPutJSON = (bucket, key) => {
    // A parallel worker that read builds.json before our write now writes its stale merge.
    if (key === "builds.json" && clobbers++ < 2) e.store.put(bucket, key, other);
  };
  const r = await e.run(workspec([{ id: "s", commands: ["x"] }]));
  assert.equal(r.exitCode, 0, r.message);
  assert.equal(clobbers, 3);
  const ids = JSON.parse(e.store.text(B, "builds.json")!).builds.map((b: { id: string }) => b.id);
  assert.deepEqual(ids.sort(), ["b.1", "b.2"]);
  assert.ok(e.store.puts.filter((k) => k === "builds.json").length >= 3, "written again");
});
