import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { compareKeys, DirListingCache, walkBucket } from "../../lib/relay/fs_walk.ts";
import { keySegments } from "../../lib/relay/fs_paths.ts";

Deno.test("compareKeys orders like S3 (UTF-8 bytes), also around surrogates and U+E000+", () => {
  const alphabet = ["a", "/", ".", "~", "é", "\u{E000}", "\u{FFFD}", "\u{1F600}", "\u{10000}", "Z"];
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let i = 0; i < 2000; i++) {
    const mk = () =>
      Array.from({ length: 1 + rnd(5) }, () => alphabet[rnd(alphabet.length)]).join("");
    const a = mk();
    const b = mk();
    assert.equal(
      Math.sign(compareKeys(a, b)),
      Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
      `${JSON.stringify(a)} vs ${JSON.stringify(b)}`,
    );
  }
});

Deno.test("walkBucket pages resume from the key and see new files despite the cache", async () => {
  await using tmp = await tempDir("gp-walk-");
  const names = Array.from({ length: 600 }, (_, i) => `f${String(i).padStart(4, "0")}`);
  for (const n of names) Deno.writeTextFileSync(`${tmp.path}/${n}`, "x");
  const old = new Date(Date.now() - 10_000);
  Deno.utimeSync(tmp.path, old, old); // old enough for the listing to be cached
  const cache = new DirListingCache();
  const page = async (after: string, max: number) => {
    const out: string[] = [];
    for await (
      const it of walkBucket({
        root: tmp.path,
        stateDir: "/nonexistent",
        prefix: "",
        after,
        delimiter: "",
        cache,
      })
    ) {
      out.push(it.key);
      if (out.length >= max) break;
    }
    return out;
  };
  const all: string[] = [];
  let after = "";
  for (let i = 0; i < 10; i++) {
    const p = await page(after, 100);
    if (p.length === 0) break;
    all.push(...p);
    after = p[p.length - 1];
  }
  assert.deepEqual(all, names);
  // A file added after the listing was cached is seen (the directory's mtime changed).
  Deno.writeTextFileSync(`${tmp.path}/f0100a`, "x");
  assert.deepEqual(await page("f0100", 2), ["f0100a", "f0101"]);
});

Deno.test("walkBucket yields only keys the relay accepts: no backslash, temp or over-long names", async () => {
  await using tmp = await tempDir("gp-walk-names-");
  const root = tmp.path;
  const long = "é".repeat(120); // 240 bytes: a valid name, but 5 of them make a 1,204-byte key
  const files = [
    "ok",
    "a\\b", // a backslash: refused as a key, so never listed
    ".gp-relay-tmp-123", // the relay's own temp file
    "back\\slash/inner", // a folder whose name no key can have
    `${long}/${long}/${long}/${long}/x`, // 4×241 + 1 = 965 bytes: listed
    `${long}/${long}/${long}/${long}/${long}`, // 1,204 bytes: too long for a key
    `${"é".repeat(100)}`, // length 100 > 85 but 200 bytes: a valid name
  ];
  for (const f of files) {
    const p = `${root}/${f}`;
    Deno.mkdirSync(p.slice(0, p.lastIndexOf("/")), { recursive: true });
    Deno.writeTextFileSync(p, "x");
  }
  const keys: string[] = [];
  for await (
    const it of walkBucket({
      root,
      stateDir: "/nonexistent",
      prefix: "",
      after: "",
      delimiter: "",
      cache: new DirListingCache(),
    })
  ) keys.push(it.key);
  assert.deepEqual(
    keys.sort(),
    ["ok", `${long}/${long}/${long}/${long}/x`, "é".repeat(100)].sort(),
  );
  for (const k of keys) keySegments(k); // and each of them is a key the relay accepts
});
