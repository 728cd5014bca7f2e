/**
 * The relay hashes an object where it lies when asked (`x-gangplank-checksum: sha256`), so the
 * coordinator learns the sha256 of every object a stage returned without reading it back over
 * HTTP. Attacked here: the answer is the file's sha256 (for a file written through the relay
 * or put in the served tree directly), a file changed on disk behind the relay is hashed again
 * (the record is tied to inode, size, mtime and ctime: an edit that sets the mtime back is
 * caught too), a PUT replacing the object while it is being
 * hashed never leaves the old digest on the new content, a bad ask is refused, the store's
 * client transfers nothing when the relay answers, and still gets the right digest from a
 * server that ignores the ask.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as http from "node:http";
import { randomBytes, tempDir } from "../_helpers/mod.ts";
import { curl, startRelayProcess } from "./server_harness.ts";
import { ArtifactStore, IntegrityError } from "../../lib/relay/mod.ts";

const MiB = 1024 * 1024;

/** Waits until a file's ctime second is over (the relay remembers a digest only then). */
async function settle(file: string) {
  const ctime = (await Deno.lstat(file)).ctime!.getTime();
  const wait = Math.floor(ctime / 1000) * 1000 + 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait + 50));
}
const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("relay digests: HEAD with x-gangplank-checksum: sha256 answers the file's sha256", async (t) => {
  await using tmp = await tempDir("gp-relay-digest-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/bkt/dir`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;
  const ask = ["-H", "x-gangplank-checksum: sha256"];

  await t.step("an object written through the relay, then asked twice", async () => {
    const data = randomBytes(20 * MiB + 7);
    await Deno.writeFile(`${tmp.path}/a.bin`, data);
    const put = await curl(relay, ["-T", `${tmp.path}/a.bin`, `${U}/bkt/a.bin`]);
    assert.equal(put.status, 200, put.body);
    const plain = await curl(relay, ["-I", `${U}/bkt/a.bin`]);
    assert.equal(plain.headers["x-gangplank-sha256"], undefined, "not computed unasked");
    const head = await curl(relay, ["-I", ...ask, `${U}/bkt/a.bin`]);
    assert.equal(head.status, 200);
    assert.equal(head.headers["x-gangplank-sha256"], hex(data));
    assert.equal(Number(head.headers["content-length"]), data.length);
    // Asked within the file's ctime second, the answer may not be remembered (ctime has whole
    // seconds here); an ask once that second is over is.
    await settle(`${tmp.path}/srv/bkt/a.bin`);
    assert.equal(
      (await curl(relay, ["-I", ...ask, `${U}/bkt/a.bin`])).headers["x-gangplank-sha256"],
      hex(data),
    );
    // Remembered now: a plain HEAD and a GET carry it too.
    const again = await curl(relay, ["-I", `${U}/bkt/a.bin`]);
    assert.equal(again.headers["x-gangplank-sha256"], hex(data));
    const get = await curl(relay, ["-o", "/dev/null", `${U}/bkt/a.bin`]);
    assert.equal(get.headers["x-gangplank-sha256"], hex(data));
  });

  await t.step(
    "a file put in the served tree directly, then changed behind the relay",
    async () => {
      const data = randomBytes(MiB);
      await Deno.writeFile(`${root}/bkt/dir/direct.bin`, data);
      const first = await curl(relay, ["-I", ...ask, `${U}/bkt/dir/direct.bin`]);
      assert.equal(first.headers["x-gangplank-sha256"], hex(data));
      // Same size, other bytes, other mtime: the record no longer describes the file.
      const other = randomBytes(MiB);
      await Deno.writeFile(`${root}/bkt/dir/direct.bin`, other);
      await Deno.utime(`${root}/bkt/dir/direct.bin`, new Date(), new Date(Date.now() + 5000));
      const plain = await curl(relay, ["-I", `${U}/bkt/dir/direct.bin`]);
      assert.equal(plain.headers["x-gangplank-sha256"], undefined, "a stale record is not served");
      const second = await curl(relay, ["-I", ...ask, `${U}/bkt/dir/direct.bin`]);
      assert.equal(second.headers["x-gangplank-sha256"], hex(other));
    },
  );

  await t.step(
    "an edit in place that keeps inode, size and mtime (touch -d after writing) is hashed again",
    async () => {
      const file = `${root}/bkt/dir/inplace.bin`;
      const data = randomBytes(MiB);
      await Deno.writeFile(file, data);
      const before = await Deno.lstat(file);
      await settle(file);
      const first = await curl(relay, ["-I", ...ask, `${U}/bkt/dir/inplace.bin`]);
      assert.equal(first.headers["x-gangplank-sha256"], hex(data));
      const kept = await curl(relay, ["-I", `${U}/bkt/dir/inplace.bin`]);
      assert.equal(kept.headers["x-gangplank-sha256"], hex(data), "remembered");
      // Other bytes written into the same inode, then its times set back: only ctime moved.
      const other = randomBytes(MiB);
      const f = await Deno.open(file, { write: true });
      await f.write(other);
      f.close();
      await Deno.utime(file, before.atime!, before.mtime!);
      const after = await Deno.lstat(file);
      assert.deepEqual(
        [after.ino, after.size, after.mtime?.getTime()],
        [before.ino, before.size, before.mtime?.getTime()],
        "the edit kept inode, size and mtime",
      );
      const plain = await curl(relay, ["-I", `${U}/bkt/dir/inplace.bin`]);
      assert.equal(plain.headers["x-gangplank-sha256"], undefined, "the old digest is not served");
      const second = await curl(relay, ["-I", ...ask, `${U}/bkt/dir/inplace.bin`]);
      assert.equal(second.headers["x-gangplank-sha256"], hex(other));
    },
  );

  await t.step("PUTs replacing the object while it is hashed leave no wrong digest", async () => {
    const sizes = [48 * MiB, 3 * MiB, 40 * MiB, 5 * MiB];
    const bodies = sizes.map(randomBytes);
    for (const [i, b] of bodies.entries()) await Deno.writeFile(`${tmp.path}/r${i}.bin`, b);
    await curl(relay, ["-T", `${tmp.path}/r0.bin`, `${U}/bkt/race.bin`]);
    for (let i = 1; i < bodies.length; i++) {
      // The ask starts on the current file; the PUT lands while it is being hashed.
      const [head, put] = await Promise.all([
        curl(relay, ["-I", ...ask, `${U}/bkt/race.bin`]),
        curl(relay, ["-T", `${tmp.path}/r${i}.bin`, `${U}/bkt/race.bin`]),
      ]);
      assert.equal(put.status, 200, put.body);
      const answered = head.headers["x-gangplank-sha256"];
      const len = Number(head.headers["content-length"]);
      // Whichever file the HEAD saw, its digest and length belong together.
      const seen = bodies.findIndex((b) => b.length === len);
      assert.ok(seen >= 0, `length ${len}`);
      assert.equal(answered, hex(bodies[seen]), `round ${i}: digest of the file it described`);
      // And what is remembered now is the new content's.
      const now = await curl(relay, ["-I", ...ask, `${U}/bkt/race.bin`]);
      assert.equal(now.headers["x-gangplank-sha256"], hex(bodies[i]), `round ${i}`);
      assert.equal(Number(now.headers["content-length"]), bodies[i].length);
    }
  });

  await t.step("any other value is refused, naming the header", async () => {
    const bad = await curl(relay, ["-H", "x-gangplank-checksum: md5", `${U}/bkt/a.bin`]);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /<Code>InvalidArgument<\/Code>/);
    assert.match(bad.body, /x-gangplank-checksum/);
  });

  await t.step("a missing object is 404", async () => {
    const head = await curl(relay, ["-I", ...ask, `${U}/bkt/nope.bin`]);
    assert.equal(head.status, 404);
  });
});

