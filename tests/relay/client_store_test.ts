/**
 * ArtifactStore against a real relay subprocess (scripts/relay.ts): round trips, verified
 * and skipped fetches, multipart, listing, stamps, progress, and Gangplank's
 * TestTarballRemote through the relay.
 */
import assert from "node:assert/strict";
import { posix } from "node:path";
import {
  ArtifactStore,
  IntegrityError,
  readRelayConfig,
  STAMP_METADATA_KEY,
  StoreError,
} from "../../lib/relay/mod.ts";
import { extractTarGz, packTarGz } from "../../lib/archive/mod.ts";
import { createProgress } from "../../lib/progress/mod.ts";
import { sha256File, tempDir } from "../_helpers/mod.ts";
import { startRelayProcess } from "./server_harness.ts";

const MiB = 1024 * 1024;

async function writeRandomFile(path: string, size: number): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const chunk = new Uint8Array(Math.min(size, MiB));
    let left = size;
    while (left > 0) {
      crypto.getRandomValues(chunk.subarray(0, Math.min(65536, chunk.length)));
      const n = Math.min(left, chunk.length);
      let off = 0;
      while (off < n) off += await f.write(chunk.subarray(off, n));
      left -= n;
    }
  } finally {
    f.close();
  }
}

async function listNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("ArtifactStore against the relay subprocess", async (t) => {
  await using tmp = await tempDir();
  const served = `${tmp.path}/served`;
  await Deno.mkdir(served);
  await using relay = await startRelayProcess(served, `${tmp.path}/minio.json`);
  const logs: string[] = [];
  // Through the real config loader, the way workers get it (`--minio-config`).
  const cfg = await readRelayConfig(`${tmp.path}/minio.json`);
  assert.equal((await Deno.stat(`${tmp.path}/minio.json`)).mode! & 0o777, 0o600);
  await using store = ArtifactStore.fromConfig(cfg, { log: (m) => logs.push(m) });
  const work = `${tmp.path}/work`;
  await Deno.mkdir(work);

  await t.step("putFile/fetchFile round trip; the object is a plain file", async () => {
    await Deno.writeTextFile(`${work}/meta.json`, '{"buildid":"1"}\n');
    const put = await store.putFile("builder", "builds/1/x86_64/meta.json", `${work}/meta.json`);
    assert.deepEqual(put, { bytes: 16 });
    assert.equal(
      await Deno.readTextFile(`${served}/builder/builds/1/x86_64/meta.json`),
      '{"buildid":"1"}\n',
    );
    const dest = `${work}/fetched/deep/meta.json`;
    const got = await store.fetchFile("builder", "builds/1/x86_64/meta.json", dest);
    assert.deepEqual(got, { bytes: 16, skipped: false });
    assert.equal(await Deno.readTextFile(dest), '{"buildid":"1"}\n');
    assert.equal((await Deno.stat(dest)).mode! & 0o777, 0o644);
    assert.equal((await Deno.stat(`${work}/fetched/deep`)).mode! & 0o777, 0o755);
    const st = await store.stat("builder", "builds/1/x86_64/meta.json");
    assert.ok(st);
    assert.equal(
      Math.floor((await Deno.stat(dest)).mtime!.getTime() / 1000),
      Math.floor(st.lastModified.getTime() / 1000),
      "mtime is the object's LastModified",
    );
    assert.deepEqual(await listNames(`${work}/fetched/deep`), ["meta.json"], "no temp left");
  });

  await t.step("text, JSON, bytes, exists, stat, remove", async () => {
    await store.putText("builder", "t/hello.txt", "héllo");
    assert.equal(await store.getText("builder", "t/hello.txt"), "héllo");
    await store.putJSON("builder", "t/x.json", { a: [1, 2], b: "c" });
    assert.deepEqual(await store.getJSON("builder", "t/x.json"), { a: [1, 2], b: "c" });
    await store.putBytes("builder", "t/bin", new Uint8Array([0, 1, 2, 255]));
    assert.deepEqual(await store.getBytes("builder", "t/bin"), new Uint8Array([0, 1, 2, 255]));
    assert.equal(await store.getText("builder", "t/missing"), undefined);
    assert.equal(await store.getJSON("nosuchbucket", "x"), undefined);
    assert.equal(await store.exists("builder", "t/x.json"), true);
    assert.equal(await store.exists("builder", "t/nope"), false);
    const st = await store.stat("builder", "t/x.json");
    assert.equal(st?.metadata["content-type"], "application/json");
    assert.equal(await store.stat("builder", "t/nope"), undefined);
    await store.putText("builder", "t/bad.json", "{not json");
    await assert.rejects(
      store.getJSON("builder", "t/bad.json"),
      (e) => e instanceof StoreError && e.code === "InvalidJSON",
    );
    await store.remove("builder", "t/x.json");
    await store.remove("builder", "t/x.json"); // idempotent
    assert.equal(await store.exists("builder", "t/x.json"), false);
  });

  await t.step("fetch verified: wrong sha256 -> IntegrityError, nothing left", async () => {
    await Deno.writeTextFile(`${work}/art.bin`, "artifact content");
    await store.putFile("builder", "builds/1/x86_64/art.bin", `${work}/art.bin`);
    const good = await sha256File(`${work}/art.bin`);
    const dir = `${work}/verify`;
    const err = await store.fetchFile("builder", "builds/1/x86_64/art.bin", `${dir}/art.bin`, {
      expect: { sha256: "0".repeat(64), size: 16, name: "qemu" },
    }).then(() => null, (e) => e);
    assert.ok(err instanceof IntegrityError, String(err));
    assert.equal(err.artifact, "qemu");
    assert.equal(err.field, "sha256");
    assert.equal(err.expected, "0".repeat(64));
    assert.equal(err.actual, good);
    assert.match(err.message, /qemu/);
    assert.deepEqual(await listNames(dir), [], "no file and no temp file");

    // Size mismatch, over an existing different file: the old file stays untouched.
    await Deno.writeTextFile(`${dir}/art.bin`, "old");
    const err2 = await store.fetchFile("builder", "builds/1/x86_64/art.bin", `${dir}/art.bin`, {
      expect: { size: 99 },
    }).then(() => null, (e) => e);
    assert.ok(err2 instanceof IntegrityError && err2.field === "size", String(err2));
    assert.equal(err2.expected, 99);
    assert.equal(err2.actual, 16);
    assert.equal(await Deno.readTextFile(`${dir}/art.bin`), "old");
    assert.deepEqual(await listNames(dir), ["art.bin"]);

    // Right checksum: replaces the old file.
    const ok = await store.fetchFile("builder", "builds/1/x86_64/art.bin", `${dir}/art.bin`, {
      expect: { sha256: good.toUpperCase(), size: 16 },
    });
    assert.deepEqual(ok, { bytes: 16, skipped: false });
    assert.equal(await Deno.readTextFile(`${dir}/art.bin`), "artifact content");
  });

  await t.step("a 12 MiB artifact already present costs 0 bytes", async () => {
    const src = `${work}/disk.qcow2`;
    await writeRandomFile(src, 12 * MiB);
    const sha = await sha256File(src);
    const put = await store.putFile("builder", "builds/1/x86_64/disk.qcow2", src);
    assert.equal(put.bytes, 12 * MiB);
    assert.equal(await sha256File(`${served}/builder/builds/1/x86_64/disk.qcow2`), sha);
    const dest = `${work}/stage2/disk.qcow2`;
    const first = await store.fetchFile("builder", "builds/1/x86_64/disk.qcow2", dest, {
      expect: { sha256: sha, size: 12 * MiB, name: "qemu" },
    });
    assert.deepEqual(first, { bytes: 12 * MiB, skipped: false });
    assert.equal(await sha256File(dest), sha);
    const before = { ...store.stats };
    const again = await store.fetchFile("builder", "builds/1/x86_64/disk.qcow2", dest, {
      expect: { sha256: sha, size: 12 * MiB, name: "qemu" },
    });
    assert.deepEqual(again, { bytes: 0, skipped: true });
    assert.equal(store.stats.bytesIn, before.bytesIn, "no bytes downloaded");
    assert.equal(store.stats.skipped, before.skipped + 1);
    assert.ok(logs.some((l) => /skipped/.test(l)));
    // Same sha but different size claimed: not skipped (and then a size IntegrityError).
    await assert.rejects(
      store.fetchFile("builder", "builds/1/x86_64/disk.qcow2", dest, {
        expect: { sha256: sha, size: 1 },
      }),
      IntegrityError,
    );
    assert.equal(await sha256File(dest), sha, "the good copy is untouched");
  });

  await t.step(
    "a 12 MiB artifact with one byte changed at its end on the relay -> IntegrityError",
    async () => {
      const src = `${work}/late.bin`;
      await writeRandomFile(src, 12 * MiB + 3);
      const sha = await sha256File(src);
      await store.putFile("builder", "builds/1/x86_64/late.bin", src);
      // The stored copy rots after the upload: its last byte flips.
      const stored = await Deno.open(`${served}/builder/builds/1/x86_64/late.bin`, {
        read: true,
        write: true,
      });
      try {
        const last = new Uint8Array(1);
        await stored.seek(12 * MiB + 2, Deno.SeekMode.Start);
        await stored.read(last);
        last[0] ^= 0x80;
        await stored.seek(12 * MiB + 2, Deno.SeekMode.Start);
        await stored.write(last);
      } finally {
        stored.close();
      }
      const dir = `${work}/late`;
      const err = await store.fetchFile("builder", "builds/1/x86_64/late.bin", `${dir}/late.bin`, {
        expect: { sha256: sha, size: 12 * MiB + 3, name: "metal" },
      }).then(() => null, (e) => e);
      assert.ok(err instanceof IntegrityError, String(err));
      assert.equal(err.field, "sha256");
      assert.equal(err.expected, sha);
      assert.equal(err.actual, await sha256File(`${served}/builder/builds/1/x86_64/late.bin`));
      assert.deepEqual(await listNames(dir), [], "no file and no temp file");
    },
  );

  await t.step("multipart upload (5 MiB parts) of the 12 MiB file, with progress", async () => {
    const lines: string[] = [];
    await using mp = ArtifactStore.fromConfig(cfg, {
      partSize: 5 * MiB,
      progress: (label, total) =>
        createProgress({ label, total, isTTY: false, write: (s) => lines.push(s), intervalMs: 0 }),
    });
    const src = `${work}/disk.qcow2`;
    await mp.putFile("builder", "mp/disk.qcow2", src);
    assert.equal(
      await sha256File(`${served}/builder/mp/disk.qcow2`),
      await sha256File(src),
    );
    assert.ok(lines.length >= 2, lines.join("\n"));
    assert.match(
      lines.at(-1)!,
      /^builder\/mp\/disk\.qcow2: 12\.0 MiB \/ 12\.0 MiB \(100%\) .* in /,
    );
    lines.length = 0;
    await mp.fetchFile("builder", "mp/disk.qcow2", `${work}/mp.qcow2`);
    assert.match(lines.at(-1)!, /^builder\/mp\/disk\.qcow2: 12\.0 MiB \/ 12\.0 MiB \(100%\)/);
    assert.equal(mp.stats.bytesOut, 12 * MiB);
    assert.equal(mp.stats.bytesIn, 12 * MiB);
  });

  await t.step("list with prefix, recursive", async () => {
    for (const k of ["l/a/1", "l/a/2", "l/a/sub/3", "l/b/1", "l/ab"]) {
      await store.putText("builder", k, k);
    }
    const rec: string[] = [];
    for await (const e of store.list("builder", "l/a/")) {
      rec.push(e.key);
      assert.equal(e.size, e.key.length);
      assert.ok(e.lastModified.getTime() > 0);
    }
    assert.deepEqual(rec.sort(), ["l/a/1", "l/a/2", "l/a/sub/3"]);
    const none: string[] = [];
    for await (const e of store.list("nosuchbucket", "")) none.push(e.key);
    assert.deepEqual(none, []);
  });

  await t.step("list one level below a prefix ending in the delimiter", async () => {
    const one: string[] = [];
    for await (const e of store.list("builder", "l/a/", { recursive: false })) {
      one.push(e.isPrefix ? `${e.key} (prefix)` : e.key);
    }
    assert.deepEqual(one.sort(), ["l/a/1", "l/a/2", "l/a/sub/ (prefix)"]);
  });

  await t.step("list pages through more than 1000 keys", async () => {
    // Written straight into the served directory: the relay serves pre-existing files.
    await Deno.mkdir(`${served}/many/k`, { recursive: true });
    for (let i = 0; i < 1100; i++) {
      await Deno.writeTextFile(`${served}/many/k/${String(i).padStart(4, "0")}`, "x");
    }
    let n = 0;
    for await (const e of store.list("many", "k/")) {
      assert.equal(e.key, `k/${String(n).padStart(4, "0")}`);
      n++;
    }
    assert.equal(n, 1100);
  });

  await t.step("stamps and isLocalNewer", async () => {
    const path = `${work}/stamped.txt`;
    await Deno.writeTextFile(path, "v1");
    const t0 = BigInt(Date.now()) * 1_000_000n;
    await store.putFile("builder", "s/stamped.txt", path);
    const t1 = BigInt(Date.now()) * 1_000_000n;
    const stamp = await store.getStamp("builder", "s/stamped.txt");
    assert.ok(stamp >= t0 && stamp <= t1, `${t0} <= ${stamp} <= ${t1}`);
    const st = await store.stat("builder", "s/stamped.txt");
    assert.equal(st?.metadata[STAMP_METADATA_KEY], String(stamp));
    assert.equal(await store.getStamp("builder", "s/missing"), 0n);

    // Unchanged since upload: not newer. A fetched copy: not newer either.
    assert.equal(await store.isLocalNewer("builder", "s/stamped.txt", path), false);
    const fetched = `${work}/s/fetched.txt`;
    await store.fetchFile("builder", "s/stamped.txt", fetched);
    assert.equal(await store.isLocalNewer("builder", "s/stamped.txt", fetched), false);
    // Modified after the upload: newer (Gangplank's TestRemote).
    await Deno.writeTextFile(path, "v2");
    assert.equal(await store.isLocalNewer("builder", "s/stamped.txt", path), true);
    await Deno.writeTextFile(fetched, "edited");
    assert.equal(await store.isLocalNewer("builder", "s/stamped.txt", fetched), true);
    // Missing object: newer. Missing local file: an error.
    assert.equal(await store.isLocalNewer("builder", "s/missing", path), true);
    await assert.rejects(
      store.isLocalNewer("builder", "s/stamped.txt", `${work}/nope`),
      (e) => e instanceof StoreError && e.code === "ENOENT",
    );

    // No stamp: falls back to LastModified.
    await store.putFile("builder", "s/unstamped.txt", path, { stamp: false });
    const un = await store.stat("builder", "s/unstamped.txt");
    assert.equal(un?.metadata[STAMP_METADATA_KEY], undefined);
    assert.equal(
      await store.getStamp("builder", "s/unstamped.txt"),
      BigInt(un!.lastModified.getTime()) * 1_000_000n,
    );
    // A stamp that is not a number is an error, not a silent 0.
    await relay.minio().putObject("builder", "s/bad", Buffer.from("x"), 1, {
      [STAMP_METADATA_KEY]: "not-a-number",
    });
    await assert.rejects(
      store.getStamp("builder", "s/bad"),
      (e) => e instanceof StoreError && e.code === "BadStamp",
    );
  });

  await t.step("putStream needs the exact declared size", async () => {
    const body = new TextEncoder().encode("streamed body");
    const rs = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(body);
        c.close();
      },
    });
    assert.deepEqual(await store.putStream("builder", "st/ok", rs, body.length), {
      bytes: body.length,
    });
    assert.equal(await store.getText("builder", "st/ok"), "streamed body");
    const short = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(body);
        c.close();
      },
    });
    await assert.rejects(store.putStream("builder", "st/short", short, body.length + 5));
    assert.equal(await store.exists("builder", "st/short"), false, "nothing stored");
    await assert.rejects(
      store.putStream("builder", "st/x", short, -1),
      (e) => e instanceof StoreError && e.code === "InvalidSize",
    );
  });

  await t.step("TestTarballRemote: 10 dirs x 10 files through the relay", async () => {
    const src = `${tmp.path}/tarball-src`;
    const sizes = new Map<string, number>();
    for (let d = 0; d < 10; d++) {
      await Deno.mkdir(`${src}/dir${d}`, { recursive: true });
      for (let f = 0; f < 10; f++) {
        const p = `${src}/dir${d}/file${f}`;
        const size = (d * 10 + f) * 97 + 1;
        await writeRandomFile(p, size);
        sizes.set(p, size);
      }
    }
    // Like `tar -cf x /abs/path`: absolute path minus the leading slash.
    const archive = `${tmp.path}/test.tar.gz`;
    await packTarGz({ root: "/", paths: [src.slice(1)], dest: archive });
    await store.putFile("cache", "test.tar.gz", archive);
    const fetched = `${tmp.path}/fetched/test.tar.gz`;
    await store.fetchFile("cache", "test.tar.gz", fetched, {
      expect: { sha256: await sha256File(archive) },
    });
    const dest = `${tmp.path}/dest`;
    const res = await extractTarGz(fetched, dest);
    assert.equal(res.files, 100);
    for (const [p, size] of sizes) {
      const st = await Deno.stat(posix.join(dest, p));
      assert.equal(st.size, size, p);
    }
  });
});
