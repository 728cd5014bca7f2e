/**
 * The relay keeps its object records (ETag, metadata) in memory once read or written, so a
 * listing reads no record file per key. Attacked here: every way a record can become wrong —
 * an overwrite, a delete followed by a file put in the tree by other means, a file replaced
 * behind the relay, a bucket removed and made again — must show the same ETag in a listing and
 * on HEAD, and never the old record's.
 */
import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { curl, startRelayProcess } from "./server_harness.ts";

/** ETag of `key` as ListObjectsV2 shows it (unquoted), or undefined when not listed. */
async function listedEtag(
  relay: Parameters<typeof curl>[0],
  url: string,
  key: string,
): Promise<string | undefined> {
  const r = await curl(relay, [`${url}?list-type=2`]);
  assert.equal(r.status, 200, r.body);
  for (const m of r.body.matchAll(/<Contents>(.*?)<\/Contents>/gs)) {
    const k = /<Key>([^<]*)<\/Key>/.exec(m[1])?.[1];
    if (k === key) return /<ETag>(?:&quot;|")([^&"]*)(?:&quot;|")<\/ETag>/.exec(m[1])?.[1];
  }
  return undefined;
}

async function headEtag(relay: Parameters<typeof curl>[0], url: string) {
  const r = await curl(relay, ["-I", url]);
  return r.status === 200 ? r.headers["etag"]?.replaceAll('"', "") : undefined;
}

Deno.test("relay records: a listing and HEAD agree on the ETag through every change", async (t) => {
  await using tmp = await tempDir("gp-relay-records-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/recs/d`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = `${relay.url}/recs`;
  const agree = async (key: string, what: string) => {
    const listed = await listedEtag(relay, U, key);
    const head = await headEtag(relay, `${U}/${key}`);
    assert.ok(listed && head, `${what}: listed ${listed}, head ${head}`);
    assert.equal(listed, head, what);
    return head;
  };

  await t.step(
    "files put in the tree by other means, listed before any record exists",
    async () => {
      await Deno.writeTextFile(`${root}/recs/d/plain.txt`, "plain");
      const e = await agree("d/plain.txt", "plain file");
      assert.match(e, /-1$/, "a pseudo ETag, visibly not an MD5");
    },
  );

  await t.step("a PUT, an overwrite, a delete and a file put back by other means", async () => {
    await Deno.writeTextFile(`${tmp.path}/a.txt`, "first");
    const put1 = await curl(relay, ["-T", `${tmp.path}/a.txt`, `${U}/d/a.txt`]);
    assert.equal(put1.status, 200, put1.body);
    const e1 = await agree("d/a.txt", "after the PUT");
    assert.equal(`"${e1}"`, put1.headers["etag"]);
    await Deno.writeTextFile(`${tmp.path}/a.txt`, "second, longer");
    const put2 = await curl(relay, ["-T", `${tmp.path}/a.txt`, `${U}/d/a.txt`]);
    const e2 = await agree("d/a.txt", "after the overwrite");
    assert.equal(`"${e2}"`, put2.headers["etag"]);
    assert.notEqual(e2, e1);
    const del = await curl(relay, ["-X", "DELETE", `${U}/d/a.txt`]);
    assert.equal(del.status, 204);
    assert.equal(await listedEtag(relay, U, "d/a.txt"), undefined, "gone from the listing");
    await Deno.writeTextFile(`${root}/recs/d/a.txt`, "second, longer");
    const e3 = await agree("d/a.txt", "a file put back by other means");
    assert.notEqual(e3, e2, "the deleted object's record is not served for the new file");
    assert.match(e3, /-1$/);
  });

  await t.step("a relay-written file replaced behind the relay", async () => {
    await Deno.writeTextFile(`${tmp.path}/b.txt`, "relay wrote this");
    const put = await curl(relay, ["-T", `${tmp.path}/b.txt`, `${U}/d/b.txt`]);
    const e1 = await agree("d/b.txt", "relay-written");
    assert.equal(`"${e1}"`, put.headers["etag"]);
    await Deno.writeTextFile(`${root}/recs/d/b.txt.new`, "someone else wrote this");
    await Deno.rename(`${root}/recs/d/b.txt.new`, `${root}/recs/d/b.txt`);
    const e2 = await agree("d/b.txt", "replaced behind the relay");
    assert.notEqual(e2, e1);
  });

  await t.step("a bucket removed and made again keeps no record", async () => {
    for (const k of ["d/plain.txt", "d/a.txt", "d/b.txt"]) {
      assert.equal((await curl(relay, ["-X", "DELETE", `${U}/${k}`])).status, 204);
    }
    assert.equal((await curl(relay, ["-X", "DELETE", U])).status, 204);
    assert.equal((await curl(relay, ["-X", "PUT", U])).status, 200);
    await Deno.mkdir(`${root}/recs/d`, { recursive: true });
    await Deno.writeTextFile(`${root}/recs/d/b.txt`, "relay wrote this");
    const e = await agree("d/b.txt", "in the new bucket");
    assert.match(e, /-1$/, "the old bucket's record is not served");
  });
});
