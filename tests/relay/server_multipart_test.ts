import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256File, tempDir } from "../_helpers/mod.ts";
import { curl, readAll, s3Code, startRelayProcess } from "./server_harness.ts";

const MiB = 1024 * 1024;

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

Deno.test("relay: multipart uploads (npm:minio and curl)", async (t) => {
  await using tmp = await tempDir("gp-relay-mp-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/builder`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;

  await t.step("minio fPutObject of 12 MiB with 5 MiB parts", async () => {
    const mc = relay.minio({ partSize: 5 * MiB });
    const file = `${tmp.path}/big.bin`;
    const data = randomBytes(12 * MiB);
    await Deno.writeFile(file, data);
    const r = await mc.fPutObject("builder", "1/x86_64/big.qcow2", file, {
      "X-Amz-Meta-Kind": "disk",
    });
    // md5 of the three part md5s, "-3"
    const parts = [
      data.subarray(0, 5 * MiB),
      data.subarray(5 * MiB, 10 * MiB),
      data.subarray(10 * MiB),
    ];
    const md5s = Buffer.concat(parts.map((p) => createHash("md5").update(p).digest()));
    assert.equal(r.etag, createHash("md5").update(md5s).digest("hex") + "-3");
    assert.equal(await sha256File(`${root}/builder/1/x86_64/big.qcow2`), await sha256File(file));
    const st = await mc.statObject("builder", "1/x86_64/big.qcow2");
    assert.equal(st.size, 12 * MiB);
    assert.equal(st.metaData["kind"], "disk");
    const back = await readAll(
      await mc.getPartialObject("builder", "1/x86_64/big.qcow2", 5 * MiB - 3, 6),
    );
    assert.deepEqual(new Uint8Array(back), data.subarray(5 * MiB - 3, 5 * MiB + 3));
    // no in-flight parts left anywhere
    const up: string[] = [];
    for await (const e of Deno.readDir(`${root}/.gangplank-relay/uploads`)) up.push(e.name);
    assert.deepEqual(up, []);
  });

  await t.step("curl: initiate, upload parts, list, complete; abort; errors", async () => {
    const init = await curl(relay, ["-X", "POST", `${U}/builder/mp/curl.bin?uploads`]);
    assert.equal(init.status, 200, init.body);
    const id = /<UploadId>([^<]+)<\/UploadId>/.exec(init.body)?.[1];
    assert.ok(id);
    const p1 = `${tmp.path}/p1`;
    const p2 = `${tmp.path}/p2`;
    const d1 = randomBytes(5 * MiB);
    const d2 = new TextEncoder().encode("tail part");
    await Deno.writeFile(p1, d1);
    await Deno.writeFile(p2, d2);
    const e1 = await curl(relay, [
      "-T",
      p1,
      `${U}/builder/mp/curl.bin?partNumber=1&uploadId=${id}`,
    ]);
    assert.equal(e1.status, 200, e1.body);
    const e2 = await curl(relay, [
      "-T",
      p2,
      `${U}/builder/mp/curl.bin?partNumber=2&uploadId=${id}`,
    ]);
    assert.equal(e2.status, 200);
    const lp = await curl(relay, [`${U}/builder/mp/curl.bin?uploadId=${id}`]);
    assert.equal(lp.status, 200, lp.body);
    assert.equal(
      [...lp.body.matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => m[1]).join(","),
      "1,2",
    );
    const lu = await curl(relay, [`${U}/builder?uploads`]);
    assert.equal(lu.status, 200, lu.body);
    assert.match(lu.body, new RegExp(`<UploadId>${id}</UploadId>`));
    // not in the bucket yet
    await assert.rejects(Deno.stat(`${root}/builder/mp/curl.bin`), Deno.errors.NotFound);
    // wrong order is refused
    const xmlOf = (parts: [number, string][]) =>
      `<CompleteMultipartUpload>${
        parts.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${e}</ETag></Part>`).join(
          "",
        )
      }</CompleteMultipartUpload>`;
    const bad = await curl(relay, [
      "-X",
      "POST",
      "--data-binary",
      xmlOf([[2, e2.headers.etag], [1, e1.headers.etag]]),
      `${U}/builder/mp/curl.bin?uploadId=${id}`,
    ]);
    assert.equal(s3Code(bad.body), "InvalidPartOrder");
    const wrongTag = await curl(relay, [
      "-X",
      "POST",
      "--data-binary",
      xmlOf([[1, e1.headers.etag], [2, '"00000000000000000000000000000000"']]),
      `${U}/builder/mp/curl.bin?uploadId=${id}`,
    ]);
    assert.equal(s3Code(wrongTag.body), "InvalidPart");
    const done = await curl(relay, [
      "-X",
      "POST",
      "--data-binary",
      xmlOf([[1, e1.headers.etag], [2, e2.headers.etag]]),
      `${U}/builder/mp/curl.bin?uploadId=${id}`,
    ]);
    assert.equal(done.status, 200, done.body);
    assert.match(done.body, /<CompleteMultipartUploadResult/);
    const got = await Deno.readFile(`${root}/builder/mp/curl.bin`);
    assert.equal(got.length, d1.length + d2.length);
    assert.deepEqual(got.subarray(d1.length), d2);
    // the upload is gone
    const again = await curl(relay, [`${U}/builder/mp/curl.bin?uploadId=${id}`]);
    assert.equal(s3Code(again.body), "NoSuchUpload");

    // a too-small non-final part
    const init2 = await curl(relay, ["-X", "POST", `${U}/builder/mp/small.bin?uploads`]);
    const id2 = /<UploadId>([^<]+)<\/UploadId>/.exec(init2.body)![1];
    const s1 = await curl(relay, [
      "-T",
      p2,
      `${U}/builder/mp/small.bin?partNumber=1&uploadId=${id2}`,
    ]);
    const s2 = await curl(relay, [
      "-T",
      p2,
      `${U}/builder/mp/small.bin?partNumber=2&uploadId=${id2}`,
    ]);
    const small = await curl(relay, [
      "-X",
      "POST",
      "--data-binary",
      xmlOf([[1, s1.headers.etag], [2, s2.headers.etag]]),
      `${U}/builder/mp/small.bin?uploadId=${id2}`,
    ]);
    assert.equal(s3Code(small.body), "EntityTooSmall");
    // abort
    const ab = await curl(relay, ["-X", "DELETE", `${U}/builder/mp/small.bin?uploadId=${id2}`]);
    assert.equal(ab.status, 204);
    const lu2 = await curl(relay, [`${U}/builder?uploads`]);
    assert.doesNotMatch(lu2.body, /<Upload>/);
    await assert.rejects(Deno.stat(`${root}/builder/mp/small.bin`), Deno.errors.NotFound);
    const bogus = await curl(relay, ["-X", "DELETE", `${U}/builder/mp/small.bin?uploadId=../../x`]);
    assert.equal(s3Code(bogus.body), "NoSuchUpload");
  });

  await t.step("minio lists and removes an incomplete upload", async () => {
    const mc = relay.minio();
    const init = await curl(relay, ["-X", "POST", `${U}/builder/mp/left.bin?uploads`]);
    assert.equal(init.status, 200);
    const seen: string[] = [];
    for await (const u of mc.listIncompleteUploads("builder", "mp/", true)) seen.push(u.key);
    assert.deepEqual(seen, ["mp/left.bin"]);
    await mc.removeIncompleteUpload("builder", "mp/left.bin");
    const after: string[] = [];
    for await (const u of mc.listIncompleteUploads("builder", "mp/", true)) after.push(u.key);
    assert.deepEqual(after, []);
  });

  assert.equal((await relay.stop()).code, 0);
});
