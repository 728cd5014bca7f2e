/**
 * Parallel workers merging builds.json and a shared meta.json through compare-and-swap: no
 * lost update, bounded retries, and a loud failure when the merge cannot be kept.
 */
import assert from "node:assert/strict";
import type { JobSpec, Stage } from "../../lib/jobspec/mod.ts";
import { casMergeJSON, ConcurrentUpdateError } from "../../lib/store/cas.ts";
import { runWorker } from "../../lib/worker/mod.ts";
import type { WorkSpec } from "../../lib/workspec/mod.ts";
import { tempDir } from "../_helpers/mod.ts";
import { fakeBuild, FakeRunner, MemStore } from "./fakes.ts";

const B = "builder";

function workspec(stage: Stage, remotefiles: WorkSpec["remotefiles"] = []): WorkSpec {
  return {
    remotefiles,
    jobspec: { job: {}, recipe: {}, minio: { bucket: B }, stages: [stage] } as JobSpec,
    executeStages: [stage.id],
    return: { bucket: B, key_prefix: "" },
    relay: { host: "127.0.0.1", port: 1, region: "us-east-1", secure: false, accesskey: "AK" },
  };
}

/** Runs one worker whose stage makes build `id` (adding `images` to it) in its own srv dir. */
async function worker(store: MemStore, id: string, images: string[], fetchMeta = false) {
  await using srv = await tempDir("gp-cas-");
  const runner = new FakeRunner(async (_t, o) => {
    await fakeBuild(o.cwd, id, images);
    return 0;
  });
  const rf: WorkSpec["remotefiles"] = fetchMeta
    ? [{ bucket: B, object: `${id}/x86_64/meta.json`, force_path: `builds/${id}/x86_64/meta.json` }]
    : [];
  return await runWorker(workspec({ id: `s-${images.join("-")}`, commands: ["x"] }, rf), {
    srvDir: srv.path,
    env: { COSA_FORCE_ARCH: "x86_64" },
    secretKey: "K",
    store,
    runner,
    log: () => {},
    signal: new AbortController().signal,
  });
}

const ids = (store: MemStore) =>
  JSON.parse(store.text(B, "builds.json")!).builds.map((b: { id: string }) => b.id).sort();

Deno.test("10 parallel workers each returning a new build: all 10 end in builds.json", async () => {
  for (let round = 0; round < 5; round++) {
    const store = new MemStore();
    store.interleave = true;
    const want = Array.from({ length: 10 }, (_, i) => `b.${round}.${i}`);
    const results = await Promise.all(want.map((id) => worker(store, id, ["ostree"])));
    for (const r of results) assert.equal(r.exitCode, 0, r.message);
    assert.deepEqual(ids(store), [...want].sort());
    // The interleaving really raced: some conditional writes lost and were merged again.
    if (round === 4) assert.ok(store.preconditionFailures > 0, "no write ever raced");
    for (const [i, r] of results.entries()) {
      assert.deepEqual(r.builds, [{ id: want[i], arches: ["x86_64"] }]);
    }
  }
});

Deno.test("parallel workers adding artifacts to one fetched build: meta.json keeps all of them", async () => {
  const store = new MemStore();
  store.interleave = true;
  await using seed = await tempDir();
  await fakeBuild(seed.path, "b.1", ["ostree"]);
  store.put(
    B,
    "b.1/x86_64/meta.json",
    await Deno.readFile(`${seed.path}/builds/b.1/x86_64/meta.json`),
  );
  const names = ["qemu", "metal", "metal4k", "live", "aws", "gcp"];
  const results = await Promise.all(names.map((n) => worker(store, "b.1", [n], true)));
  for (const r of results) assert.equal(r.exitCode, 0, r.message);
  const meta = JSON.parse(store.text(B, "b.1/x86_64/meta.json")!);
  assert.deepEqual(Object.keys(meta.images).sort(), ["ostree", ...names].sort());
});

Deno.test("a merge that keeps losing fails the worker naming builds.json (never exit 0)", async () => {
  const store = new MemStore();
  // Someone rewrites builds.json after every one of our writes.
  store.afterPutJSON = (bucket, key) => {
    if (key === "builds.json") {
      store.put(bucket, key, JSON.stringify({ "schema-version": "1.0.0", builds: [] }));
    }
  };
  const r = await worker(store, "b.7", ["ostree"]);
  assert.equal(r.exitCode, 1);
  assert.match(r.message!, /builds\.json: .*gave up after \d+ attempts/);
  assert.deepEqual(r.builds, [{ id: "b.7", arches: ["x86_64"] }]);
});

Deno.test("casMergeJSON: bounded attempts with growing jittered delays, then a typed error", async () => {
  const store = new MemStore();
  store.put(B, "k", "{}");
  const delays: number[] = [];
  const err = await casMergeJSON({
    store: {
      getJSONVersioned: (b, k) => store.getJSONVersioned(b, k),
      putJSONIf: () => Promise.resolve(false), // always loses the race
    },
    bucket: B,
    key: "k",
    merge: () => ({ x: 1 }),
    signal: new AbortController().signal,
    maxAttempts: 6,
    sleep: (ms) => {
      delays.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
  }).catch((e) => e);
  assert.ok(err instanceof ConcurrentUpdateError);
  assert.equal(err.key, "k");
  assert.equal(err.attempts, 6);
  assert.deepEqual(delays, [8, 15, 30, 60, 120, 240]);
});

Deno.test("casMergeJSON: creates with If-None-Match when absent, writes nothing when already merged", async () => {
  const store = new MemStore();
  const r1 = await casMergeJSON({
    store,
    bucket: B,
    key: "k",
    merge: (cur) => (cur === undefined ? { a: 1 } : undefined),
    signal: new AbortController().signal,
  });
  assert.deepEqual([r1.written, r1.attempts], [true, 1]);
  const r2 = await casMergeJSON({
    store,
    bucket: B,
    key: "k",
    merge: (cur) => (cur === undefined ? { a: 1 } : undefined),
    signal: new AbortController().signal,
  });
  assert.deepEqual([r2.written, store.puts.length], [false, 1]);
});

Deno.test("a new build's files are only created (If-None-Match); a received build's replaced", async () => {
  const store = new MemStore();
  await using seed = await tempDir();
  await fakeBuild(seed.path, "b.1", ["ostree"]);
  store.put(
    B,
    "b.1/x86_64/meta.json",
    await Deno.readFile(`${seed.path}/builds/b.1/x86_64/meta.json`),
  );
  assert.equal((await worker(store, "b.1", ["qemu"], true)).exitCode, 0);
  assert.ok(store.puts.includes("b.1/x86_64/t-b.1-qemu.img"));
  assert.deepEqual(store.creates, []);
  const r = await worker(store, "n.2", ["ostree"]);
  assert.equal(r.exitCode, 0, r.message);
  assert.deepEqual(store.creates, ["n.2/x86_64/t-n.2-ostree.img"]);
  // Someone already created that file: the worker does not overwrite it and fails loudly.
  store.put(B, "n.3/x86_64/t-n.3-ostree.img", "theirs");
  const r3 = await worker(store, "n.3", ["ostree"]);
  assert.equal(r3.exitCode, 1);
  assert.equal(store.text(B, "n.3/x86_64/t-n.3-ostree.img"), "theirs");
});
