/**
 * Hostile archives: every one must be refused with UnsafeArchiveError, with nothing written
 * outside the root and no partial tree inside it.
 */
import assert from "node:assert/strict";
import { extractTarGz, UnsafeArchiveError } from "../../lib/archive/mod.ts";
import { runCommand, tempDir } from "../_helpers/mod.ts";
import { handTarGz, type HostileEntry, listDir } from "./_util.ts";

interface Case {
  name: string;
  /** The entry that must be named in the error. */
  entry: string | RegExp;
  /** Builds the archive at `archive`; `dir` holds `root/` and `outside/`. */
  build: (archive: string, dir: string) => Promise<void>;
  /** Extra state in the root before extraction (pre-existing symlinks). */
  prepare?: (root: string, dir: string) => Promise<void>;
  stripPrefix?: string;
}

const hand = (entries: HostileEntry[]) => (archive: string) => handTarGz(archive, entries);

async function gnuTar(args: string[], cwd: string) {
  const r = await runCommand("tar", args, { cwd, timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
}

const LONG_DOTDOT = `${"a".repeat(120)}/../../${"b".repeat(150)}/x`;

const CASES: Case[] = [
  { name: "../x", entry: "../outside/x", build: hand([{ name: "../outside/x", body: "pwned" }]) },
  {
    name: "../x made by GNU tar -P",
    entry: "../outside/gnu.txt",
    build: async (archive, dir) => {
      await Deno.writeTextFile(`${dir}/outside/gnu.txt`, "pwned");
      await gnuTar(["-czPf", archive, "../outside/gnu.txt"], `${dir}/root`);
      await Deno.remove(`${dir}/outside/gnu.txt`);
    },
  },
  {
    name: "absolute path made by GNU tar -P",
    entry: /^\/.*\/outside\/abs\.txt$/,
    build: async (archive, dir) => {
      await Deno.writeTextFile(`${dir}/outside/abs.txt`, "pwned");
      await gnuTar(["-czPf", archive, `${dir}/outside/abs.txt`], dir);
      await Deno.remove(`${dir}/outside/abs.txt`);
    },
  },
  {
    name: "a/../../x after valid entries",
    entry: "a/../../outside/y",
    build: hand([
      { name: "a/", type: "directory", mode: 0o755 },
      { name: "a/ok.txt", body: "fine" },
      { name: "a/../../outside/y", body: "pwned" },
    ]),
  },
  {
    name: "symlink to /etc, then a file through it",
    entry: "etc",
    build: hand([
      { name: "etc", type: "symlink", linkname: "/etc" },
      { name: "etc/gp-slip-test", body: "pwned" },
    ]),
  },
  {
    name: "symlink to ..",
    entry: "up",
    build: hand([
      { name: "up", type: "symlink", linkname: ".." },
      { name: "up/outside/z", body: "pwned" },
    ]),
  },
  {
    name: "hard link to a file outside",
    entry: "h",
    build: hand([{ name: "h", type: "link", linkname: "../outside/secret" }]),
  },
  {
    name: "hard link to an absolute path",
    entry: "p",
    build: hand([{ name: "p", type: "link", linkname: "/etc/passwd" }]),
  },
  {
    name: "hard link to a file already in the root (not from this archive)",
    entry: "k",
    build: hand([{ name: "k", type: "link", linkname: "keep.txt" }]),
  },
  {
    name: "character device",
    entry: "null",
    build: hand([{ name: "null", type: "character-device", devmajor: 1, devminor: 3 }]),
  },
  {
    name: "block device",
    entry: "sda",
    build: hand([{ name: "sda", type: "block-device", devmajor: 8, devminor: 0 }]),
  },
  {
    name: "fifo made by GNU tar",
    entry: "./pipe",
    build: async (archive, dir) => {
      await Deno.mkdir(`${dir}/fifo-src`);
      const r = await runCommand("mkfifo", [`${dir}/fifo-src/pipe`]);
      assert.equal(r.code, 0, r.stderr);
      await gnuTar(["-czf", archive, "-C", `${dir}/fifo-src`, "."], dir);
    },
  },
  {
    name: "symlink chain: s1 -> ., s2 -> s1/../outside (lexically inside)",
    entry: "s2",
    build: hand([
      { name: "s1", type: "symlink", linkname: "." },
      { name: "s2", type: "symlink", linkname: "s1/../outside" },
      { name: "s2/w", body: "pwned" },
    ]),
  },
  {
    name: "symlink re-pointed later so an earlier link escapes",
    entry: "a",
    build: hand([
      { name: "x/y/", type: "directory" },
      { name: "b", type: "symlink", linkname: "x/y" },
      { name: "a", type: "symlink", linkname: "b/../.." },
      { name: "b", type: "symlink", linkname: "." },
    ]),
  },
  {
    name: "directory replaced later by a symlink",
    entry: "d",
    build: hand([
      { name: "d/", type: "directory" },
      { name: "d/f", body: "fine" },
      { name: "d", type: "symlink", linkname: "../outside" },
      { name: "d/g", body: "pwned" },
    ]),
  },
  {
    name: "file through a symlink created earlier in the archive",
    entry: "ln/x",
    build: hand([
      { name: "sub/", type: "directory" },
      { name: "ln", type: "symlink", linkname: "sub" },
      { name: "ln/x", body: "through a link" },
    ]),
  },
  {
    name: "very long (pax) name with ..",
    entry: LONG_DOTDOT,
    build: hand([{ name: LONG_DOTDOT, body: "pwned" }]),
  },
  {
    name: "file through a symlink that already exists in the root",
    entry: "pre",
    prepare: async (root) => await Deno.symlink("../outside", `${root}/pre`),
    build: hand([{ name: "pre/x", body: "pwned" }]),
  },
  {
    name: "symlink whose target passes through an existing symlink",
    entry: "a",
    prepare: async (root) => await Deno.symlink("../outside", `${root}/pre`),
    build: hand([{ name: "a", type: "symlink", linkname: "pre/x" }]),
  },
  {
    name: "entry outside stripPrefix",
    entry: "etc/passwd",
    stripPrefix: "srv",
    build: hand([
      { name: "srv/cache/ok", body: "fine" },
      { name: "etc/passwd", body: "pwned" },
    ]),
  },
  {
    name: "valid tree then ../ at the very end",
    entry: "../escape",
    build: hand([
      ...Array.from({ length: 30 }, (_, i) => ({ name: `many/f${i}`, body: `file ${i}` })),
      { name: "../escape", body: "pwned" },
    ]),
  },
];

for (const c of CASES) {
  Deno.test(`tar-slip refused: ${c.name}`, async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const root = `${dir}/root`;
    await Deno.mkdir(root);
    await Deno.mkdir(`${dir}/outside`);
    await Deno.writeTextFile(`${dir}/outside/secret`, "secret");
    await Deno.writeTextFile(`${root}/keep.txt`, "kept");
    await c.prepare?.(root, dir);
    const before = await listDir(root);
    const archive = `${dir}/hostile.tar.gz`;
    await c.build(archive, dir);

    const err = await extractTarGz(archive, root, { stripPrefix: c.stripPrefix }).then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof UnsafeArchiveError, `expected UnsafeArchiveError, got ${err}`);
    if (typeof c.entry === "string") assert.equal(err.entry, c.entry);
    else assert.match(err.entry, c.entry);
    assert.ok(err.reason.length > 0);

    assert.deepEqual(await listDir(root), before, "no partial tree, no staging dir");
    assert.equal(await Deno.readTextFile(`${root}/keep.txt`), "kept");
    assert.deepEqual(await listDir(`${dir}/outside`), ["secret"], "nothing written outside");
    assert.equal(await Deno.readTextFile(`${dir}/outside/secret`), "secret");
    assert.equal((await Deno.stat(`${dir}/outside/secret`)).nlink, 1, "no hard link made");
    await assert.rejects(Deno.lstat("/etc/gp-slip-test"), Deno.errors.NotFound);
  });
}

Deno.test("safe links are allowed: relative inside, absolute into the root, up to the root", async () => {
  await using tmp = await tempDir();
  const root = `${tmp.path}/root`;
  await Deno.mkdir(root);
  const real = await Deno.realPath(root);
  const archive = `${tmp.path}/ok.tar.gz`;
  await handTarGz(archive, [
    { name: "a/b/", type: "directory" },
    { name: "a/b/f", body: "data" },
    { name: "rel", type: "symlink", linkname: "a/b/f" },
    { name: "a/b/up", type: "symlink", linkname: "../.." },
    { name: "abs", type: "symlink", linkname: `${real}/a/b/f` },
    { name: "dangling", type: "symlink", linkname: "not/yet" },
    { name: "hard", type: "link", linkname: "a/b/f" },
  ]);
  const res = await extractTarGz(archive, root);
  assert.equal(res.entries, 7);
  assert.equal(await Deno.readTextFile(`${root}/rel`), "data");
  assert.equal(await Deno.readTextFile(`${root}/abs`), "data");
  assert.equal(await Deno.readLink(`${root}/a/b/up`), "../..");
  assert.equal((await Deno.stat(`${root}/hard`)).ino, (await Deno.stat(`${root}/a/b/f`)).ino);
});
