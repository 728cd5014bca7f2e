import assert from "node:assert/strict";
import { runScript, tempDir } from "../_helpers/mod.ts";
import { curl, startRelayProcess } from "./server_harness.ts";

const HOUR = 3600 * 1000;

Deno.test("relay start aborts multipart uploads older than the bound, with their parts (item 9)", async () => {
  await using tmp = await tempDir("gp-relay-stale-");
  const root = `${tmp.path}/srv`;
  const uploads = `${root}/.gangplank-relay/uploads`;
  await Deno.mkdir(`${root}/bkt`, { recursive: true });
  const part = `${tmp.path}/part`;
  await Deno.writeFile(part, new Uint8Array(1 << 20).fill(7));

  // A run begins two uploads, sends a part of each, and is killed.
  const ids: string[] = [];
  const etags: string[] = [];
  {
    const relay = await startRelayProcess(root, `${tmp.path}/m1.json`);
    for (const key of ["old.bin", "new.bin"]) {
      const init = await curl(relay, ["-X", "POST", `${relay.url}/bkt/${key}?uploads`]);
      const id = /<UploadId>([^<]+)<\/UploadId>/.exec(init.body)![1];
      const p = await curl(relay, [
        "-T",
        part,
        `${relay.url}/bkt/${key}?partNumber=1&uploadId=${id}`,
      ]);
      assert.equal(p.status, 200);
      ids.push(id);
      etags.push(p.headers["etag"]);
    }
    await relay.stop("SIGKILL");
  }
  // One of them was begun 25 hours ago; a half-created upload dir (no record) is as old.
  const info = JSON.parse(await Deno.readTextFile(`${uploads}/${ids[0]}/info.json`));
  info.initiated = new Date(Date.now() - 25 * HOUR).toISOString();
  await Deno.writeTextFile(`${uploads}/${ids[0]}/info.json`, JSON.stringify(info));
  await Deno.mkdir(`${uploads}/${"f".repeat(32)}`);
  await Deno.writeFile(`${uploads}/${"f".repeat(32)}/part.1`, new Uint8Array(1000));
  const old = new Date(Date.now() - 30 * HOUR);
  await Deno.utime(`${uploads}/${"f".repeat(32)}`, old, old);
  const before = [];
  for await (const e of Deno.readDir(uploads)) before.push(e.name);
  assert.equal(before.length, 3);

  // The next start removes the stale ones and keeps the fresh one completable.
  const relay = await startRelayProcess(root, `${tmp.path}/m2.json`);
  const after = [];
  for await (const e of Deno.readDir(uploads)) after.push(e.name);
  assert.deepEqual(after, [ids[1]]);
  const done = await curl(relay, [
    "-X",
    "POST",
    "--data-binary",
    `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${
      etags[1]
    }</ETag></Part></CompleteMultipartUpload>`,
    `${relay.url}/bkt/new.bin?uploadId=${ids[1]}`,
  ]);
  assert.equal(done.status, 200, done.body);
  assert.equal((await Deno.stat(`${root}/bkt/new.bin`)).size, 1 << 20);
  const gone = await curl(relay, [`${relay.url}/bkt/old.bin?uploadId=${ids[0]}`]);
  assert.equal(gone.status, 404);
  await relay.stop();

  // --abort-uploads-after 0 aborts every upload left over.
  const again = await startRelayProcess(root, `${tmp.path}/m3.json`);
  const init = await curl(again, ["-X", "POST", `${again.url}/bkt/x.bin?uploads`]);
  assert.equal(init.status, 200);
  await again.stop("SIGKILL");
  const zero = await startRelayProcess(root, `${tmp.path}/m4.json`, ["--abort-uploads-after", "0"]);
  const left = [];
  for await (const e of Deno.readDir(uploads)) left.push(e.name);
  assert.deepEqual(left, []);
  await zero.stop();

  // A bad bound is refused with exit code 2, naming the flag, and nothing is served.
  const bad = await runScript("relay.ts", [
    "-d",
    root,
    "-m",
    `${tmp.path}/m5.json`,
    "--abort-uploads-after",
    "-1",
  ], { timeoutMs: 30_000 });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--abort-uploads-after/);
  await assert.rejects(Deno.stat(`${tmp.path}/m5.json`), Deno.errors.NotFound);
});
