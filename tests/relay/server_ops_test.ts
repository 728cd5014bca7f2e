import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { tempDir } from "../_helpers/mod.ts";
import { curl, readAll, s3Code, startRelayProcess } from "./server_harness.ts";

const md5 = (b: Uint8Array | string) => createHash("md5").update(b).digest("hex");
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

Deno.test("relay: bucket and object operations (npm:minio and curl)", async (t) => {
  await using tmp = await tempDir("gp-relay-ops-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/source/sub`, { recursive: true });
  await Deno.writeTextFile(`${root}/source/sub/pre.txt`, "pre-existing\n");
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const mc = relay.minio();
  const U = relay.url;

  await t.step("buckets: create, head, list, location, delete", async () => {
    await mc.makeBucket("builder", relay.cfg.region);
    assert.ok(await mc.bucketExists("builder"));
    assert.ok(await mc.bucketExists("source"), "pre-existing folder is a bucket");
    assert.equal(await mc.bucketExists("nope"), false);
    const names = (await mc.listBuckets()).map((b) => b.name);
    assert.deepEqual(names, ["builder", "source"], "state dir is never listed");
    // us-east-1 answers a re-creation by the owner with 200 and keeps the bucket's objects.
    await mc.putObject("builder", "kept", "k");
    await mc.makeBucket("builder", relay.cfg.region);
    assert.equal((await mc.statObject("builder", "kept")).size, 1);
    await mc.removeObject("builder", "kept");
    const loc = await curl(relay, [`${U}/builder?location`]);
    assert.equal(loc.status, 200);
    assert.match(loc.body, /<LocationConstraint[^>]*>(us-east-1)?<\/LocationConstraint>/);
    const mk = await curl(relay, ["-X", "PUT", `${U}/scratch`]);
    assert.equal(mk.status, 200, mk.body);
    const head = await curl(relay, ["-I", `${U}/scratch`]);
    assert.equal(head.status, 200);
    await mc.putObject("scratch", "f", "x");
    const notEmpty = await curl(relay, ["-X", "DELETE", `${U}/scratch`]);
    assert.equal(notEmpty.status, 409);
    assert.equal(s3Code(notEmpty.body), "BucketNotEmpty");
    await mc.removeObject("scratch", "f");
    await mc.removeBucket("scratch");
    assert.equal(await mc.bucketExists("scratch"), false);
    const bad = await curl(relay, ["-X", "PUT", `${U}/Bad_Name`]);
    assert.equal(bad.status, 400);
    assert.equal(s3Code(bad.body), "InvalidBucketName");
  });

  await t.step("pre-existing files are objects", async () => {
    const body = await readAll(await mc.getObject("source", "sub/pre.txt"));
    assert.equal(body.toString(), "pre-existing\n");
    const st = await mc.statObject("source", "sub/pre.txt");
    assert.equal(st.size, 13);
    const c = await curl(relay, [`${U}/source/sub/pre.txt`]);
    assert.equal(c.body, "pre-existing\n");
  });

  await t.step("put/get/head/delete, ETag = md5", async () => {
    const data = "some artifact bytes";
    const r = await mc.putObject("builder", "1/x86_64/meta.json", data, data.length, {
      "Content-Type": "application/json",
    });
    assert.equal(r.etag, md5(data));
    assert.equal(await Deno.readTextFile(`${root}/builder/1/x86_64/meta.json`), data);
    const st = await mc.statObject("builder", "1/x86_64/meta.json");
    assert.equal(st.etag, md5(data));
    assert.equal(st.metaData["content-type"], "application/json");
    const head = await curl(relay, ["-I", `${U}/builder/1/x86_64/meta.json`]);
    assert.equal(head.headers["content-length"], String(data.length));
    assert.equal(head.headers["etag"], `"${md5(data)}"`);
    // curl upload, then read back with minio
    await Deno.writeTextFile(`${tmp.path}/up.txt`, "from curl");
    const put = await curl(relay, ["-T", `${tmp.path}/up.txt`, `${U}/builder/curl/up.txt`]);
    assert.equal(put.status, 200);
    assert.equal(put.headers["etag"], `"${md5("from curl")}"`);
    assert.equal(
      (await readAll(await mc.getObject("builder", "curl/up.txt"))).toString(),
      "from curl",
    );
    // missing key
    const missing = await curl(relay, [`${U}/builder/nope`]);
    assert.equal(missing.status, 404);
    assert.equal(s3Code(missing.body), "NoSuchKey");
    const noBucket = await curl(relay, [`${U}/nobucket/k`]);
    assert.equal(s3Code(noBucket.body), "NoSuchBucket");
    // delete with curl, then with minio (idempotent)
    const del = await curl(relay, ["-X", "DELETE", `${U}/builder/curl/up.txt`]);
    assert.equal(del.status, 204);
    await mc.removeObject("builder", "curl/up.txt");
    await assert.rejects(Deno.stat(`${root}/builder/curl`), Deno.errors.NotFound);
    // overwrite
    await mc.putObject("builder", "1/x86_64/meta.json", "v2");
    assert.equal(await Deno.readTextFile(`${root}/builder/1/x86_64/meta.json`), "v2");
    // empty object
    await mc.putObject("builder", "empty", Buffer.alloc(0), 0);
    assert.equal((await mc.statObject("builder", "empty")).size, 0);
    assert.equal((await readAll(await mc.getObject("builder", "empty"))).length, 0);
  });

  await t.step("Range reads: 206, suffix, open-ended, 416", async () => {
    const data = "0123456789abcdefghij";
    await mc.putObject("builder", "range.txt", data);
    const part = await readAll(await mc.getPartialObject("builder", "range.txt", 5, 4));
    assert.equal(part.toString(), "5678");
    const open = await readAll(await mc.getPartialObject("builder", "range.txt", 15));
    assert.equal(open.toString(), "fghij");
    const c = await curl(relay, ["-r", "2-4", `${U}/builder/range.txt`]);
    assert.equal(c.status, 206);
    assert.equal(c.body, "234");
    assert.equal(c.headers["content-range"], "bytes 2-4/20");
    const suffix = await curl(relay, ["-H", "Range: bytes=-3", `${U}/builder/range.txt`]);
    assert.equal(suffix.status, 206);
    assert.equal(suffix.body, "hij");
    const past = await curl(relay, ["-r", "10-100", `${U}/builder/range.txt`]);
    assert.equal(past.status, 206);
    assert.equal(past.body, "abcdefghij");
    const typed = await curl(relay, [
      "-I",
      `${U}/builder/range.txt?response-content-type=text%2Fplain&response-content-disposition=attachment`,
    ]);
    assert.equal(typed.status, 200, typed.body);
    assert.equal(typed.headers["content-type"], "text/plain");
    assert.equal(typed.headers["content-disposition"], "attachment");
    const bad = await curl(relay, ["-r", "20-30", `${U}/builder/range.txt`]);
    assert.equal(bad.status, 416);
    assert.equal(s3Code(bad.body), "InvalidRange");
    assert.equal(bad.headers["content-range"], "bytes */20");
  });

  await t.step("Content-MD5 and x-amz-content-sha256 are verified", async () => {
    const f = `${tmp.path}/digest.txt`;
    await Deno.writeTextFile(f, "digest me");
    const good = Buffer.from(md5("digest me"), "hex").toString("base64");
    const ok = await curl(relay, ["-H", `Content-MD5: ${good}`, "-T", f, `${U}/builder/d1`]);
    assert.equal(ok.status, 200, ok.body);
    const badMd5 = await curl(relay, [
      "-H",
      "Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==",
      "-T",
      f,
      `${U}/builder/d2`,
    ]);
    assert.equal(badMd5.status, 400);
    assert.equal(s3Code(badMd5.body), "BadDigest");
    const invalidMd5 = await curl(relay, ["-H", "Content-MD5: nope", "-T", f, `${U}/builder/d2`]);
    assert.equal(s3Code(invalidMd5.body), "InvalidDigest");
    const goodSha = await curl(relay, [
      "-H",
      `x-amz-content-sha256: ${sha256("digest me")}`,
      "-T",
      f,
      `${U}/builder/d3`,
    ]);
    assert.equal(goodSha.status, 200, goodSha.body);
    const badSha = await curl(relay, [
      "-H",
      `x-amz-content-sha256: ${sha256("something else")}`,
      "-T",
      f,
      `${U}/builder/d2`,
    ]);
    assert.equal(badSha.status, 400);
    assert.equal(s3Code(badSha.body), "XAmzContentSHA256Mismatch");
    await assert.rejects(Deno.stat(`${root}/builder/d2`), Deno.errors.NotFound);
    const unsigned = await curl(relay, [
      "-H",
      "x-amz-content-sha256: UNSIGNED-PAYLOAD",
      "-T",
      f,
      `${U}/builder/d4`,
    ]);
    assert.equal(unsigned.status, 200, unsigned.body);
  });

  await t.step("user metadata, copy with COPY and REPLACE, metadata not in the tree", async () => {
    const stampKey = "gangplank.coreos.com/cosa/stamp";
    await mc.putObject("builder", "m/a.bin", "payload", 7, {
      "Content-Type": "application/x-test",
      "X-Amz-Meta-Origin": "worker-1",
    });
    let st = await mc.statObject("builder", "m/a.bin");
    assert.equal(st.metaData["origin"], "worker-1");
    // COPY (default): metadata travels with the object
    const cc = new (await import("minio")).CopyConditions();
    await mc.copyObject("builder", "m/b.bin", "/builder/m/a.bin", cc);
    st = await mc.statObject("builder", "m/b.bin");
    assert.equal(st.metaData["origin"], "worker-1");
    assert.equal(st.metaData["content-type"], "application/x-test");
    assert.equal(await Deno.readTextFile(`${root}/builder/m/b.bin`), "payload");
    // REPLACE via curl onto another key
    const rep = await curl(relay, [
      "-X",
      "PUT",
      "-H",
      "x-amz-copy-source: /builder/m/a.bin",
      "-H",
      "x-amz-metadata-directive: REPLACE",
      "-H",
      "x-amz-meta-stage: build",
      `${U}/builder/m/c.bin`,
    ]);
    assert.equal(rep.status, 200, rep.body);
    assert.match(rep.body, /<CopyObjectResult/);
    assert.match(rep.body, new RegExp(md5("payload")));
    st = await mc.statObject("builder", "m/c.bin");
    assert.equal(st.metaData["stage"], "build");
    assert.equal(st.metaData["origin"], undefined);
    // REPLACE onto itself (metadata-only update) with minio
    const { CopyDestinationOptions, CopySourceOptions } = await import("minio");
    await mc.copyObject(
      new CopySourceOptions({ Bucket: "builder", Object: "m/a.bin" }),
      new CopyDestinationOptions({
        Bucket: "builder",
        Object: "m/a.bin",
        MetadataDirective: "REPLACE",
        UserMetadata: { Origin: "worker-2" },
      }),
    );
    st = await mc.statObject("builder", "m/a.bin");
    assert.equal(st.metaData["origin"], "worker-2");
    assert.equal(await Deno.readTextFile(`${root}/builder/m/a.bin`), "payload");
    const self = await curl(relay, [
      "-X",
      "PUT",
      "-H",
      "x-amz-copy-source: /builder/m/a.bin",
      `${U}/builder/m/a.bin`,
    ]);
    assert.equal(self.status, 400);
    assert.equal(s3Code(self.body), "InvalidRequest");
    // tagging: Gangplank's stamp
    await mc.setObjectTagging("builder", "m/a.bin", { [stampKey]: "1700000000000000000" });
    const tags = await mc.getObjectTagging("builder", "m/a.bin");
    assert.deepEqual(
      tags.map((x) => [x.Key, String(x.Value)]),
      [[stampKey, "1700000000000000000"]],
    );
    await mc.removeObjectTagging("builder", "m/a.bin", { versionId: "" });
    assert.deepEqual(await mc.getObjectTagging("builder", "m/a.bin"), []);
    // nothing but the artifacts in the bucket folder
    const found: string[] = [];
    for await (const e of Deno.readDir(`${root}/builder/m`)) found.push(e.name);
    assert.deepEqual(found.sort(), ["a.bin", "b.bin", "c.bin"]);
    const all: string[] = [];
    const walk = async (d: string, rel: string) => {
      for await (const e of Deno.readDir(d)) {
        if (rel === "" && e.name === ".gangplank-relay") continue;
        if (e.isDirectory) await walk(`${d}/${e.name}`, `${rel}${e.name}/`);
        else all.push(rel + e.name);
      }
    };
    await walk(root, "");
    assert.ok(all.every((p) => !p.endsWith(".json") || p.endsWith("meta.json")), all.join(","));
  });

  await t.step("DeleteObjects (multi) via minio", async () => {
    for (const k of ["del/1", "del/2", "del/3"]) await mc.putObject("builder", k, k);
    await mc.removeObjects("builder", ["del/1", "del/2", "del/3", "del/none"]);
    await assert.rejects(Deno.stat(`${root}/builder/del`), Deno.errors.NotFound);
  });

  await t.step("unsupported operations answer NotImplemented", async () => {
    const r = await curl(relay, [`${U}/builder?policy`]);
    assert.equal(r.status, 501);
    assert.equal(s3Code(r.body), "NotImplemented");
  });

  const { code } = await relay.stop();
  assert.equal(code, 0);
});
