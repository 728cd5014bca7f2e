/** The fake-cosa stand-in writes builds the way cosa does (schema-valid, real checksums). */
import assert from "node:assert/strict";
import { readdir, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  artifactsOf,
  latestBuild,
  readBuildMeta,
  readBuilds,
  readLatestBuild,
  validateMeta,
} from "../../lib/cosa/mod.ts";
import { ROOT, runCommand, sha256File, tempDir } from "../_helpers/mod.ts";

const COSA = `${ROOT}/examples/fake-cosa/cosa`;

async function cosa(cwd: string, args: string[], env: Record<string, string> = {}) {
  return await runCommand(COSA, args, {
    cwd,
    env: { COSA_FORCE_ARCH: "x86_64", ...env },
    timeoutMs: 30_000,
  });
}

async function ok(cwd: string, args: string[], env: Record<string, string> = {}) {
  const r = await cosa(cwd, args, env);
  assert.equal(r.code, 0, `cosa ${args.join(" ")}: ${r.stderr}`);
  return r;
}

async function checkArtifacts(dir: string, meta: Parameters<typeof artifactsOf>[0]) {
  for (const a of artifactsOf(meta)) {
    const p = join(dir, a.path);
    assert.equal(await sha256File(p), a.sha256, a.name);
    assert.equal((await stat(p)).size, a.size, a.name);
  }
}

Deno.test("fake cosa: init, fetch, build, buildextend, kola; meta valid against cosa's schema", async () => {
  await using d = await tempDir("gp-fakecosa-");
  const srv = d.path;
  const early = await cosa(srv, ["build"]);
  assert.notEqual(early.code, 0, "build before init fails");
  await ok(srv, ["init", "--force", "--branch", "testing", "https://example.com/config.git"]);
  const origin = JSON.parse(await readFile(join(srv, "src/config/.fake-cosa-origin.json"), "utf8"));
  assert.equal(origin.url, "https://example.com/config.git");
  assert.equal(origin.branch, "testing");
  await ok(srv, ["fetch"]);
  assert.ok((await readdir(join(srv, "cache"))).length > 0);
  assert.ok((await readdir(join(srv, "tmp/repo"))).length > 0);
  await ok(srv, ["build"]);
  const builds = await readBuilds(join(srv, "builds"));
  const id = latestBuild(builds, "x86_64")!.id;
  assert.match(id, /^\d{8}\.dev\.0$/);
  assert.equal(await readlink(join(srv, "builds/latest")), id);
  await ok(srv, ["buildextend-metal"]);
  await ok(srv, ["buildextend-aws"]);
  const b = await readBuildMeta(join(srv, "builds"), id, "x86_64");
  const v = validateMeta(b.meta);
  assert.deepEqual(v.errors, []);
  assert.deepEqual(v.unknownFields, []);
  assert.deepEqual(artifactsOf(b.meta).map((a) => a.name).sort(), [
    "aws",
    "metal",
    "ostree",
    "qemu",
  ]);
  await checkArtifacts(b.dir, b.meta);
  await ok(srv, ["kola", "run", "basic"]);
  const k = await runCommand(`${ROOT}/examples/fake-cosa/kola`, ["testiso", "-S"], { cwd: srv });
  assert.equal(k.code, 0, k.stderr);
  assert.deepEqual(
    (await readdir(join(srv, "tmp"))).filter((n) => /^kola-\d+\.tar\.xz$/.test(n)).length,
    2,
  );
  assert.ok((await readdir(join(srv, "tmp"))).some((n) => /kola.*tar\.xz$/.test(n)));
  // A second build is newer and comes first
  await ok(srv, ["build", "ostree"]);
  const b2 = await readLatestBuild(join(srv, "builds"), "x86_64");
  assert.match(b2!.id, /\.dev\.1$/);
  assert.deepEqual(artifactsOf(b2!.meta).map((a) => a.name), ["ostree"]);
  assert.equal((await readBuilds(join(srv, "builds")))!.builds.length, 2);
});

Deno.test("fake cosa: delayed meta merge writes fragments; meta --finalize merges and removes them", async () => {
  await using d = await tempDir("gp-fakecosa-");
  const srv = d.path;
  await ok(srv, ["init", "u"]);
  await ok(srv, ["build", "--delay-meta-merge"]);
  const id = (await readLatestBuild(join(srv, "builds"), "x86_64"))!.id;
  const dir = join(srv, "builds", id, "x86_64");
  // concurrent buildextends (one stage with concurrent: true)
  const [a, b] = await Promise.all([
    cosa(srv, ["buildextend-metal4k"]),
    cosa(srv, ["buildextend-live"]),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const names = await readdir(dir);
  assert.ok(names.includes("meta.metal4k.json") && names.includes("meta.live.json"), names.join());
  const onDisk = JSON.parse(await readFile(join(dir, "meta.json"), "utf8"));
  assert.deepEqual(Object.keys(onDisk.images).sort(), ["ostree", "qemu"]);
  // Reading with the delayed merge sees everything already
  const merged = await readLatestBuild(join(srv, "builds"), "x86_64");
  assert.deepEqual(
    artifactsOf(merged!.meta).map((x) => x.name).sort(),
    ["live-initramfs", "live-iso", "live-kernel", "live-rootfs", "metal4k", "ostree", "qemu"],
  );
  await ok(srv, ["meta", "--finalize"]);
  const after = await readdir(dir);
  assert.ok(!after.some((n) => n !== "meta.json" && /^meta\..*\.json$/.test(n)), after.join());
  const fin = JSON.parse(await readFile(join(dir, "meta.json"), "utf8"));
  assert.deepEqual(validateMeta(fin).errors, []);
  assert.deepEqual(
    artifactsOf(fin).map((x) => x.name).sort(),
    artifactsOf(merged!.meta).map((x) => x.name).sort(),
  );
  await checkArtifacts(dir, fin);
});

Deno.test("fake cosa: FAKE_COSA_FAIL makes a subcommand exit 3 without doing anything", async () => {
  await using d = await tempDir("gp-fakecosa-");
  await ok(d.path, ["init", "u"]);
  await ok(d.path, ["build"]);
  const r = await cosa(d.path, ["buildextend-metal"], { FAKE_COSA_FAIL: "buildextend-metal" });
  assert.equal(r.code, 3);
  const b = await readLatestBuild(join(d.path, "builds"), "x86_64");
  assert.equal(artifactsOf(b!.meta).find((a) => a.name === "metal"), undefined);
  const r2 = await cosa(d.path, ["buildextend-metal"], {
    FAKE_COSA_FAIL: "build",
    FAKE_COSA_FAIL_CODE: "9",
  });
  assert.equal(r2.code, 0);
  const r3 = await cosa(d.path, ["frobnicate"]);
  assert.equal(r3.code, 2);
});
