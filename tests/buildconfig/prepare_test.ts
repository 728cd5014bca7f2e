// deno-lint-ignore-file no-explicit-any -- edits of a parsed JSON fixture
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { tempDir } from "../_helpers/mod.ts";
import { handTarGz } from "../archive/_util.ts";
import {
  type BuildObject,
  parseBuild,
  PayloadError,
  prepareBuildConfig,
  type PrepareOptions,
  PushSecretError,
} from "../../lib/buildconfig/mod.ts";
import { extractTarGz } from "../../lib/archive/mod.ts";

const FIXTURE = readFileSync(new URL("./fixtures/build.json", import.meta.url), "utf8");

function build(edit: (b: Record<string, any>) => void = () => {}): BuildObject {
  const b = JSON.parse(FIXTURE);
  edit(b);
  return parseBuild(JSON.stringify(b));
}

const binary = (asFile?: string) => (b: Record<string, any>) => {
  b.spec.source.binary = asFile ? { asFile } : {};
  b.spec.strategy.customStrategy.env = [];
};

function streamOf(data: Uint8Array, chunk = 1000): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= data.length) return c.close();
      c.enqueue(data.slice(off, off + chunk));
      off += chunk;
    },
  });
}

async function tarGzOf(dir: string, files: Record<string, string>): Promise<Uint8Array> {
  const src = join(dir, "payload-src");
  await mkdir(src, { recursive: true });
  for (const [n, t] of Object.entries(files)) await writeFile(join(src, n), t);
  const out = join(dir, "payload.tgz");
  const o = await new Deno.Command("tar", { args: ["-czf", out, "-C", src, "."] }).output();
  assert.ok(o.success);
  return Deno.readFile(out);
}

function opts(srv: string, b: BuildObject, stdin: Uint8Array, extra: Partial<PrepareOptions> = {}) {
  const lines: string[] = [];
  return {
    lines,
    o: {
      build: b,
      env: {},
      srvDir: srv,
      stdin: () => streamOf(stdin),
      clone: () => Promise.reject(new Error("no clone expected")),
      log: (l: string) => lines.push(l),
      signal: new AbortController().signal,
      ...extra,
    } satisfies PrepareOptions,
  };
}

const JOBSPEC =
  "recipe: {git_url: https://example.com/cfg.git}\nstages:\n- id: build\n  commands: [cosa fetch, cosa build]\n";

Deno.test("--from-dir payload with a jobspec.yaml and *.cosa.sh: JobSpec from the payload, the payload delivered to every stage", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const srv = join(d.path, "srv");
  await mkdir(srv);
  const tgz = await tarGzOf(d.path, {
    "jobspec.yaml": JOBSPEC,
    "z.cosa.sh": "echo z\n",
    "a.cosa.sh": "echo a\n",
  });
  const { o } = opts(srv, build(binary()), tgz);
  const p = await prepareBuildConfig(o);
  assert.ok(p);
  assert.deepEqual(p.origin, { kind: "payload", path: join(srv, "source", "jobspec.yaml") });
  assert.deepEqual(p.spec.stages.map((s) => s.id), ["build", "cosa.sh"]);
  assert.deepEqual(p.spec.stages[1].commands, [
    "/bin/bash -xeu -o pipefail source/a.cosa.sh",
    "/bin/bash -xeu -o pipefail source/z.cosa.sh",
  ]);
  // <srv>/source is 0755, not Gangplank's world-writable 0777 (§12.2.3).
  assert.equal(statSync(join(srv, "source")).mode & 0o777, 0o755);
  // The archive was extracted and removed; the payload is re-served to workers as one tarball
  // in a relay bucket of its own (a top-level dir of srv), never in builds/, no overrides.
  assert.deepEqual((await readdir(join(srv, "source"))).sort(), [
    "a.cosa.sh",
    "jobspec.yaml",
    "z.cosa.sh",
  ]);
  assert.equal(p.workerFiles.length, 1);
  const [wf] = p.workerFiles;
  assert.match(wf.bucket, /^gangplank-payload-[0-9a-f]{8}$/);
  assert.deepEqual(wf, { bucket: wf.bucket, object: "source.tar.gz", compressed: true });
  assert.deepEqual(p.spec.stages.map((s) => s.overrides ?? []), [[], []]);
  assert.deepEqual(
    (await readdir(srv)).sort(),
    [wf.bucket, "source", basename(dirname(p.specPath))].sort(),
  );
  const tarball = join(srv, wf.bucket, wf.object);
  const x = join(d.path, "x");
  // What a worker does with it: extracted at its srv root (srv/... entries).
  await extractTarGz(tarball, x, { stripPrefix: "srv" });
  assert.equal(readFileSync(join(x, "source", "z.cosa.sh"), "utf8"), "echo z\n");
  assert.equal(readFileSync(join(x, "source", "jobspec.yaml"), "utf8"), JOBSPEC);
  // The recipe is the JobSpec's own; the written spec is private.
  assert.equal(p.spec.recipe.git_url, "https://example.com/cfg.git");
  assert.equal(statSync(p.specPath).mode & 0o777, 0o600);
  assert.equal(statSync(join(p.specPath, "..")).mode & 0o777, 0o700);
  assert.deepEqual(
    parseYaml(readFileSync(p.specPath, "utf8")).stages.map((s: { id: string }) => s.id),
    [
      "build",
      "cosa.sh",
    ],
  );
  await p[Symbol.asyncDispose]();
  assert.equal(existsSync(p.specPath), false);
  assert.equal(existsSync(join(srv, wf.bucket)), false);
});

