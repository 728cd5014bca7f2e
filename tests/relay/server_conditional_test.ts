import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { curl, s3Code, startRelayProcess } from "./server_harness.ts";

const MiB = 1024 * 1024;

Deno.test("relay conditional writes: If-None-Match: * and If-Match are compare-and-swap", async (t) => {
  await using tmp = await tempDir("gp-relay-cond-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/builder`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;
  const file = async (name: string, text: string) => {
    const p = `${tmp.path}/${name}`;
    await Deno.writeTextFile(p, text);
    return p;
  };
  const put = (src: string, headers: string[] = [], key = "builds.json") =>
    curl(relay, [...headers.flatMap((h) => ["-H", h]), "-T", src, `${U}/builder/${key}`]);
  const onDisk = () => Deno.readTextFile(`${root}/builder/builds.json`);

  let etag1 = "";
  await t.step(
    "If-None-Match: * creates once; the second create gets 412, file unchanged",
    async () => {
      const a = await put(await file("a.json", "A"), ["If-None-Match: *"]);
      assert.equal(a.status, 200, a.body);
      etag1 = a.headers["etag"];
      const b = await put(await file("b.json", "B"), ["If-None-Match: *"]);
      assert.equal(b.status, 412, b.body);
      assert.equal(s3Code(b.body), "PreconditionFailed");
      assert.equal(await onDisk(), "A");
      // Only '*' is meaningful on writes.
      const c = await put(await file("c.json", "C"), [`If-None-Match: ${etag1}`]);
      assert.equal(c.status, 501);
      assert.equal(await onDisk(), "A");
    },
  );

  await t.step(
    "If-Match: the current ETag wins, a stale one or a missing key gets 412",
    async () => {
      const head = await curl(relay, ["-I", `${U}/builder/builds.json`]);
      assert.equal(head.headers["etag"], etag1);
      const ok = await put(await file("d.json", "D"), [`If-Match: ${etag1}`]);
      assert.equal(ok.status, 200, ok.body);
      const etag2 = ok.headers["etag"];
      assert.notEqual(etag2, etag1);
      const stale = await put(await file("e.json", "E"), [`If-Match: ${etag1}`]);
      assert.equal(stale.status, 412);
      assert.equal(await onDisk(), "D");
      const missing = await put(await file("f.json", "F"), [`If-Match: ${etag2}`], "nope.json");
      assert.equal(missing.status, 412);
      await assert.rejects(Deno.stat(`${root}/builder/nope.json`), Deno.errors.NotFound);
      // The ETag from a GET works as well.
      const get = await curl(relay, [`${U}/builder/builds.json`]);
      assert.equal(get.headers["etag"], etag2);
      assert.equal(get.body, "D");
    },
  );

  await t.step(
    "a file written behind the relay's back has a stable ETag usable for If-Match",
    async () => {
      await Deno.writeTextFile(`${root}/builder/builds.json`, "external");
      const h1 = await curl(relay, ["-I", `${U}/builder/builds.json`]);
      const h2 = await curl(relay, ["-I", `${U}/builder/builds.json`]);
      assert.equal(h1.headers["etag"], h2.headers["etag"]);
      const ok = await put(await file("g.json", "G"), [`If-Match: ${h1.headers["etag"]}`]);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(await onDisk(), "G");
    },
  );

  await t.step("large objects (opaque ETags) are consistent for If-Match", async () => {
    const big = `${tmp.path}/big.bin`;
    await Deno.writeFile(big, new Uint8Array(17 * MiB).fill(3)); // above the MD5 ETag limit
    const a = await curl(relay, ["-T", big, `${U}/builder/big.bin`]);
    assert.equal(a.status, 200);
    const head = await curl(relay, ["-I", `${U}/builder/big.bin`]);
    assert.equal(head.headers["etag"], a.headers["etag"]);
    const ok = await put(
      await file("h.txt", "small"),
      [`If-Match: ${a.headers["etag"]}`],
      "big.bin",
    );
    assert.equal(ok.status, 200, ok.body);
    assert.equal(await Deno.readTextFile(`${root}/builder/big.bin`), "small");
  });

  await t.step("20 racing PUTs with the same If-Match: exactly one wins, 19 get 412", async () => {
    const cur = (await curl(relay, ["-I", `${U}/builder/builds.json`])).headers["etag"];
    const srcs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => file(`race${i}.json`, `writer ${i}`)),
    );
    const results = await Promise.all(srcs.map((s) => put(s, [`If-Match: ${cur}`])));
    const winners = results.map((r, i) => [r.status, i] as const).filter(([s]) => s === 200);
    assert.equal(winners.length, 1, JSON.stringify(results.map((r) => r.status)));
    assert.ok(results.every((r) => r.status === 200 || r.status === 412));
    assert.equal(await onDisk(), `writer ${winners[0][1]}`);
  });

  await t.step(
    "20 racing If-None-Match: * creates: exactly one object, from the winner",
    async () => {
      const srcs = await Promise.all(
        Array.from({ length: 20 }, (_, i) => file(`new${i}.json`, `creator ${i}`)),
      );
      const results = await Promise.all(srcs.map((s) => put(s, ["If-None-Match: *"], "new.json")));
      const winners = results.map((r, i) => [r.status, i] as const).filter(([s]) => s === 200);
      assert.equal(winners.length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.equal(await Deno.readTextFile(`${root}/builder/new.json`), `creator ${winners[0][1]}`);
    },
  );

  await t.step("CompleteMultipartUpload honours If-None-Match and If-Match", async () => {
    const mc = relay.minio({ partSize: 5 * MiB });
    const initiate = async (key: string) => {
      const r = await curl(relay, ["-X", "POST", `${U}/builder/${key}?uploads`]);
      assert.equal(r.status, 200, r.body);
      return /<UploadId>([^<]+)<\/UploadId>/.exec(r.body)![1];
    };
    const part = async (key: string, id: string, text: string) => {
      const src = await file(`part-${id}`, text);
      const r = await curl(relay, ["-T", src, `${U}/builder/${key}?partNumber=1&uploadId=${id}`]);
      assert.equal(r.status, 200, r.body);
      return r.headers["etag"];
    };
    const complete = (key: string, id: string, etag: string, headers: string[]) =>
      curl(relay, [
        ...headers.flatMap((h) => ["-H", h]),
        "-X",
        "POST",
        "--data-binary",
        `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`,
        `${U}/builder/${key}?uploadId=${id}`,
      ]);
    const id1 = await initiate("builds.json");
    const e1 = await part("builds.json", id1, "multipart-1");
    const refused = await complete("builds.json", id1, e1, ["If-None-Match: *"]);
    assert.equal(refused.status, 412, refused.body);
    assert.match(await onDisk(), /^writer /);
    const cur = (await curl(relay, ["-I", `${U}/builder/builds.json`])).headers["etag"];
    const stale = await complete("builds.json", id1, e1, [`If-Match: "0123"`]);
    assert.equal(stale.status, 412);
    // The upload stays completable after a failed precondition.
    const ok = await complete("builds.json", id1, e1, [`If-Match: ${cur}`]);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(await onDisk(), "multipart-1");
    const st = await mc.statObject("builder", "builds.json");
    assert.equal(
      `"${st.etag}"`,
      /<ETag>([^<]+)<\/ETag>/.exec(ok.body)![1].replaceAll("&quot;", '"'),
    );
  });

  await t.step("DELETE with a stale If-Match gets 412 and keeps the object", async () => {
    const cur = (await curl(relay, ["-I", `${U}/builder/builds.json`])).headers["etag"];
    const stale = await curl(relay, [
      "-X",
      "DELETE",
      "-H",
      `If-Match: "00"`,
      `${U}/builder/builds.json`,
    ]);
    assert.equal(stale.status, 412);
    assert.equal(await onDisk(), "multipart-1");
    const ok = await curl(relay, [
      "-X",
      "DELETE",
      "-H",
      `If-Match: ${cur}`,
      `${U}/builder/builds.json`,
    ]);
    assert.equal(ok.status, 204);
    await assert.rejects(onDisk(), Deno.errors.NotFound);
  });
});
