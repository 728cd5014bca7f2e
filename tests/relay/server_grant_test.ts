import assert from "node:assert/strict";
import * as Minio from "minio";
import * as http from "node:http";
import { tempDir, waitFor } from "../_helpers/mod.ts";
import { type Credentials, type Relay, startRelay } from "../../lib/relay/mod.ts";
import { curl, s3Code } from "./server_harness.ts";

const MiB = 1024 * 1024;

function clientFor(relay: Relay, c: Credentials): Minio.Client {
  return new Minio.Client({
    endPoint: "127.0.0.1",
    port: relay.port,
    useSSL: false,
    accessKey: c.accessKey,
    secretKey: c.secretKey,
    region: relay.region,
  });
}

/** The harness's curl, signing with `c`. */
function curlAs(relay: Relay, c: Credentials, args: string[]) {
  return curl({ cfg: { ...relay.config(), accesskey: c.accessKey, secretkey: c.secretKey } }, args);
}

const code = (want: string) => (e: Error & { code?: string }) => e.code === want;

Deno.test("relay scoped credentials: grants limit reads and writes, revocation is immediate", async (t) => {
  await using tmp = await tempDir("gp-relay-grant-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/builds/1/x86_64`, { recursive: true });
  await Deno.mkdir(`${root}/other`, { recursive: true });
  await Deno.writeTextFile(`${root}/builds/1/x86_64/meta.json`, "{}");
  await Deno.writeTextFile(`${root}/builds/builds.json`, '{"builds":[]}');
  await Deno.writeTextFile(`${root}/other/secret.txt`, "secret");
  await using relay = await startRelay({ root, bucketDirs: { builder: "builds" } });
  const U = `http://127.0.0.1:${relay.port}`;
  const scoped = relay.grant({
    read: [{ bucket: "builder", prefix: "" }],
    write: [
      { bucket: "builder", prefix: "2/" },
      { bucket: "builder", prefix: "builds.json", exact: true, conditional: true },
    ],
  });
  const mc = clientFor(relay, scoped.credentials);
  const root_ = clientFor(relay, relay.credentials);
  assert.notEqual(scoped.credentials.accessKey, relay.credentials.accessKey);

  await t.step(
    "reads inside the grant work; other buckets and ListBuckets are refused",
    async () => {
      const st = await mc.statObject("builder", "1/x86_64/meta.json");
      assert.equal(st.size, 2);
      const keys: string[] = [];
      for await (const o of mc.listObjectsV2("builder", "", true)) keys.push(o.name!);
      assert.ok(keys.includes("builds.json"));
      await assert.rejects(mc.statObject("other", "secret.txt"), code("AccessDenied"));
      await assert.rejects(mc.listBuckets(), code("AccessDenied"));
      const r = await curlAs(relay, scoped.credentials, [`${U}/other/secret.txt`]);
      assert.equal(r.status, 403);
      assert.equal(s3Code(r.body), "AccessDenied");
    },
  );

  await t.step("writes outside the write prefixes get 403 and write nothing", async () => {
    await mc.putObject("builder", "2/x86_64/ok.txt", "fine");
    assert.equal(await Deno.readTextFile(`${root}/builds/2/x86_64/ok.txt`), "fine");
    await assert.rejects(
      mc.putObject("builder", "1/x86_64/meta.json", "evil"),
      code("AccessDenied"),
    );
    assert.equal(await Deno.readTextFile(`${root}/builds/1/x86_64/meta.json`), "{}");
    await assert.rejects(mc.putObject("builder", "20/evil", "x"), code("AccessDenied"));
    await assert.rejects(Deno.stat(`${root}/builds/20`), Deno.errors.NotFound);
    await assert.rejects(mc.putObject("other", "x", "x"), code("AccessDenied"));
    await assert.rejects(mc.makeBucket("newbucket"), code("AccessDenied"));
    await assert.rejects(Deno.stat(`${root}/newbucket`), Deno.errors.NotFound);
    await assert.rejects(mc.removeObject("builder", "1/x86_64/meta.json"), code("AccessDenied"));
    await assert.rejects(mc.removeBucket("other"), code("AccessDenied"));
    assert.ok((await Deno.stat(`${root}/builds/1/x86_64/meta.json`)).isFile);
    // COPY needs write on the destination and read on the source.
    await assert.rejects(
      mc.copyObject(
        "builder",
        "1/x86_64/copied",
        "/builder/builds.json",
        new Minio.CopyConditions(),
      ),
      code("AccessDenied"),
    );
    await assert.rejects(
      mc.copyObject("builder", "2/stolen", "/other/secret.txt", new Minio.CopyConditions()),
      code("AccessDenied"),
    );
    await assert.rejects(Deno.stat(`${root}/builds/2/stolen`), Deno.errors.NotFound);
    await mc.copyObject(
      "builder",
      "2/meta-copy",
      "/builder/1/x86_64/meta.json",
      new Minio.CopyConditions(),
    );
    assert.equal(await Deno.readTextFile(`${root}/builds/2/meta-copy`), "{}");
  });

  await t.step("multi-object DELETE checks each key", async () => {
    await root_.putObject("builder", "1/keep.txt", "keep");
    await mc.putObject("builder", "2/gone.txt", "gone");
    const body = "<Delete><Object><Key>1/keep.txt</Key></Object>" +
      "<Object><Key>2/gone.txt</Key></Object></Delete>";
    const r = await curlAs(relay, scoped.credentials, [
      "-X",
      "POST",
      "-H",
      "Content-Type: application/xml",
      "--data-binary",
      body,
      `${U}/builder?delete`,
    ]);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /<Error><Key>1\/keep.txt<\/Key><Code>AccessDenied<\/Code>/);
    assert.equal(await Deno.readTextFile(`${root}/builds/1/keep.txt`), "keep");
    await assert.rejects(Deno.stat(`${root}/builds/2/gone.txt`), Deno.errors.NotFound);
  });

  await t.step("a conditional grant needs If-Match / If-None-Match on every write", async () => {
    const plain = await curlAs(relay, scoped.credentials, [
      "--data-binary",
      "x",
      "-X",
      "PUT",
      `${U}/builder/builds.json`,
    ]);
    assert.equal(plain.status, 403);
    assert.equal(s3Code(plain.body), "AccessDenied");
    assert.equal(await Deno.readTextFile(`${root}/builds/builds.json`), '{"builds":[]}');
    const etag = (await mc.statObject("builder", "builds.json")).etag;
    const cas = await curlAs(relay, scoped.credentials, [
      "-H",
      `If-Match: "${etag}"`,
      "--data-binary",
      '{"builds":["2"]}',
      "-X",
      "PUT",
      `${U}/builder/builds.json`,
    ]);
    assert.equal(cas.status, 200, cas.body);
    assert.equal(await Deno.readTextFile(`${root}/builds/builds.json`), '{"builds":["2"]}');
    const del = await curlAs(relay, scoped.credentials, [
      "-X",
      "DELETE",
      `${U}/builder/builds.json`,
    ]);
    assert.equal(del.status, 403);
    assert.ok((await Deno.stat(`${root}/builds/builds.json`)).isFile);
  });

  let presignedBeforeRevoke = "";
  await t.step("presigned URLs made with a scoped key are limited by its grant", async () => {
    const inside = await mc.presignedGetObject("builder", "1/x86_64/meta.json", 60);
    assert.equal(await (await fetch(inside)).text(), "{}");
    presignedBeforeRevoke = inside;
    const outside = await mc.presignedGetObject("other", "secret.txt", 60);
    const r = await fetch(outside);
    assert.equal(r.status, 403);
    assert.equal(s3Code(await r.text()), "AccessDenied");
  });

  await t.step(
    "multipart uploads of a scoped key are its own; revocation aborts them",
    async () => {
      // Begin an upload with the scoped key and send a part.
      const init = await curlAs(relay, scoped.credentials, [
        "-X",
        "POST",
        `${U}/builder/2/big?uploads`,
      ]);
      assert.equal(init.status, 200, init.body);
      const id = /<UploadId>([^<]+)<\/UploadId>/.exec(init.body)![1];
      const src = `${tmp.path}/part`;
      await Deno.writeFile(src, new Uint8Array(MiB).fill(1));
      const part = await curlAs(relay, scoped.credentials, [
        "-T",
        src,
        `${U}/builder/2/big?partNumber=1&uploadId=${id}`,
      ]);
      assert.equal(part.status, 200, part.body);
      // Another scoped key (same grant) does not see it.
      using other = relay.grant({ read: [], write: [{ bucket: "builder", prefix: "2/" }] });
      const list = await curlAs(relay, other.credentials, [`${U}/builder/2/big?uploadId=${id}`]);
      assert.equal(list.status, 404);
      const uploads = await curlAs(relay, other.credentials, [`${U}/builder?uploads`]);
      assert.ok(!uploads.body.includes(id));
      // Revoke: the key is unknown at once, the upload cannot be completed by anyone.
      scoped.revoke();
      scoped.revoke(); // idempotent
      const complete = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${
        part.headers["etag"]
      }</ETag></Part></CompleteMultipartUpload>`;
      const after = await curlAs(relay, scoped.credentials, [
        "-X",
        "POST",
        "--data-binary",
        complete,
        `${U}/builder/2/big?uploadId=${id}`,
      ]);
      assert.equal(after.status, 403);
      assert.equal(s3Code(after.body), "InvalidAccessKeyId");
      const byRoot = await curlAs(relay, relay.credentials, [
        "-X",
        "POST",
        "--data-binary",
        complete,
        `${U}/builder/2/big?uploadId=${id}`,
      ]);
      assert.equal(byRoot.status, 404, byRoot.body);
      await assert.rejects(Deno.stat(`${root}/builds/2/big`), Deno.errors.NotFound);
      await assert.rejects(
        mc.getObject("builder", "1/x86_64/meta.json"),
        code("InvalidAccessKeyId"),
      );
      await assert.rejects(mc.putObject("builder", "2/late.txt", "x"), code("InvalidAccessKeyId"));
      await assert.rejects(Deno.stat(`${root}/builds/2/late.txt`), Deno.errors.NotFound);
      // A presigned URL made before the revocation dies with the key.
      const late = await fetch(presignedBeforeRevoke);
      assert.equal(late.status, 403);
      assert.equal(s3Code(await late.text()), "InvalidAccessKeyId");
      // The root credentials keep full access.
      assert.equal((await root_.statObject("other", "secret.txt")).size, 6);
    },
  );

  await t.step("a PUT that began before revocation does not land after it", async () => {
    const grant = relay.grant({ read: [], write: [{ bucket: "builder", prefix: "3/" }] });
    const url = new URL(
      await clientFor(relay, grant.credentials).presignedPutObject("builder", "3/slow.bin", 60),
    );
    const half = new Uint8Array(MiB).fill(9);
    const before = relay.stats.bytesIn;
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(url, {
        method: "PUT",
        headers: { "content-length": String(2 * half.length) },
      }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.write(half);
      // The relay has accepted and started storing the body: revoke, then send the rest.
      waitFor(() => relay.stats.bytesIn >= before + half.length, {
        timeoutMs: 10_000,
        what: "first half received",
      }).then(() => {
        grant.revoke();
        req.end(half);
      }, reject);
    });
    const r = await answer;
    assert.equal(r.status, 403, r.body);
    assert.equal(s3Code(r.body), "InvalidAccessKeyId");
    await assert.rejects(Deno.stat(`${root}/builds/3/slow.bin`), Deno.errors.NotFound);
  });

  await t.step("grants are validated", () => {
    assert.throws(() => relay.grant({ read: [{ bucket: "../x", prefix: "" }], write: [] }));
    assert.throws(() =>
      relay.grant({ read: [], write: [{ bucket: "builder", prefix: "", exact: true }] })
    );
  });
});