Deno.test("no JobSpec: COSA_CMDS from the Build's strategy env alone gives stage envVar; recipe from spec.source.git", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const { o } = opts(d.path, build(), new Uint8Array());
  const p = await prepareBuildConfig(o);
  assert.ok(p);
  assert.deepEqual(p.spec.stages, [{
    id: "envVar",
    description: "envVar defined commands",
    direct_exec: true,
    commands: ["cosa init"],
  }]);
  assert.deepEqual(p.spec.recipe, {
    git_url: "https://github.com/coreos/fedora-coreos-config",
    git_ref: "testing-devel",
  });
  await p[Symbol.asyncDispose]();
  // The pod's env wins over the strategy env; empty means nothing to do.
  const none = await prepareBuildConfig({ ...o, env: { COSA_CMDS: "" } });
  assert.equal(none, undefined);
  assert.deepEqual(await readdir(d.path), [], "nothing left behind");
});

Deno.test("job.strict in the payload's JobSpec suppresses the implied stages", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const tgz = await tarGzOf(d.path, {
    "jobspec.yaml": "job: {strict: true}\n" + JOBSPEC,
    "a.cosa.sh": "echo a\n",
  });
  const srv = join(d.path, "srv");
  await mkdir(srv);
  const { o } = opts(srv, build(binary()), tgz, { env: { COSA_CMDS: "cosa build" } });
  const p = await prepareBuildConfig(o);
  assert.deepEqual(p?.spec.stages.map((s) => s.id), ["build"]);
  await p?.[Symbol.asyncDispose]();
});

Deno.test("--from-file: a single *.yaml file is the JobSpec; any other single file is not extracted", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const { o } = opts(d.path, build(binary("job.yaml")), new TextEncoder().encode(JOBSPEC));
  const p = await prepareBuildConfig(o);
  assert.deepEqual(p?.origin, { kind: "payload", path: join(d.path, "source", "job.yaml") });
  await p?.[Symbol.asyncDispose]();
});

Deno.test("hostile payloads: too large, path traversal, empty; refused with nothing left in srv", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const srv = join(d.path, "srv");
  await mkdir(srv);
  const big = new Uint8Array(64 * 1024);
  const tooBig = opts(srv, build(binary()), big, { maxPayloadBytes: 10_000 });
  await assert.rejects(prepareBuildConfig(tooBig.o), (e: unknown) => {
    assert.ok(e instanceof PayloadError);
    assert.match(e.message, /larger than 10000 bytes/);
    return true;
  });
  assert.deepEqual(await readdir(srv), []);
  const evil = join(d.path, "evil.tgz");
  await handTarGz(evil, [{ name: "../../escaped.cosa.sh", body: "touch /tmp/pwned\n" }]);
  const slip = opts(srv, build(binary()), await Deno.readFile(evil));
  await assert.rejects(prepareBuildConfig(slip.o), (e: unknown) => {
    assert.ok(e instanceof PayloadError, String(e));
    assert.equal(e.exitCode, 2);
    assert.equal(e.message.includes("\n"), false);
    return true;
  });
  assert.deepEqual(await readdir(srv), []);
  assert.equal(existsSync(join(d.path, "escaped.cosa.sh")), false);
  const empty = opts(srv, build(binary()), new Uint8Array());
  await assert.rejects(prepareBuildConfig(empty.o), /empty/);
  assert.deepEqual(await readdir(srv), []);
});

