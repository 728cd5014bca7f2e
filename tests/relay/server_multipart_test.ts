import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { randomBytes, sha256File, tempDir, waitFor } from "../_helpers/mod.ts";
import { curl, readAll, s3Code, startRelayProcess } from "./server_harness.ts";

const MiB = 1024 * 1024;
const hash = (...parts: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

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

  await t.step("parts out of order, re-uploaded, or a subset completed", async () => {
    const xmlOf = (parts: [number, string][]) =>
      `<CompleteMultipartUpload>${
        parts.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${e}</ETag></Part>`)
          .join("")
      }</CompleteMultipartUpload>`;
    const files = ["A", "B", "C", "D"].map((c, i) => {
      const f = `${tmp.path}/part${c}`;
      const d = new Uint8Array(5 * MiB + i).fill(c.charCodeAt(0));
      Deno.writeFileSync(f, d);
      return { f, d };
    });
    const start = async (key: string) => {
      const r = await curl(relay, ["-X", "POST", `${U}/builder/${key}?uploads`]);
      return /<UploadId>([^<]+)<\/UploadId>/.exec(r.body)![1];
    };
    const put = async (key: string, id: string, n: number, f: string) => {
      const r = await curl(relay, ["-T", f, `${U}/builder/${key}?partNumber=${n}&uploadId=${id}`]);
      assert.equal(r.status, 200, r.body);
      return r.headers.etag;
    };
    const complete = async (key: string, id: string, parts: [number, string][]) => {
      const r = await curl(relay, [
        "-X",
        "POST",
        "--data-binary",
        xmlOf(parts),
        `${U}/builder/${key}?uploadId=${id}`,
      ]);
      assert.equal(r.status, 200, r.body);
    };
    // part 2 before part 1, then part 1 re-uploaded with other content
    const id = await start("mp/ooo.bin");
    const e2 = await put("mp/ooo.bin", id, 2, files[1].f);
    await put("mp/ooo.bin", id, 1, files[0].f);
    const e1b = await put("mp/ooo.bin", id, 1, files[2].f);
    const lp = await curl(relay, [`${U}/builder/mp/ooo.bin?uploadId=${id}`]);
    assert.ok(lp.body.includes(e1b.replace(/"/g, "&quot;")) || lp.body.includes(e1b), lp.body);
    await complete("mp/ooo.bin", id, [[1, e1b], [2, e2]]);
    const got = await Deno.readFile(`${root}/builder/mp/ooo.bin`);
    assert.equal(hash(got), hash(files[2].d, files[1].d));
    // three parts in order, only the first two completed
    const id2 = await start("mp/subset.bin");
    const f1 = await put("mp/subset.bin", id2, 1, files[0].f);
    const f2 = await put("mp/subset.bin", id2, 2, files[1].f);
    await put("mp/subset.bin", id2, 3, files[3].f);
    await complete("mp/subset.bin", id2, [[1, f1], [2, f2]]);
    const got2 = await Deno.readFile(`${root}/builder/mp/subset.bin`);
    assert.equal(hash(got2), hash(files[0].d, files[1].d));
    const up: string[] = [];
    for await (const e of Deno.readDir(`${root}/.gangplank-relay/uploads`)) up.push(e.name);
    assert.deepEqual(up, []);
  });

  await t.step("a part upload killed mid-body leaves the upload intact and retryable", async () => {
    const init = await curl(relay, ["-X", "POST", `${U}/builder/mp/killed.bin?uploads`]);
    const id = /<UploadId>([^<]+)<\/UploadId>/.exec(init.body)![1];
    const f = `${tmp.path}/killed-part`;
    const data = randomBytes(6 * MiB);
    await Deno.writeFile(f, data);
    const child = new Deno.Command("curl", {
      args: [
        "-s",
        "-K",
        "-",
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--limit-rate",
        "2M",
        "-T",
        f,
        `${U}/builder/mp/killed.bin?partNumber=1&uploadId=${id}`,
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(
      new TextEncoder().encode(`user = "${relay.cfg.accesskey}:${relay.cfg.secretkey}"\n`),
    );
    await w.close();
    const asm = `${root}/.gangplank-relay/uploads/${id}/assembly`;
    await waitFor(async () => ((await Deno.stat(asm).catch(() => undefined))?.size ?? 0) > 0, {
      timeoutMs: 10_000,
      what: "part upload in progress",
    });
    child.kill("SIGKILL");
    await child.status;
    const lp = await waitFor(async () => {
      const r = await curl(relay, [`${U}/builder/mp/killed.bin?uploadId=${id}`]);
      return r.status === 200 && !r.body.includes("<Part>") ? r : undefined;
    }, { timeoutMs: 10_000, what: "no parts listed" });
    assert.equal(lp.status, 200);
    const e1 =
      (await curl(relay, ["-T", f, `${U}/builder/mp/killed.bin?partNumber=1&uploadId=${id}`]))
        .headers.etag;
    const done = await curl(relay, [
      "-X",
      "POST",
      "--data-binary",
      `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${e1}</ETag></Part></CompleteMultipartUpload>`,
      `${U}/builder/mp/killed.bin?uploadId=${id}`,
    ]);
    assert.equal(done.status, 200, done.body);
    assert.equal(hash(await Deno.readFile(`${root}/builder/mp/killed.bin`)), hash(data));
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
