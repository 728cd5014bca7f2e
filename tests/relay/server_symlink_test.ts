import assert from "node:assert/strict";
import * as Minio from "minio";
import { tempDir } from "../_helpers/mod.ts";
import { curl, s3Code, startRelayProcess } from "./server_harness.ts";

/** Every path below `dir` with its kind, symlinks not followed. */
async function tree(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${rel}${e.name}`;
    if (e.isSymlink) out.push(`${p} -> ${await Deno.readLink(`${dir}/${e.name}`)}`);
    else if (e.isDirectory) out.push(`${p}/`, ...await tree(`${dir}/${e.name}`, `${p}/`));
    else out.push(`${p} (${(await Deno.readFile(`${dir}/${e.name}`)).length})`);
  }
  return out.sort();
}

Deno.test("relay never follows a symlink in a bucket, for any operation", async (t) => {
  await using tmp = await tempDir("gp-relay-symlink-");
  const root = `${tmp.path}/srv`;
  const outside = `${tmp.path}/outside`;
  await Deno.mkdir(`${root}/bkt/sub`, { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/victim.txt`, "outside victim");
  await Deno.writeTextFile(`${outside}/secret.txt`, "top secret");
  await Deno.writeTextFile(`${root}/bkt/sub/a.txt`, "inside a");
  await Deno.writeTextFile(`${root}/bkt/real.txt`, "real");
  await Deno.symlink(outside, `${root}/bkt/linkdir`);
  await Deno.symlink(`${outside}/secret.txt`, `${root}/bkt/linkfile`);
  await Deno.symlink("sub", `${root}/bkt/inner`); // stays inside the bucket: still not followed
  await Deno.symlink("sub/a.txt", `${root}/bkt/innerfile`);
  await Deno.symlink(".", `${root}/bkt/loop`);
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;
  const mc = relay.minio();
  const outsideBefore = await tree(outside);
  const bucketBefore = await tree(`${root}/bkt`);

  await t.step("DELETE through a symlinked directory removes nothing (item 3)", async () => {
    for (const key of ["linkdir/victim.txt", "inner/a.txt", "loop/real.txt", "linkfile", "inner"]) {
      const r = await curl(relay, ["-X", "DELETE", `${U}/bkt/${key}`]);
      assert.equal(r.status, 204, `${key}: ${r.body}`);
    }
    assert.deepEqual(await tree(outside), outsideBefore);
    assert.deepEqual(await tree(`${root}/bkt`), bucketBefore);
  });

  await t.step("multi-object DELETE removes nothing through or at a symlink", async () => {
    const keys = [
      "linkdir/victim.txt",
      "linkdir/secret.txt",
      "inner/a.txt",
      "loop/sub/a.txt",
      "linkfile",
    ];
    await mc.removeObjects("bkt", keys);
    assert.deepEqual(await tree(outside), outsideBefore);
    assert.deepEqual(await tree(`${root}/bkt`), bucketBefore);
  });

  await t.step("GET and HEAD: a symlink is not an object, also inside the bucket", async () => {
    for (
      const key of ["linkfile", "linkdir/secret.txt", "inner/a.txt", "innerfile", "loop/real.txt"]
    ) {
      const g = await curl(relay, [`${U}/bkt/${key}`]);
      assert.equal(g.status, 404, key);
      assert.equal(s3Code(g.body), "NoSuchKey");
      assert.ok(!g.body.includes("top secret") && !g.body.includes("inside a"), key);
      const h = await curl(relay, ["-I", `${U}/bkt/${key}`]);
      assert.equal(h.status, 404, key);
    }
    // The real file is served.
    assert.equal((await curl(relay, [`${U}/bkt/sub/a.txt`])).body, "inside a");
  });

  await t.step("PUT, COPY and multipart never write through or over a symlink", async () => {
    const src = `${tmp.path}/payload`;
    await Deno.writeTextFile(src, "pwned");
    for (
      const key of ["linkdir/new.txt", "linkdir/victim.txt", "inner/new.txt", "linkfile", "loop/x"]
    ) {
      const r = await curl(relay, ["-T", src, `${U}/bkt/${key}`]);
      assert.equal(r.status, 403, `${key}: ${r.status} ${r.body}`);
      assert.equal(s3Code(r.body), "AccessDenied");
    }
    // COPY: a symlink is no source; no destination through one.
    await assert.rejects(
      mc.copyObject("bkt", "copied.txt", "/bkt/linkfile", new Minio.CopyConditions()),
      (e: Error & { code?: string }) => e.code === "NoSuchKey",
    );
    await assert.rejects(
      mc.copyObject("bkt", "linkdir/copied.txt", "/bkt/real.txt", new Minio.CopyConditions()),
      (e: Error & { code?: string }) => e.code === "AccessDenied",
    );
    // Multipart: completion refuses a key through a symlink and keeps nothing.
    const init = await curl(relay, ["-X", "POST", `${U}/bkt/linkdir/mp.bin?uploads`]);
    const id = /<UploadId>([^<]+)<\/UploadId>/.exec(init.body)?.[1];
    if (id !== undefined) {
      const part = await curl(relay, [
        "-T",
        src,
        `${U}/bkt/linkdir/mp.bin?partNumber=1&uploadId=${id}`,
      ]);
      assert.equal(part.status, 200);
      const done = await curl(relay, [
        "-X",
        "POST",
        "--data-binary",
        `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${
          part.headers["etag"]
        }</ETag></Part></CompleteMultipartUpload>`,
        `${U}/bkt/linkdir/mp.bin?uploadId=${id}`,
      ]);
      assert.equal(done.status, 403, done.body);
    } else assert.equal(init.status, 403, init.body);
    assert.deepEqual(await tree(outside), outsideBefore);
    assert.deepEqual(await tree(`${root}/bkt`), bucketBefore);
  });

  await t.step(
    "listings show real files only: symlinks are neither listed nor followed",
    async () => {
      const keys: string[] = [];
      for await (const o of mc.listObjectsV2("bkt", "", true)) keys.push(o.name!);
      assert.deepEqual(keys, ["real.txt", "sub/a.txt"]);
      const top: string[] = [];
      for await (const o of mc.listObjectsV2("bkt", "", false)) top.push(o.name ?? o.prefix!);
      assert.deepEqual(top, ["real.txt", "sub/"]);
      const under: string[] = [];
      for await (const o of mc.listObjectsV2("bkt", "linkdir/", true)) under.push(o.name!);
      assert.deepEqual(under, []);
    },
  );
});