async function zipOf(dir: string, files: Record<string, string>, zipArgs: string[] = []) {
  const src = join(dir, `zip-src-${crypto.randomUUID().slice(0, 6)}`);
  await mkdir(src, { recursive: true });
  for (const [n, t] of Object.entries(files)) {
    await mkdir(dirname(join(src, n)), { recursive: true });
    await writeFile(join(src, n), t);
  }
  const out = `${src}.zip`;
  const o = await new Deno.Command("zip", {
    args: ["-q", "-r", "-y", ...zipArgs, out, "."],
    cwd: src,
  })
    .output();
  assert.ok(o.success, new TextDecoder().decode(o.stderr));
  return Deno.readFile(out);
}

Deno.test("--from-archive zip (source.bin, told by its first bytes) and --from-file job.zip: extracted like a tarball; the JobSpec and *.cosa.sh found", async () => {
  await using d = await tempDir("gp-bc-prep-");
  for (const asFile of [undefined, "job.zip"]) {
    const srv = join(d.path, `srv-${asFile ?? "bin"}`);
    await mkdir(srv);
    const zip = await zipOf(d.path, {
      "jobspec.yaml": JOBSPEC,
      "a.cosa.sh": "echo a\n",
      "docs/readme.txt": "docs\n",
    });
    const { o } = opts(srv, build(binary(asFile)), zip);
    const p = await prepareBuildConfig(o);
    assert.ok(p);
    assert.deepEqual(p.origin, { kind: "payload", path: join(srv, "source", "jobspec.yaml") });
    assert.deepEqual(p.spec.stages.map((s) => s.id), ["build", "cosa.sh"]);
    // Extracted and the zip removed, as a tarball payload is.
    assert.deepEqual((await readdir(join(srv, "source"))).sort(), [
      "a.cosa.sh",
      "docs",
      "jobspec.yaml",
    ]);
    assert.equal(readFileSync(join(srv, "source", "docs", "readme.txt"), "utf8"), "docs\n");
    await p[Symbol.asyncDispose]();
  }
});

Deno.test("hostile zip payloads: a symlink out of srv, an encrypted zip; exit 2, one line, nothing left in srv", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const srv = join(d.path, "srv");
  await mkdir(srv);
  const linkSrc = join(d.path, "link-src");
  await mkdir(linkSrc);
  await Deno.symlink("/etc", join(linkSrc, "etc"));
  const out = join(d.path, "link.zip");
  const z = await new Deno.Command("zip", { args: ["-q", "-y", out, "etc"], cwd: linkSrc })
    .output();
  assert.ok(z.success);
  const payloads = [
    [await Deno.readFile(out), /symlink target \/etc is outside the root/],
    [await zipOf(d.path, { "jobspec.yaml": JOBSPEC }, ["-P", "pw"]), /is encrypted/],
  ] as const;
  for (const [payload, why] of payloads) {
    const { o } = opts(srv, build(binary()), payload);
    await assert.rejects(prepareBuildConfig(o), (e: unknown) => {
      assert.ok(e instanceof PayloadError, String(e));
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /^binary input \(stdin\) source\.bin: /);
      assert.match(e.message, why);
      assert.equal(e.message.includes("\n"), false);
      return true;
    });
    assert.deepEqual(await readdir(srv), []);
  }
});

