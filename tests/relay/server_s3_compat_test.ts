/**
 * S3 behaviours the relay adds for tools beyond npm:minio, driven with curl and npm:minio
 * against `scripts/relay.ts`: folder markers in the plain-file layout (and the one thing that
 * layout cannot hold), ListBuckets pagination, ListObjectVersions on unversioned buckets,
 * `?partNumber`, a repeated CompleteMultipartUpload, conditional reads, malformed XML bodies.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tempDir } from "../_helpers/mod.ts";
import { curl, s3Code, startRelayProcess } from "./server_harness.ts";

Deno.test("relay S3 compatibility: folder markers, pagination, versions, parts, conditions", async (t) => {
  await using tmp = await tempDir("gp-s3compat-");
  const root = `${tmp.path}/data`;
  await Deno.mkdir(`${root}/bkt`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;
  const mc = relay.minio();

  await t.step(
    "folder markers: a folder in the tree, listed as a key, deleted with it",
    async () => {
      const put = await curl(relay, ["-X", "PUT", "--data-binary", "", `${U}/bkt/docs/`]);
      assert.equal(put.status, 200, put.body);
      assert.ok(fs.statSync(`${root}/bkt/docs`).isDirectory(), "the marker is a plain folder");
      assert.deepEqual(
        fs.readdirSync(`${root}/bkt/docs`),
        [],
        "nothing but the folder in the tree",
      );
      const head = await curl(relay, ["-I", `${U}/bkt/docs/`]);
      assert.equal(head.status, 200);
      assert.equal(head.headers["content-length"], "0");
      await mc.putObject("bkt", "docs/readme.txt", Buffer.from("r"));
      const list = await curl(relay, [`${U}/bkt?list-type=2&prefix=docs/&delimiter=/`]);
      assert.deepEqual([...list.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]), [
        "docs/",
        "docs/readme.txt",
      ]);
      const top = await curl(relay, [`${U}/bkt?list-type=2&delimiter=/`]);
      assert.match(top.body, /<CommonPrefixes><Prefix>docs\/<\/Prefix><\/CommonPrefixes>/);
      assert.doesNotMatch(top.body, /<Key>docs\/<\/Key>/, "rolled up into its prefix");
      // Content under a key ending in '/': the tree still shows a folder; the bytes are kept in
      // the relay's state directory and served back.
      const bytes = await curl(relay, ["-X", "PUT", "--data-binary", "x", `${U}/bkt/data/`]);
      assert.equal(bytes.status, 200, bytes.body);
      assert.deepEqual(fs.readdirSync(`${root}/bkt/data`), []);
      assert.equal((await curl(relay, [`${U}/bkt/data/`])).body, "x");
      // Deleting the marker keeps the folder while it holds objects, removes it once empty.
      assert.equal((await curl(relay, ["-X", "DELETE", `${U}/bkt/docs/`])).status, 204);
      assert.equal((await curl(relay, ["-I", `${U}/bkt/docs/`])).status, 404);
      assert.ok(fs.existsSync(`${root}/bkt/docs/readme.txt`));
      await curl(relay, ["-X", "PUT", "--data-binary", "", `${U}/bkt/empty/`]);
      assert.equal((await curl(relay, ["-X", "DELETE", `${U}/bkt/empty/`])).status, 204);
      assert.equal(fs.existsSync(`${root}/bkt/empty`), false);
    },
  );

  await t.step(
    "an object a/b and a prefix a/b/ at once: a clear 409, nothing changed",
    async () => {
      await mc.putObject("bkt", "a/b", Buffer.from("file"));
      const under = await curl(relay, ["-X", "PUT", "--data-binary", "x", `${U}/bkt/a/b/c`]);
      assert.equal(under.status, 409);
      assert.equal(s3Code(under.body), "XMinioParentIsObject");
      assert.match(under.body, /cannot hold an object and a prefix of the same name/);
      const marker = await curl(relay, ["-X", "PUT", "--data-binary", "", `${U}/bkt/a/b/`]);
      assert.equal(marker.status, 409);
      await mc.putObject("bkt", "p/q/r", Buffer.from("deep"));
      const over = await curl(relay, ["-X", "PUT", "--data-binary", "x", `${U}/bkt/p/q`]);
      assert.equal(over.status, 409);
      assert.equal(s3Code(over.body), "XMinioObjectExistsAsDirectory");
      assert.equal(fs.readFileSync(`${root}/bkt/a/b`, "utf8"), "file");
      assert.equal(fs.readFileSync(`${root}/bkt/p/q/r`, "utf8"), "deep");
    },
  );

  await t.step("ListBuckets pages with max-buckets and a continuation token", async () => {
    for (const b of ["cb1", "cb2", "cb3"]) {
      assert.equal((await curl(relay, ["-X", "PUT", `${U}/${b}`])).status, 200);
    }
    const names = (body: string) => [...body.matchAll(/<Name>([^<]*)<\/Name>/g)].map((m) => m[1]);
    const p1 = await curl(relay, [`${U}/?max-buckets=2&prefix=cb`]);
    assert.deepEqual(names(p1.body), ["cb1", "cb2"]);
    const token = /<ContinuationToken>([^<]*)<\/ContinuationToken>/.exec(p1.body)?.[1];
    assert.ok(token);
    const p2 = await curl(relay, [`${U}/?max-buckets=2&prefix=cb&continuation-token=${token}`]);
    assert.deepEqual(names(p2.body), ["cb3"]);
    assert.doesNotMatch(p2.body, /ContinuationToken/);
  });

  await t.step(
    "ListObjectVersions: each object once, version null; unknown sub-resources 501",
    async () => {
      const v = await curl(relay, [`${U}/bkt?versions&prefix=a/`]);
      assert.equal(v.status, 200, v.body);
      assert.match(v.body, /<Version><Key>a\/b<\/Key><VersionId>null<\/VersionId><IsLatest>true/);
      for (const sub of ["website", "object-lock", "cors", "replication"]) {
        const r = await curl(relay, [`${U}/bkt?${sub}`]);
        assert.equal(r.status, 501, sub);
        assert.equal(s3Code(r.body), "NotImplemented");
      }
    },
  );

  await t.step(
    "multipart: ?partNumber reads a part; a repeated Complete gets the same answer",
    async () => {
      const init = await curl(relay, ["-X", "POST", `${U}/bkt/mp.bin?uploads`]);
      const id = /<UploadId>([^<]+)</.exec(init.body)![1];
      const p1 = Buffer.alloc(5 << 20, 1);
      const p2 = Buffer.from("tail");
      await Deno.writeFile(`${tmp.path}/p1`, p1);
      await Deno.writeFile(`${tmp.path}/p2`, p2);
      const e1 = (await curl(relay, [
        "-X",
        "PUT",
        "-H",
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        "--data-binary",
        `@${tmp.path}/p1`,
        `${U}/bkt/mp.bin?partNumber=1&uploadId=${id}`,
      ])).headers["etag"];
      const e2 = (await curl(relay, [
        "-X",
        "PUT",
        "-H",
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        "--data-binary",
        `@${tmp.path}/p2`,
        `${U}/bkt/mp.bin?partNumber=2&uploadId=${id}`,
      ])).headers["etag"];
      const xml =
        `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${e1}</ETag></Part>` +
        `<Part><PartNumber>2</PartNumber><ETag>${e2}</ETag></Part></CompleteMultipartUpload>`;
      const c1 = await curl(relay, [
        "-X",
        "POST",
        "--data-binary",
        xml,
        `${U}/bkt/mp.bin?uploadId=${id}`,
      ]);
      assert.equal(c1.status, 200, c1.body);
      const c2 = await curl(relay, [
        "-X",
        "POST",
        "--data-binary",
        xml,
        `${U}/bkt/mp.bin?uploadId=${id}`,
      ]);
      assert.equal(c2.status, 200, c2.body);
      const etag = (b: string) => /<ETag>([^<]*)<\/ETag>/.exec(b)?.[1];
      assert.equal(etag(c2.body), etag(c1.body));
      const part2 = await curl(relay, [`${U}/bkt/mp.bin?partNumber=2`]);
      assert.equal(part2.status, 206);
      assert.equal(part2.body, "tail");
      assert.equal(part2.headers["x-amz-mp-parts-count"], "2");
      const bad = await curl(relay, [`${U}/bkt/mp.bin?partNumber=3`]);
      assert.equal(s3Code(bad.body), "InvalidPart");
    },
  );

  await t.step("conditional reads: If-Modified-Since / If-Unmodified-Since", async () => {
    const past = "Sat, 29 Oct 1994 19:43:31 GMT";
    const future = new Date(Date.now() + 3600_000).toUTCString();
    assert.equal(
      (await curl(relay, ["-H", `If-Unmodified-Since: ${past}`, `${U}/bkt/a/b`])).status,
      412,
    );
    assert.equal(
      (await curl(relay, ["-H", `If-Modified-Since: ${future}`, `${U}/bkt/a/b`])).status,
      304,
    );
    assert.equal(
      (await curl(relay, ["-H", `If-Modified-Since: ${past}`, `${U}/bkt/a/b`])).status,
      200,
    );
  });

  await t.step("malformed XML bodies are 400 MalformedXML, never 500", async () => {
    for (
      const body of [
        "<Delete><Object><Key>&#x110000;</Key></Object></Delete>",
        "<Delete><Object>",
        "not xml",
      ]
    ) {
      const r = await curl(relay, ["-X", "POST", "--data-binary", body, `${U}/bkt?delete`]);
      assert.equal(r.status, 400, body);
      assert.equal(s3Code(r.body), "MalformedXML");
    }
    assert.ok(fs.existsSync(`${root}/bkt/a/b`));
  });
});
