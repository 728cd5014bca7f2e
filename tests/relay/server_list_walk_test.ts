import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tempDir } from "../_helpers/mod.ts";
import { curl, startRelayProcess } from "./server_harness.ts";

Deno.test("relay listings: symlink loops cannot freeze the relay (item 4)", async () => {
  await using tmp = await tempDir("gp-relay-loop-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/loopy/a/b`, { recursive: true });
  await Deno.writeTextFile(`${root}/loopy/top.txt`, "t");
  await Deno.writeTextFile(`${root}/loopy/a/b/deep.txt`, "d");
  await Deno.symlink(".", `${root}/loopy/x`);
  await Deno.symlink(".", `${root}/loopy/y`);
  await Deno.symlink("..", `${root}/loopy/a/up`);
  await Deno.symlink(root, `${root}/loopy/a/b/rootlink`);
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const mc = relay.minio();
  const keys: string[] = [];
  for await (const o of mc.listObjectsV2("loopy", "", true)) keys.push(o.name!);
  assert.deepEqual(keys, ["a/b/deep.txt", "top.txt"]);
  const v1 = await curl(relay, [`${relay.url}/loopy?prefix=x/`], { timeoutMs: 10_000 });
  assert.equal(v1.status, 200);
  assert.ok(!v1.body.includes("<Key>"), v1.body);
  const stopped = await relay.stop("SIGTERM");
  assert.equal(stopped.code, 0, stopped.stderr);
});

Deno.test("relay listings: a long listing leaves other clients served and SIGTERM working", async () => {
  await using tmp = await tempDir("gp-relay-longlist-");
  const root = `${tmp.path}/srv`;
  // 12,000 empty directories: a listing that reads them all and yields nothing for a while.
  for (let i = 0; i < 120; i++) {
    for (let j = 0; j < 100; j++) fs.mkdirSync(`${root}/wide/d${i}/e${j}`, { recursive: true });
  }
  await Deno.mkdir(`${root}/small`);
  await Deno.writeTextFile(`${root}/small/x.txt`, "x");
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;

  let listDone = false;
  const list = curl(relay, [`${U}/wide?list-type=2`], { timeoutMs: 60_000 }).then((r) => {
    listDone = true;
    return r;
  });
  // While the listing runs, other requests get answers.
  let answeredDuring = 0;
  for (let i = 0; i < 200 && !listDone; i++) {
    const r = await curl(relay, [`${U}/small/x.txt`], { timeoutMs: 10_000 });
    assert.equal(r.body, "x");
    if (!listDone) answeredDuring++;
  }
  const l = await list;
  assert.equal(l.status, 200);
  assert.ok(!l.body.includes("<Key>"));
  assert.ok(answeredDuring >= 2, `only ${answeredDuring} GETs answered during the listing`);

  // SIGTERM in the middle of a listing stops the relay promptly.
  const inFlight = curl(relay, [`${U}/wide?list-type=2`], { timeoutMs: 60_000 });
  const t0 = Date.now();
  const stopped = await relay.stop("SIGTERM");
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(Date.now() - t0 < 5_000, `relay took ${Date.now() - t0} ms to stop`);
  await inFlight;
});