Deno.test("output image: PUSH_DOCKERCFG_PATH .dockercfg becomes an inline registry auth; tls from buildstrategy_tls_verify; a bad secret is refused unquoted", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const secretDir = join(d.path, "push");
  await mkdir(secretDir);
  const auth = btoa("builder:s3cret-pw");
  await writeFile(join(secretDir, ".dockercfg"), JSON.stringify({ "127.0.0.1:5000": { auth } }));
  const srv = join(d.path, "srv");
  await mkdir(srv);
  await writeFile(
    join(srv, "jobspec.yaml"),
    "publish_oscontainer: {buildstrategy_tls_verify: false}\n" + JOBSPEC,
  );
  const b = build((
    x,
  ) => (x.spec.output = { to: { kind: "DockerImage", name: "127.0.0.1:5000/os/fcos:stable" } }));
  const { o } = opts(srv, b, new Uint8Array(), { env: { PUSH_DOCKERCFG_PATH: secretDir } });
  const p = await prepareBuildConfig(o);
  assert.ok(p);
  assert.equal(p.origin.kind, "srv");
  assert.deepEqual(p.spec.publish_oscontainer?.registries, [{
    url: "127.0.0.1:5000/os/fcos:stable",
    tls_verify: false,
    secret_type: "inline",
    secret: JSON.stringify({ auths: { "127.0.0.1:5000": { auth } } }),
  }]);
  await p[Symbol.asyncDispose]();
  // Without a push secret: the service-account token.
  const t = await prepareBuildConfig({ ...o, env: {} });
  assert.deepEqual(t?.spec.publish_oscontainer?.registries?.[0].secret_type, "token");
  assert.equal(t?.spec.publish_oscontainer?.registries?.[0].tls_verify, false);
  await t?.[Symbol.asyncDispose]();
  await writeFile(join(secretDir, ".dockerconfigjson"), "s3cret-not-json");
  await assert.rejects(prepareBuildConfig(o), (e: unknown) => {
    assert.ok(e instanceof PushSecretError);
    assert.match(e.message, /\.dockerconfigjson: not JSON/);
    assert.equal(e.message.includes("s3cret"), false);
    return true;
  });
  assert.deepEqual((await readdir(srv)).sort(), ["jobspec.yaml"], "nothing left behind");
});

Deno.test("COSA_JOBSPEC_URL: cloned at COSA_JOBSPEC_REF (the ref, not the file name: §12.1.7), COSA_JOBSPEC_FILE read in it", async () => {
  await using d = await tempDir("gp-bc-prep-");
  const repo = join(d.path, "jobs");
  const git = async (...args: string[]) => {
    const o = await new Deno.Command("git", {
      args: ["-C", repo, "-c", "user.email=t@e", "-c", "user.name=t", ...args],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(o.success, new TextDecoder().decode(o.stderr));
  };
  await mkdir(join(repo, "ci"), { recursive: true });
  await git("init", "-q", "-b", "main");
  await writeFile(join(repo, "ci", "job.yaml"), "stages:\n- id: from-main\n  commands: [x]\n");
  await git("add", ".");
  await git("commit", "-qm", "main");
  await git("checkout", "-q", "-b", "release-1");
  await writeFile(join(repo, "ci", "job.yaml"), "stages:\n- id: from-release\n  commands: [x]\n");
  await git("commit", "-qam", "release");
  await git("checkout", "-q", "main");
  const srv = join(d.path, "srv");
  await mkdir(srv);
  const argvs: string[][] = [];
  const { o } = opts(
    srv,
    build((b) => (b.spec.strategy.customStrategy.env = [])),
    new Uint8Array(),
    {
      env: {
        COSA_JOBSPEC_URL: `file://${repo}`,
        COSA_JOBSPEC_REF: "release-1",
        COSA_JOBSPEC_FILE: "ci/job.yaml",
      },
      clone: async (argv) => {
        argvs.push(argv);
        const r = await new Deno.Command(argv[0], {
          args: argv.slice(1),
          stdout: "null",
          stderr: "null",
        })
          .output();
        if (!r.success) throw new Error("clone failed");
      },
    },
  );
  const p = await prepareBuildConfig(o);
  assert.ok(p);
  assert.deepEqual(p.spec.stages.map((s) => s.id), ["from-release"]);
  assert.ok(argvs[0].includes("--branch=release-1"));
  await p[Symbol.asyncDispose]();
  assert.deepEqual(await readdir(srv), [], "the clone is removed with the run's scratch dir");
});
