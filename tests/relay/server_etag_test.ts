import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { tempDir } from "../_helpers/mod.ts";
import { curl, s3Code, startRelayProcess } from "./server_harness.ts";

const MiB = 1024 * 1024;
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** 20 MiB: above the size up to which the relay computes an MD5 ETag unasked (16 MiB). */
function bigBody(): Uint8Array {
  const b = new Uint8Array(20 * MiB);
  for (let off = 0; off < b.length; off += 65536) {
    crypto.getRandomValues(b.subarray(off, off + 65536));
  }
  return b;
}

Deno.test("relay ETags: MD5 when asked (Content-MD5), opaque and consistent otherwise", async (t) => {
  await using tmp = await tempDir("gp-relay-etag-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/etags`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;
  const data = bigBody();
  const file = `${tmp.path}/big.bin`;
  await Deno.writeFile(file, data);
  const b64 = Buffer.from(md5(data), "hex").toString("base64");

  await t.step("large PUT without Content-MD5: opaque ETag, same on HEAD, List, GET", async () => {
    const put = await curl(relay, ["-T", file, `${U}/etags/opaque.bin`]);
    assert.equal(put.status, 200, put.body);
    const etag = put.headers["etag"];
    assert.match(etag, /^"[0-9a-f]{32}-1"$/); // never mistakable for an MD5
    const head = await curl(relay, ["-I", `${U}/etags/opaque.bin`]);
    assert.equal(head.headers["etag"], etag);
    const list = await curl(relay, [`${U}/etags?list-type=2`]);
    assert.ok(list.body.includes(etag.replaceAll('"', "&quot;")) || list.body.includes(etag));
    const mc = relay.minio();
    const st = await mc.statObject("etags", "opaque.bin");
    assert.equal(`"${st.etag}"`, etag);
    // A second write of the same bytes gets a new ETag (unique per write).
    const again = await curl(relay, ["-T", file, `${U}/etags/opaque.bin`]);
    assert.notEqual(again.headers["etag"], etag);
    // Conditional GET honours it.
    const cond = await curl(relay, [
      "-H",
      `If-None-Match: ${again.headers["etag"]}`,
      "-o",
      "/dev/null",
      `${U}/etags/opaque.bin`,
    ]);
    assert.equal(cond.status, 304);
  });

  await t.step("large PUT with Content-MD5: the MD5 is checked and is the ETag", async () => {
    const put = await curl(relay, ["-H", `Content-MD5: ${b64}`, "-T", file, `${U}/etags/md5.bin`]);
    assert.equal(put.status, 200, put.body);
    assert.equal(put.headers["etag"], `"${md5(data)}"`);
    const wrong = Buffer.from(md5(data.subarray(1)), "hex").toString("base64");
    const bad = await curl(relay, [
      "-H",
      `Content-MD5: ${wrong}`,
      "-T",
      file,
      `${U}/etags/bad.bin`,
    ]);
    assert.equal(bad.status, 400);
    assert.equal(s3Code(bad.body), "BadDigest");
    const gone = await curl(relay, ["-I", `${U}/etags/bad.bin`]);
    assert.equal(gone.status, 404);
    // A copy keeps an MD5 ETag (same bytes).
    const cp = await curl(relay, [
      "-X",
      "PUT",
      "-H",
      "x-amz-copy-source: /etags/md5.bin",
      `${U}/etags/md5-copy.bin`,
    ]);
    assert.equal(cp.status, 200, cp.body);
    assert.ok(cp.body.includes(md5(data)), cp.body);
  });

  await t.step("a signed payload hash is still verified on a large body", async () => {
    const sha = createHash("sha256").update(data.subarray(1)).digest("hex");
    const bad = await curl(relay, [
      "-H",
      `x-amz-content-sha256: ${sha}`,
      "-T",
      file,
      `${U}/etags/sha.bin`,
    ]);
    assert.equal(bad.status, 400);
    assert.equal(s3Code(bad.body), "XAmzContentSHA256Mismatch");
    assert.equal((await curl(relay, ["-I", `${U}/etags/sha.bin`])).status, 404);
  });

  await t.step("multipart with opaque part ETags: complete checks them", async () => {
    const init = await curl(relay, ["-X", "POST", `${U}/etags/mp.bin?uploads`]);
    const id = /<UploadId>([^<]+)<\/UploadId>/.exec(init.body)![1];
    const part = async (n: number, path: string) => {
      const r = await curl(relay, ["-T", path, `${U}/etags/mp.bin?partNumber=${n}&uploadId=${id}`]);
      assert.equal(r.status, 200, r.body);
      return r.headers["etag"];
    };
    const small = `${tmp.path}/small.bin`;
    await Deno.writeFile(small, data.subarray(0, MiB));
    const e1 = await part(1, file);
    const e2 = await part(2, small);
    assert.match(e1, /-1"$/);
    assert.equal(e2, `"${md5(data.subarray(0, MiB))}"`);
    const xml = (a: string, b: string) =>
      `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${a}</ETag></Part>` +
      `<Part><PartNumber>2</PartNumber><ETag>${b}</ETag></Part></CompleteMultipartUpload>`;
    const complete = (body: string) =>
      curl(relay, ["-X", "POST", "--data-binary", body, `${U}/etags/mp.bin?uploadId=${id}`]);
    const wrong = await complete(xml(`"${"0".repeat(32)}-1"`, e2));
    assert.equal(wrong.status, 400);
    assert.equal(s3Code(wrong.body), "InvalidPart");
    const ok = await complete(xml(e1, e2));
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.body, /<ETag>(&quot;|")[0-9a-f]{32}-2(&quot;|")<\/ETag>/);
    const st = await Deno.stat(`${root}/etags/mp.bin`);
    assert.equal(st.size, 21 * MiB);
  });
});
