/**
 * Zip archives (`oc start-build --from-archive=job.zip`) through the safe extractor: a zip made
 * by Info-ZIP's `zip` comes out as the tree it was made from (modes, symlinks); hostile zips
 * (made by `zip` where it can, else written entry by entry with Python's zipfile, which checks
 * nothing) are refused with nothing written inside or outside the root.
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { ArchiveError, ArchiveTooLargeError, UnsafeArchiveError } from "../../lib/archive/mod.ts";
import { extractZip, isZip } from "../../lib/archive/zip.ts";
import { runCommand, tempDir } from "../_helpers/mod.ts";
import { listDir, normalizeTree, readTree } from "./_util.ts";

async function run(cmd: string, args: string[], cwd: string, stdin?: string) {
  const r = await runCommand(cmd, args, { cwd, timeoutMs: 60_000, stdin });
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
}

/**
 * Writes `dest` with Python's zipfile: each entry `[name, data, unixMode]` (mode with its type
 * bits; 0 for none), stored or deflated; no name or target is checked.
 */
async function pyZip(dest: string, entries: [string, string, number][], deflate = false) {
  const script = `
import sys, json, zipfile
entries = json.loads(sys.stdin.read())
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED if sys.argv[2] == "1" else zipfile.ZIP_STORED) as z:
    for name, data, mode in entries:
        info = zipfile.ZipInfo(name, date_time=(2021, 3, 4, 5, 6, 8))
        info.create_system = 3
        info.external_attr = (mode & 0xFFFF) << 16
        info.compress_type = z.compression
        z.writestr(info, data)
`;
  await run("python3", ["-c", script, dest, deflate ? "1" : "0"], "/", JSON.stringify(entries));
}

Deno.test("a zip made by Info-ZIP zip extracts to the tree it was made from (modes, symlinks kept)", async () => {
  await using d = await tempDir("gp-zip-");
  const src = `${d.path}/src`;
  await mkdir(`${src}/a/b`, { recursive: true });
  await mkdir(`${src}/empty-dir`);
  await Deno.writeTextFile(`${src}/jobspec.yaml`, "stages: []\n");
  await Deno.writeTextFile(`${src}/a/b/run.cosa.sh`, "#!/bin/sh\necho hi\n");
  await Deno.chmod(`${src}/a/b/run.cosa.sh`, 0o755);
  await Deno.writeTextFile(`${src}/a/ro.txt`, "read only\n");
  await Deno.chmod(`${src}/a/ro.txt`, 0o444);
  await Deno.writeTextFile(`${src}/a/big.txt`, "0123456789\n".repeat(50_000));
  await Deno.symlink("b/run.cosa.sh", `${src}/a/link`);
  await run("zip", ["-q", "-r", "-y", `${d.path}/job.zip`, "."], src);
  const head = (await Deno.readFile(`${d.path}/job.zip`)).slice(0, 4);
  assert.equal(isZip(head), true);
  const out = `${d.path}/out`;
  const r = await extractZip(`${d.path}/job.zip`, out);
  assert.equal(r.files, 4);
  assert.equal(r.bytes, 550_000 + 11 + 10 + 18);
  const strip = (t: Awaited<ReturnType<typeof readTree>>) =>
    Object.fromEntries(
      Object.entries(normalizeTree(t)).map(([k, v]) => [k, { ...v, mtime: undefined }]),
    );
  assert.deepEqual(strip(await readTree(out)), strip(await readTree(src)));
  // And what unzip makes of it is the same tree.
  await run("unzip", ["-q", `${d.path}/job.zip`, "-d", `${d.path}/unzipped`], d.path);
  assert.deepEqual(strip(await readTree(out)), strip(await readTree(`${d.path}/unzipped`)));
});

interface Case {
  name: string;
  build: (zip: string, dir: string) => Promise<void>;
  error: new (...a: never[]) => Error;
  message: RegExp;
  maxBytes?: number;
}