Deno.test("store.sha256: from the relay without a transfer; from any S3 server by reading", async () => {
  await using tmp = await tempDir("gp-relay-digest-client-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/bkt`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const data = randomBytes(12 * MiB + 1);
  await Deno.writeFile(`${root}/bkt/art.bin`, data);

  await using store = ArtifactStore.fromConfig(relay.cfg);
  const got = await store.sha256("bkt", "art.bin");
  assert.deepEqual(got, { sha256: hex(data), size: data.length });
  assert.equal(store.stats.bytesIn, 0, "nothing was downloaded");
  assert.equal(await store.sha256("bkt", "missing.bin"), undefined);

  // A server that ignores the ask: a proxy dropping the relay's x-gangplank-* answer.
  const proxy = http.createServer((req, res) => {
    const up = http.request(
      {
        host: relay.cfg.host,
        port: relay.cfg.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (r) => {
        const headers = { ...r.headers };
        delete headers["x-gangplank-sha256"];
        res.writeHead(r.statusCode ?? 502, headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  try {
    const port = (proxy.address() as { port: number }).port;
    await using other = ArtifactStore.fromConfig({ ...relay.cfg, port });
    const read = await other.sha256("bkt", "art.bin");
    assert.deepEqual(read, { sha256: hex(data), size: data.length });
    assert.equal(other.stats.bytesIn, data.length, "read and hashed by the client");
  } finally {
    await new Promise<void>((r) => proxy.close(() => r()));
  }
});

Deno.test("fetchFile: a digest the relay recorded that is not the expected one fails before the transfer", async () => {
  await using tmp = await tempDir("gp-relay-digest-fetch-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/bkt`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const data = randomBytes(12 * MiB);
  await Deno.writeFile(`${root}/bkt/art.bin`, data);
  await using store = ArtifactStore.fromConfig(relay.cfg);
  await store.sha256("bkt", "art.bin"); // the relay now has it recorded
  const wrong = hex(new TextEncoder().encode("another artifact"));
  const err = await store.fetchFile("bkt", "art.bin", `${tmp.path}/out/art.bin`, {
    expect: { sha256: wrong, size: data.length, name: "qemu" },
  }).then(() => null, (e) => e);
  assert.ok(err instanceof IntegrityError, String(err));
  assert.equal(err.field, "sha256");
  assert.equal(err.actual, hex(data));
  assert.equal(store.stats.bytesIn, 0, "no byte was transferred");
  assert.deepEqual([...Deno.readDirSync(`${tmp.path}/out`)], [], "no file, no temp file");
  // The right digest still fetches (and the bytes are hashed as they land).
  const ok = await store.fetchFile("bkt", "art.bin", `${tmp.path}/out/art.bin`, {
    expect: { sha256: hex(data), size: data.length },
  });
  assert.deepEqual(ok, { bytes: data.length, skipped: false });
});
