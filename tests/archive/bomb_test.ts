/**
 * Zip bombs: a ~2 MB cache tarball that expands to 2 GiB (or declares a terabyte, or hides
 * gigabytes of padding after its end) is refused with a clear error and leaves nothing behind;
 * the limit follows the target's free space and can be raised.
 */
import assert from "node:assert/strict";
import {
  ArchiveTooLargeError,
  DEFAULT_FREE_SPACE_SHARE,
  extractTarGz,
} from "../../lib/archive/mod.ts";
import { tempDir } from "../_helpers/mod.ts";
import { listDir } from "./_util.ts";
import { bomb, BOMB_CHUNK, ustarHeader } from "./_bomb.ts";
import { gzipSync } from "node:zlib";

async function setup(gz: Uint8Array) {
  const tmp = await tempDir();
  const file = `${tmp.path}/cache.tar.gz`;
  await Deno.writeFile(file, gz);
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/cache`, { recursive: true });
  await Deno.writeTextFile(`${root}/cache/keep.txt`, "already here");
  return { tmp, file, root };
}

Deno.test("bomb: 2 MB of gzip holding a 2 GiB file is refused against the free space, nothing left", async () => {
  const gz = bomb([["srv/cache/small.txt", 0], ["srv/cache/bomb.img", 32]]);
  assert.ok(gz.length < 4 * 2 ** 20, `${gz.length}`);
  const { tmp, file, root } = await setup(gz);
  await using _ = tmp;
  const before = await listDir(root);
  const freeGiB = 1;
  const asked: string[] = [];
  await assert.rejects(
    extractTarGz(file, root, {
      stripPrefix: "srv",
      freeBytes: (p) => {
        asked.push(p);
        return Promise.resolve(freeGiB * 2 ** 30);
      },
    }),
    (e) => {
      assert.ok(e instanceof ArchiveTooLargeError, String(e));
      assert.equal(e.limit, "maxBytes");
      assert.match(
        e.message,
        /refusing to extract: its content exceeds \d+ bytes \(90% of the free space/,
      );
      assert.match(e.message, /"srv\/cache\/bomb\.img"/);
      return true;
    },
  );
  assert.deepEqual(asked, [await Deno.realPath(root)]);
  // Nothing of the archive (not even the small file before the bomb, nor the staging dir).
  assert.deepEqual(await listDir(root), before);
  assert.ok(DEFAULT_FREE_SPACE_SHARE < 1);
});

Deno.test("bomb: a header declaring a terabyte is refused by the real free space at once", async () => {
  const gz = gzipSync(
    new Uint8Array([...ustarHeader("srv/cache/tera.img", 2 ** 40), ...new Uint8Array(4096)]),
  );
  const { tmp, file, root } = await setup(gz);
  await using _ = tmp;
  const before = await listDir(root);
  await assert.rejects(extractTarGz(file, root, { stripPrefix: "srv" }), ArchiveTooLargeError);
  assert.deepEqual(await listDir(root), before);
});

Deno.test("bomb: gigabytes of padding after the archive's end are not decompressed", async () => {
  // A tiny valid archive followed by 1 GiB of zeros.
  const gz = bomb([["srv/cache/a.img", 0]], 16);
  const { tmp, file, root } = await setup(gz);
  await using _ = tmp;
  const before = await listDir(root);
  const t0 = performance.now();
  let decompressedCheck = false;
  await assert.rejects(
    extractTarGz(file, root, { stripPrefix: "srv", maxBytes: 8 * 2 ** 20 }),
    (e) => {
      decompressedCheck = e instanceof ArchiveTooLargeError &&
        /decompresses to more/.test(e.message);
      return e instanceof ArchiveTooLargeError;
    },
  );
  assert.ok(decompressedCheck);
  assert.deepEqual(await listDir(root), before);
  console.log(`refused after ${(performance.now() - t0).toFixed(0)} ms`);
});

Deno.test("bomb: maxBytes raises (or lowers) the limit; under it the archive is extracted", async () => {
  const gz = bomb([["srv/cache/big.img", 1]]); // 64 MiB
  const { tmp, file, root } = await setup(gz);
  await using _ = tmp;
  const tiny = () => Promise.resolve(32 * 2 ** 20); // "32 MiB free"
  await assert.rejects(
    extractTarGz(file, root, { stripPrefix: "srv", freeBytes: tiny }),
    ArchiveTooLargeError,
  );
  await assert.rejects(
    extractTarGz(file, root, { stripPrefix: "srv", maxBytes: BOMB_CHUNK - 1 }),
    ArchiveTooLargeError,
  );
  const r = await extractTarGz(file, root, {
    stripPrefix: "srv",
    freeBytes: tiny,
    maxBytes: BOMB_CHUNK,
  });
  assert.equal(r.bytes, BOMB_CHUNK);
  assert.equal((await Deno.stat(`${root}/cache/big.img`)).size, BOMB_CHUNK);
});

Deno.test("bomb: more entries than maxEntries is refused, nothing left", async () => {
  const entries: [string, number][] = Array.from({ length: 50 }, (_, i) => [`srv/cache/f${i}`, 0]);
  const { tmp, file, root } = await setup(bomb(entries));
  await using _ = tmp;
  const before = await listDir(root);
  await assert.rejects(
    extractTarGz(file, root, { stripPrefix: "srv", maxEntries: 20 }),
    (e) => e instanceof ArchiveTooLargeError && e.limit === "maxEntries",
  );
  assert.deepEqual(await listDir(root), before);
});