const CASES: Case[] = [
  {
    name: "../ in a name",
    build: (z) => pyZip(z, [["ok.txt", "fine", 0o100644], ["../outside/x", "pwned", 0o100644]]),
    error: UnsafeArchiveError,
    message: /'\.\.' in path/,
  },
  {
    name: "an absolute name",
    build: (z, dir) => pyZip(z, [[`${dir}/outside/abs`, "pwned", 0o100644]]),
    error: UnsafeArchiveError,
    message: /absolute path/,
  },
  {
    name: "..\\ with backslashes (a Windows zip)",
    build: (z) => pyZip(z, [["..\\outside\\x", "pwned", 0]]),
    error: UnsafeArchiveError,
    message: /'\.\.' in path/,
  },
  {
    name: "a symlink out of the root (zip -y)",
    build: async (z, dir) => {
      await mkdir(`${dir}/mk`);
      await Deno.symlink(`${dir}/outside`, `${dir}/mk/escape`);
      await run("zip", ["-q", "-y", z, "escape"], `${dir}/mk`);
    },
    error: UnsafeArchiveError,
    message: /symlink target .* is outside the root/,
  },
  {
    name: "a file written through a symlink of the same zip",
    build: (z, dir) => pyZip(z, [["d", `${dir}/outside`, 0o120777], ["d/x", "pwned", 0o100644]]),
    error: UnsafeArchiveError,
    message: /outside the root|passes through symlink/,
  },
  {
    name: "a fifo",
    build: (z) => pyZip(z, [["pipe", "", 0o010644]]),
    error: UnsafeArchiveError,
    message: /fifos are not extracted/,
  },
  {
    name: "a zip bomb: 5 MB of zeros in 5 KB, more than maxBytes",
    build: (z) => pyZip(z, [["zeros", "\0".repeat(5_000_000), 0o100644]], true),
    error: ArchiveTooLargeError,
    message: /exceeds 1000000 bytes/,
    maxBytes: 1_000_000,
  },
  {
    name: "an encrypted entry (zip -P)",
    build: async (z, dir) => {
      await mkdir(`${dir}/mk`);
      await Deno.writeTextFile(`${dir}/mk/secret.txt`, "hidden");
      await run("zip", ["-q", "-P", "pw", z, "secret.txt"], `${dir}/mk`);
    },
    error: ArchiveError,
    message: /is encrypted/,
  },
  {
    name: "a truncated zip",
    build: async (z, dir) => {
      await mkdir(`${dir}/mk`);
      await Deno.writeTextFile(`${dir}/mk/a.txt`, "a".repeat(10_000));
      await run("zip", ["-q", `${z}.full`, "a.txt"], `${dir}/mk`);
      const full = await Deno.readFile(`${z}.full`);
      await Deno.writeFile(z, full.slice(0, full.length - 30));
      await Deno.remove(`${z}.full`);
    },
    error: ArchiveError,
    message: /not a readable zip/,
  },
];

for (const c of CASES) {
  Deno.test(`hostile zip refused: ${c.name}`, async () => {
    await using d = await tempDir("gp-zip-evil-");
    await mkdir(`${d.path}/outside`);
    await mkdir(`${d.path}/root`);
    await Deno.writeTextFile(`${d.path}/root/existing.txt`, "mine");
    const zip = `${d.path}/evil.zip`;
    await c.build(zip, d.path);
    await assert.rejects(
      extractZip(zip, `${d.path}/root`, c.maxBytes ? { maxBytes: c.maxBytes } : {}),
      (e: unknown) => {
        assert.ok(e instanceof c.error, `${c.name}: ${e}`);
        assert.match((e as Error).message, c.message);
        assert.equal((e as Error).message.includes("\n"), false);
        return true;
      },
    );
    assert.deepEqual(await listDir(`${d.path}/outside`), []);
    assert.deepEqual(await listDir(`${d.path}/root`), ["existing.txt"]);
  });
}

Deno.test("a zip whose central directory understates an entry's size is refused (validated while inflating)", async () => {
  await using d = await tempDir("gp-zip-lie-");
  const zip = `${d.path}/lie.zip`;
  await pyZip(zip, [["small.txt", "x".repeat(4000), 0o100644]], true);
  // Rewrite the uncompressed size (central directory: offset 24 of the record; local header:
  // offset 22) from 4000 to 40: the data that follows is longer than declared.
  const b = await Deno.readFile(zip);
  const v = new DataView(b.buffer);
  for (let i = 0; i + 4 <= b.length; i++) {
    const sig = v.getUint32(i, true);
    if (sig === 0x04034b50) v.setUint32(i + 22, 40, true);
    if (sig === 0x02014b50) v.setUint32(i + 24, 40, true);
  }
  await Deno.writeFile(zip, b);
  await mkdir(`${d.path}/root`);
  await assert.rejects(extractZip(zip, `${d.path}/root`), (e: unknown) => {
    assert.ok(e instanceof ArchiveError, String(e));
    assert.match((e as Error).message, /too many bytes in the stream|expected 40/);
    return true;
  });
  assert.deepEqual(await listDir(`${d.path}/root`), []);
});
