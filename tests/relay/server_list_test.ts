import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { curl, startRelayProcess } from "./server_harness.ts";

const N = 1150;

Deno.test("relay: listing 1,100+ keys with continuation, prefix, delimiter, start-after", async (t) => {
  await using tmp = await tempDir("gp-relay-list-");
  const root = `${tmp.path}/srv`;
  // Pre-existing files are objects: build the tree on disk directly.
  const keys: string[] = [];
  for (let i = 0; i < N; i++) {
    const dir = `d${String(i % 7)}`;
    const key = `${dir}/f${String(i).padStart(5, "0")}.txt`;
    keys.push(key);
  }
  for (let i = 0; i < 7; i++) await Deno.mkdir(`${root}/bkt/d${i}`, { recursive: true });
  await Promise.all(keys.map((k) => Deno.writeTextFile(`${root}/bkt/${k}`, k)));
  // Names chosen so that byte order differs from "directory first" order.
  await Deno.writeTextFile(`${root}/bkt/d0-top.txt`, "x");
  await Deno.mkdir(`${root}/bkt/a b+c`, { recursive: true });
  await Deno.writeTextFile(`${root}/bkt/a b+c/é.txt`, "x");
  keys.push("d0-top.txt", "a b+c/é.txt");
  const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const mc = relay.minio();

  await t.step("minio listObjectsV2, recursive (paginates at 1000)", async () => {
    const got: string[] = [];
    for await (const o of mc.listObjectsV2("bkt", "", true)) got.push(o.name!);
    assert.equal(got.length, N + 2);
    assert.deepEqual(got, sorted);
  });

  await t.step("minio listObjectsV2 with delimiter and prefix, start-after", async () => {
    const top: string[] = [];
    for await (const o of mc.listObjectsV2("bkt", "", false)) top.push(o.prefix ?? o.name!);
    // Per page S3 lists objects before common prefixes; compare in key order.
    assert.deepEqual(top.sort(), [
      "a b+c/",
      "d0-top.txt",
      "d0/",
      "d1/",
      "d2/",
      "d3/",
      "d4/",
      "d5/",
      "d6/",
    ]);
    const d3: string[] = [];
    for await (const o of mc.listObjectsV2("bkt", "d3/", true)) d3.push(o.name!);
    assert.deepEqual(d3, sorted.filter((k) => k.startsWith("d3/")));
    const after: string[] = [];
    for await (const o of mc.listObjectsV2("bkt", "d6/", true, "d6/f01000.txt")) {
      after.push(o.name!);
    }
    assert.deepEqual(after, sorted.filter((k) => k.startsWith("d6/") && k > "d6/f01000.txt"));
    const pfx: string[] = [];
    for await (const o of mc.listObjectsV2("bkt", "d0", false)) pfx.push(o.prefix ?? o.name!);
    assert.deepEqual(pfx.sort(), ["d0-top.txt", "d0/"]);
    // a prefix ending in the delimiter lists that folder one level deep
    await Deno.mkdir(`${root}/bkt/a b+c/deeper`, { recursive: true });
    await Deno.writeTextFile(`${root}/bkt/a b+c/deeper/x`, "x");
    const one: string[] = [];
    for await (const o of mc.listObjectsV2("bkt", "a b+c/", false)) one.push(o.prefix ?? o.name!);
    assert.deepEqual(one.sort(), ["a b+c/deeper/", "a b+c/é.txt"]);
    await Deno.remove(`${root}/bkt/a b+c/deeper`, { recursive: true });
  });

  await t.step("curl ListObjectsV2 with max-keys=400 and continuation tokens", async () => {
    const got: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10; page++) {
      const q = `list-type=2&max-keys=400` +
        (token ? `&continuation-token=${encodeURIComponent(token)}` : "");
      const r = await curl(relay, [`${relay.url}/bkt?${q}`]);
      assert.equal(r.status, 200, r.body);
      const keysHere = [...r.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
      assert.ok(keysHere.length <= 400);
      got.push(...keysHere.map((k) => k.replace(/&amp;/g, "&")));
      const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(r.body)?.[1];
      const truncated = /<IsTruncated>true<\/IsTruncated>/.test(r.body);
      assert.equal(Boolean(next), truncated);
      if (!truncated) break;
      token = next;
    }
    assert.deepEqual(got, sorted);
  });

  await t.step("curl ListObjects V1 with marker", async () => {
    const r1 = await curl(relay, [`${relay.url}/bkt?max-keys=3&prefix=d1/`]);
    const k1 = [...r1.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
    assert.deepEqual(k1, sorted.filter((k) => k.startsWith("d1/")).slice(0, 3));
    const marker = /<NextMarker>([^<]*)<\/NextMarker>/.exec(r1.body)?.[1];
    assert.equal(marker, k1[2]);
    const r2 = await curl(relay, [`${relay.url}/bkt?max-keys=2&prefix=d1/&marker=${marker}`]);
    const k2 = [...r2.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
    assert.deepEqual(k2, sorted.filter((k) => k.startsWith("d1/")).slice(3, 5));
  });

  await t.step("delimiter listing paginates over common prefixes", async () => {
    const seen: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 20; page++) {
      const q = `list-type=2&delimiter=%2F&max-keys=2` +
        (token ? `&continuation-token=${encodeURIComponent(token)}` : "");
      const r = await curl(relay, [`${relay.url}/bkt?${q}`]);
      const here = [...r.body.matchAll(/<(Key|Prefix)>([^<]+)<\/\1>/g)].map((m) => m[2]);
      assert.ok(here.length <= 2, here.join());
      seen.push(...here.sort());
      token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(r.body)?.[1];
      if (!token) break;
    }
    assert.deepEqual(seen, [
      "a b+c/",
      "d0-top.txt",
      "d0/",
      "d1/",
      "d2/",
      "d3/",
      "d4/",
      "d5/",
      "d6/",
    ]);
  });

  assert.equal((await relay.stop()).code, 0);
});
