import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { curl, s3Code, startRelayProcess } from "./server_harness.ts";

Deno.test("relay bucket names follow S3's rules on every request (item 10)", async () => {
  await using tmp = await tempDir("gp-relay-bucketnames-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/UPPER_bad`, { recursive: true });
  await Deno.writeTextFile(`${root}/UPPER_bad/f.txt`, "x");
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;
  const before = [...Deno.readDirSync(tmp.path)].map((e) => e.name).sort();
  for (
    const raw of [
      "..%2Fx",
      "UPPER_bad",
      "ab",
      "a..b",
      "-abc",
      "192.168.1.1",
      "xn--abc",
      `${"a".repeat(64)}`,
    ]
  ) {
    const create = await curl(relay, ["--path-as-is", "-X", "PUT", `${U}/${raw}`]);
    assert.equal(create.status, 400, `${raw}: ${create.body}`);
    assert.equal(s3Code(create.body), "InvalidBucketName", raw);
    const get = await curl(relay, ["--path-as-is", `${U}/${raw}/f.txt`]);
    assert.equal(get.status, 400, raw);
    assert.ok(!get.body.includes("<Key>"));
  }
  // Nothing was created, inside or outside the root; the misnamed directory is no bucket.
  assert.deepEqual([...Deno.readDirSync(tmp.path)].map((e) => e.name).sort(), before);
  assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name).sort(), [
    ".gangplank-relay",
    "UPPER_bad",
  ]);
  const list = await curl(relay, [`${U}/`]);
  assert.ok(!list.body.includes("UPPER_bad"));
  // A valid name works.
  const ok = await curl(relay, ["-X", "PUT", `${U}/good-name.1`]);
  assert.equal(ok.status, 200, ok.body);
  assert.ok(Deno.statSync(`${root}/good-name.1`).isDirectory);
});
