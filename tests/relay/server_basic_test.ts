import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { curl, readAll, s3Code, startRelayProcess } from "./server_harness.ts";

Deno.test("relay: basic put/get with npm:minio and curl, unsigned and wrong key refused", async () => {
  await using tmp = await tempDir("gp-relay-basic-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/pre`, { recursive: true });
  await Deno.writeTextFile(`${root}/pre/hello.txt`, "hello\n");
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);

  const mc = relay.minio();
  await mc.makeBucket("builder", relay.cfg.region);
  await mc.putObject("builder", "a/b.txt", Buffer.from("via minio"), 9);
  assert.equal(await Deno.readTextFile(`${root}/builder/a/b.txt`), "via minio");
  assert.equal((await readAll(await mc.getObject("pre", "hello.txt"))).toString(), "hello\n");

  const put = await curl(relay, ["-T", `${root}/pre/hello.txt`, `${relay.url}/builder/c.txt`]);
  assert.equal(put.status, 200, put.body);
  const get = await curl(relay, [`${relay.url}/builder/a/b.txt`]);
  assert.equal(get.status, 200);
  assert.equal(get.body, "via minio");

  const anon = await curl(relay, [`${relay.url}/builder/a/b.txt`], { auth: false });
  assert.equal(anon.status, 403);
  assert.equal(s3Code(anon.body), "AccessDenied");
  const wrong = await curl(relay, [`${relay.url}/builder/a/b.txt`], { secretKey: "x".repeat(40) });
  assert.equal(wrong.status, 403);
  assert.equal(s3Code(wrong.body), "SignatureDoesNotMatch");

  const { code, stderr } = await relay.stop();
  assert.equal(code, 0, stderr);
  assert.ok(!stderr.includes(relay.cfg.secretkey), "secret key leaked to the log");
});
