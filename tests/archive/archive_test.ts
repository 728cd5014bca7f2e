import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { ArchiveError, extractTarGz, packTarGz } from "../../lib/archive/mod.ts";
import { move } from "../../lib/archive/extract.ts";
import { runCommand, tempDir, waitFor } from "../_helpers/mod.ts";
import { handTarGz, listDir, makeSampleTree, normalizeTree, readTree } from "./_util.ts";

async function tar(args: string[]) {
  const r = await runCommand("tar", args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `tar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

Deno.test("packTarGz output extracts with GNU tar -xzf: content, modes, mtimes, links", async () => {
  await using tmp = await tempDir();
  const src = `${tmp.path}/src`;
  await Deno.mkdir(src);
  await makeSampleTree(src);
  const res = await packTarGz({ root: src, paths: ["."], dest: `${tmp.path}/out.tar.gz` });
  assert.ok(res.entries >= 12 && res.archiveBytes > 0, JSON.stringify(res));
  const dst = `${tmp.path}/gnu`;
  await Deno.mkdir(dst);
  await tar(["-xzf", `${tmp.path}/out.tar.gz`, "-C", dst]);
  assert.deepEqual(normalizeTree(await readTree(dst)), normalizeTree(await readTree(src)));
  // GNU tar sees relative names, directories with a trailing slash, a hard link.
  const listing = await tar(["-tvzf", `${tmp.path}/out.tar.gz`]);
  assert.match(listing, /^h.* a\/hello\.txt link to a\/b\/hardlink\.txt$/m);
  assert.match(listing, /^drwx------ .* private\/$/m);
  assert.doesNotMatch(listing, /^\S+ \S+ +\d+ \S+ \S+ \//m, "no absolute names");
  assert.deepEqual(await listDir(tmp.path), ["gnu", "out.tar.gz", "src"], "no temp file left");
});

for (const format of ["gnu", "posix", "ustar"]) {
  Deno.test(`GNU tar -czf (--format=${format}) extracts here with modes and mtimes`, async () => {
    await using tmp = await tempDir();
    const src = `${tmp.path}/src`;
    await Deno.mkdir(src);
    await makeSampleTree(src);
    if (format === "ustar") {
      // ustar cannot store names over 255 bytes.
      await Deno.remove(`${src}/${"d".repeat(90)}`, { recursive: true });
    }
    await tar([`--format=${format}`, "-czf", `${tmp.path}/gnu.tar.gz`, "-C", src, "."]);
    const dst = `${tmp.path}/dst`;
    const res = await extractTarGz(`${tmp.path}/gnu.tar.gz`, dst);
    assert.ok(res.files >= 6, JSON.stringify(res));
    assert.deepEqual(normalizeTree(await readTree(dst)), normalizeTree(await readTree(src)));
  });
}

Deno.test("entryPrefix/stripPrefix: srv/cache/... stored and restored below /srv", async () => {
  await using tmp = await tempDir();
  const srv = `${tmp.path}/srv`;
  await Deno.mkdir(`${srv}/cache/pkgcache`, { recursive: true });
  await Deno.writeTextFile(`${srv}/cache/cache.qcow2`, "disk");
  await Deno.writeTextFile(`${srv}/cache/pkgcache/x.rpm`, "rpm");
  await packTarGz({
    root: srv,
    paths: ["cache"],
    entryPrefix: "srv",
    dest: `${tmp.path}/cache.tar.gz`,
  });
  const names = (await tar(["-tzf", `${tmp.path}/cache.tar.gz`])).trim().split("\n").sort();
  assert.deepEqual(names, [
    "srv/cache/",
    "srv/cache/cache.qcow2",
    "srv/cache/pkgcache/",
    "srv/cache/pkgcache/x.rpm",
  ]);
  // Same layout as Gangplank's `tar -cf x /srv/cache` (GNU tar strips the leading slash).
  await tar(["-czf", `${tmp.path}/g.tar.gz`, "-C", tmp.path, "srv/cache"]);
  const other = `${tmp.path}/worker-srv`;
  await Deno.mkdir(`${other}/cache`, { recursive: true });
  await Deno.writeTextFile(`${other}/cache/cache.qcow2`, "old");
  await Deno.writeTextFile(`${other}/keep.txt`, "kept");
  for (const archive of ["cache.tar.gz", "g.tar.gz"]) {
    await extractTarGz(`${tmp.path}/${archive}`, other, { stripPrefix: "srv" });
    assert.equal(await Deno.readTextFile(`${other}/cache/cache.qcow2`), "disk", "replaced");
    assert.equal(await Deno.readTextFile(`${other}/cache/pkgcache/x.rpm`), "rpm");
    assert.equal(await Deno.readTextFile(`${other}/keep.txt`), "kept", "merge keeps others");
    assert.deepEqual(await listDir(other), ["cache", "keep.txt"], "no staging dir left");
  }
});

Deno.test("extract accepts a web ReadableStream and a Node readable", async () => {
  await using tmp = await tempDir();
  const src = `${tmp.path}/src`;
  await Deno.mkdir(src);
  await makeSampleTree(src);
  await packTarGz({ root: src, paths: ["a", "empty"], dest: `${tmp.path}/x.tar.gz` });
  const f = await Deno.open(`${tmp.path}/x.tar.gz`);
  await extractTarGz(f.readable, `${tmp.path}/web`);
  await extractTarGz(createReadStream(`${tmp.path}/x.tar.gz`), `${tmp.path}/node`);
  const want = await readTree(`${tmp.path}/web`);
  assert.deepEqual(Object.keys(want).sort(), [
    "a",
    "a/b",
    "a/b/c",
    "a/b/c/ro.txt",
    "a/b/hardlink.txt",
    "a/b/run.sh",
    "a/hello.txt",
    "empty",
  ]);
  assert.deepEqual(normalizeTree(await readTree(`${tmp.path}/node`)), normalizeTree(want));
});

Deno.test("setuid/setgid bits are dropped on extraction, sticky kept", async () => {
  await using tmp = await tempDir();
  await handTarGz(`${tmp.path}/x.tar.gz`, [
    { name: "bin/", type: "directory", mode: 0o3755 },
    { name: "bin/su", type: "file", mode: 0o4755, body: "x" },
    { name: "bin/sg", type: "file", mode: 0o2755, body: "y" },
    { name: "tmp/", type: "directory", mode: 0o1777 },
  ]);
  const dst = `${tmp.path}/dst`;
  await extractTarGz(`${tmp.path}/x.tar.gz`, dst);
  assert.equal((await Deno.stat(`${dst}/bin/su`)).mode! & 0o7777, 0o755);
  assert.equal((await Deno.stat(`${dst}/bin/sg`)).mode! & 0o7777, 0o755);
  assert.equal((await Deno.stat(`${dst}/bin`)).mode! & 0o7777, 0o1755);
  assert.equal((await Deno.stat(`${dst}/tmp`)).mode! & 0o7777, 0o1777);
});

Deno.test("a corrupt or truncated archive fails cleanly with ArchiveError", async () => {
  await using tmp = await tempDir();
  const src = `${tmp.path}/src`;
  await Deno.mkdir(src);
  await makeSampleTree(src);
  await packTarGz({ root: src, paths: ["."], dest: `${tmp.path}/x.tar.gz` });
  const bytes = await Deno.readFile(`${tmp.path}/x.tar.gz`);
  await Deno.writeFile(`${tmp.path}/trunc.tar.gz`, bytes.subarray(0, bytes.length - 40));
  await Deno.writeFile(`${tmp.path}/garbage.tar.gz`, new TextEncoder().encode("not gzip"));
  for (const name of ["trunc.tar.gz", "garbage.tar.gz"]) {
    const dst = `${tmp.path}/dst-${name}`;
    await assert.rejects(extractTarGz(`${tmp.path}/${name}`, dst), ArchiveError);
    assert.deepEqual(await listDir(dst), [], `${name}: nothing extracted, no staging left`);
  }
});

Deno.test("abort stops pack and extract, leaving no temp files or partial tree", async () => {
  await using tmp = await tempDir();
  const src = `${tmp.path}/src`;
  await Deno.mkdir(src);
  // Incompressible content: gzip -9 of a repeating pattern finishes within one poll interval,
  // before the abort below can land; random bytes keep it busy for a while.
  const chunk = new Uint8Array(1 << 20);
  for (let o = 0; o < chunk.length; o += 65536) {
    crypto.getRandomValues(chunk.subarray(o, o + 65536));
  }
  for (let i = 0; i < 24; i++) await Deno.writeFile(`${src}/f${i}`, chunk);
  await packTarGz({ root: src, paths: ["."], dest: `${tmp.path}/big.tar.gz` });

  // Pack: abort once the temp archive has started to grow.
  const ac = new AbortController();
  const reason = new Error("stop now");
  const packing = packTarGz({
    root: src,
    paths: ["."],
    dest: `${tmp.path}/aborted.tar.gz`,
    signal: ac.signal,
    gzipLevel: 9,
  });
  await waitFor(async () => {
    for (const n of await listDir(tmp.path)) {
      if (n.startsWith(".aborted.tar.gz.tmp-")) return (await Deno.stat(`${tmp.path}/${n}`)).size;
    }
    return 0;
  }, { what: "the temp archive to grow" });
  ac.abort(reason);
  await assert.rejects(packing, (e) => e === reason);
  assert.deepEqual(await listDir(tmp.path), ["big.tar.gz", "src"]);

  // Extract: a source that delivers the first 2 MiB, then stalls until aborted.
  const bytes = await Deno.readFile(`${tmp.path}/big.tar.gz`);
  let sent = 0;
  const stalled = new ReadableStream<Uint8Array>({
    pull(ctl): Promise<void> | void {
      if (sent >= 2 << 20) return new Promise<void>(() => {});
      ctl.enqueue(bytes.slice(sent, sent + 65536));
      sent += 65536;
    },
  });
  const ac2 = new AbortController();
  const dst = `${tmp.path}/dst`;
  const extracting = extractTarGz(stalled, dst, { signal: ac2.signal });
  await waitFor(() => sent >= 2 << 20, { what: "2 MiB read" });
  ac2.abort(reason);
  await assert.rejects(extracting, (e) => e === reason);
  assert.deepEqual(await listDir(dst), []);
});

Deno.test("a plain (uncompressed) GNU tar extracts too; xz/bzip2/zstd are refused", async () => {
  await using tmp = await tempDir();
  const src = `${tmp.path}/src`;
  await Deno.mkdir(src);
  await makeSampleTree(src);
  await tar(["-cf", `${tmp.path}/plain.tar`, "-C", src, "."]);
  await extractTarGz(`${tmp.path}/plain.tar`, `${tmp.path}/dst`);
  assert.deepEqual(
    normalizeTree(await readTree(`${tmp.path}/dst`)),
    normalizeTree(await readTree(src)),
  );
  // Magic numbers as xz, bzip2, zstd and zip write them (no compressor binaries needed).
  const magics: Record<string, number[]> = {
    xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    bzip2: [0x42, 0x5a, 0x68, 0x39],
    zstd: [0x28, 0xb5, 0x2f, 0xfd],
    zip: [0x50, 0x4b, 0x03, 0x04],
  };
  for (const [name, magic] of Object.entries(magics)) {
    const archive = `${tmp.path}/x.${name}`;
    await Deno.writeFile(archive, new Uint8Array([...magic, ...new Uint8Array(600).fill(7)]));
    const dst = `${tmp.path}/dst-${name}`;
    const err = await extractTarGz(archive, dst).then(() => null, (e) => e);
    assert.ok(err instanceof ArchiveError, `${name}: ${err}`);
    assert.match(err.message, new RegExp(`${name}-compressed archives are not supported`));
    assert.deepEqual(await listDir(dst), []);
  }
});

Deno.test("committing across file systems (EXDEV) copies with modes, mtimes and links", async () => {
  await using tmp = await tempDir();
  const from = `${tmp.path}/staging`;
  const to = `${tmp.path}/root`;
  const t0 = new Date("2020-01-02T03:04:05Z");
  await Deno.mkdir(`${from}/d`, { recursive: true });
  await Deno.mkdir(to);
  await Deno.writeTextFile(`${from}/d/f`, "data");
  await Deno.chmod(`${from}/d/f`, 0o640);
  await Deno.utime(`${from}/d/f`, t0, t0);
  await Deno.symlink("f", `${from}/d/l`);
  await Deno.writeTextFile(`${from}/g`, "new");
  await Deno.writeTextFile(`${to}/g`, "old");
  let renames = 0;
  const exdev = () => {
    renames++;
    return Promise.reject(Object.assign(new Error("cross-device link"), { code: "EXDEV" }));
  };
  await move(`${from}/d`, `${to}/d`, exdev);
  await move(`${from}/g`, `${to}/g`, exdev);
  assert.ok(renames >= 4, "every level went through the seam");
  assert.equal(await Deno.readTextFile(`${to}/d/f`), "data");
  assert.equal((await Deno.stat(`${to}/d/f`)).mode! & 0o777, 0o640);
  assert.equal((await Deno.stat(`${to}/d/f`)).mtime!.getTime(), t0.getTime());
  assert.equal(await Deno.readLink(`${to}/d/l`), "f");
  assert.equal(await Deno.readTextFile(`${to}/g`), "new");
  assert.deepEqual(await listDir(from), [], "sources removed");
  assert.deepEqual(await listDir(to), ["d", "g"], "no temp files");
  const other = () => Promise.reject(Object.assign(new Error("denied"), { code: "EACCES" }));
  await Deno.writeTextFile(`${from}/h`, "x");
  await assert.rejects(move(`${from}/h`, `${to}/h`, other), /denied/);
});
