/**
 * A stage's credential against a real relay: what stageGrant() lets a stage do, and every
 * write a hostile stage could try with it outside its outputs, refused.
 */
import assert from "node:assert/strict";
import { stageGrant } from "../../lib/coordinator/grant.ts";
import { ArtifactStore, startRelay } from "../../lib/relay/mod.ts";
import { prefixMatches } from "../../lib/relay/server_access.ts";
import { tempDir } from "../_helpers/mod.ts";

const B = "builder";

async function setup(keyPrefix: string) {
  const tmp = await tempDir("gp-grant-");
  const root = `${tmp.path}/w`;
  const kp = keyPrefix ? `${keyPrefix}/` : "";
  const builds = `${root}/builds/${kp}`;
  await Deno.mkdir(`${builds}old.1/x86_64`, { recursive: true });
  await Deno.mkdir(`${builds}cur.2/x86_64`, { recursive: true });
  await Deno.writeTextFile(`${builds}old.1/x86_64/meta.json`, '{"buildid":"old.1"}');
  await Deno.writeTextFile(`${builds}cur.2/x86_64/meta.json`, '{"buildid":"cur.2"}');
  await Deno.writeTextFile(`${builds}builds.json`, '{"builds":[]}');
  const relay = await startRelay({ root, bucketDirs: { builder: "builds" } });
  const grant = stageGrant({
    bucket: B,
    keyPrefix,
    arch: "x86_64",
    inputs: [
      { bucket: B, object: `${kp}cur.2/x86_64/meta.json`, path: "builds/cur.2/x86_64/meta.json" },
      { bucket: B, object: `${kp}builds.json`, path: "builds/builds.json" },
    ],
    returns: { cache: true, cacheRepo: false, files: ["out/report.txt", "/srv/dir"] },
  });
  const cred = relay.grant(grant);
  const store = ArtifactStore.fromConfig({
    ...relay.config(),
    accesskey: cred.credentials.accessKey,
    secretkey: cred.credentials.secretKey,
  }, { retry: { attempts: 1 } });
  return {
    root,
    builds,
    kp,
    relay,
    cred,
    store,
    async [Symbol.asyncDispose]() {
      await store.close();
      await relay.close();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

/** Refused by the relay: outside the grant, revoked, or (create-only) already there. */
const denied = (e: unknown) => {
  const c = (e as { code?: string }).code;
  return c === "AccessDenied" || c === "InvalidAccessKeyId" || c === "PreconditionFailed";
};

async function put(s: ArtifactStore, key: string, opts: { ifNoneMatch?: boolean } = {}) {
  const f = await Deno.makeTempFile();
  await Deno.writeTextFile(f, "x");
  try {
    await s.putFile(B, key, f, opts);
  } finally {
    await Deno.remove(f);
  }
}

for (const keyPrefix of ["", "pre/fix"]) {
  Deno.test(`stage grant (key_prefix "${keyPrefix}"): its outputs are writable`, async () => {
    await using e = await setup(keyPrefix);
    const { kp, store } = e;
    // The received build: files replaced and added.
    await store.putJSON(B, `${kp}cur.2/x86_64/meta.json`, { buildid: "cur.2", more: 1 });
    await put(e.store, `${kp}cur.2/x86_64/new.img`);
    // A new build: created only.
    await put(e.store, `${kp}new.3/x86_64/new.img`, { ifNoneMatch: true });
    assert.equal(
      await store.putJSONIf(B, `${kp}new.3/x86_64/meta.json`, { buildid: "new.3" }, {
        absent: true,
      }),
      true,
    );
    // builds.json through compare-and-swap; caches and return_files it declares.
    const cur = await store.getJSONVersioned(B, `${kp}builds.json`);
    assert.ok(await store.putJSONIf(B, `${kp}builds.json`, { builds: [] }, { etag: cur!.etag }));
    await put(e.store, `${kp}cache/cache.tar.gz`);
    await put(e.store, `${kp}cache/out/report.txt`);
    await put(e.store, `${kp}cache/dir/a/b`);
    assert.equal(await Deno.readTextFile(`${e.builds}new.3/x86_64/new.img`), "x");
    assert.equal(await Deno.readTextFile(`${e.builds}cache/dir/a/b`), "x");
  });

  Deno.test(`stage grant (key_prefix "${keyPrefix}"): every write outside its outputs is refused`, async () => {
    await using e = await setup(keyPrefix);
    const { kp, store } = e;
    const attempts: [string, () => Promise<unknown>][] = [
      ["file at the bucket root", () => put(store, `${kp}pwned-by-stage.txt`)],
      ["file above the key prefix", () => put(store, "pwned-by-stage.txt")],
      ["another build's meta.json", () => put(store, `${kp}old.1/x86_64/meta.json`)],
      [
        "overwrite another build's meta.json even with If-None-Match",
        () => put(store, `${kp}old.1/x86_64/meta.json`, { ifNoneMatch: true }),
      ],
      ["a new build's file without If-None-Match", () => put(store, `${kp}n.4/x86_64/f`)],
      ["another arch", () => put(store, `${kp}cur.2/aarch64/f`, { ifNoneMatch: true })],
      ["builds.json unconditionally", () => store.putJSON(B, `${kp}builds.json`, {})],
      ["a cache it does not return", () => put(store, `${kp}cache/repo.tar.gz`)],
      ["next to a return file", () => put(store, `${kp}cache/out/report.txt.evil`)],
      ["another bucket", () => store.putJSON("logs", "x", {})],
      ["a new bucket", () => store.ensureBucket("newbucket")],
      ["delete another build's file", () => store.remove(B, `${kp}old.1/x86_64/meta.json`)],
      ["delete its own new build's file", async () => {
        await put(store, `${kp}n.5/x86_64/f`, { ifNoneMatch: true });
        await store.remove(B, `${kp}n.5/x86_64/f`);
      }],
    ];
    for (const [what, attempt] of attempts) {
      await assert.rejects(attempt(), denied, what);
    }
    assert.equal(
      await Deno.readTextFile(`${e.builds}old.1/x86_64/meta.json`),
      '{"buildid":"old.1"}',
    );
    for (const p of [`${e.builds}pwned-by-stage.txt`, `${e.root}/builds/pwned-by-stage.txt`]) {
      await assert.rejects(Deno.stat(p), Deno.errors.NotFound);
    }
    await assert.rejects(Deno.stat(`${e.root}/newbucket`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${e.root}/logs`), Deno.errors.NotFound);
  });
}

Deno.test("stage grant: after the stage ended (revoked) nothing is accepted, not even reads", async () => {
  await using e = await setup("");
  await put(e.store, "cur.2/x86_64/before.img");
  e.cred.revoke();
  await assert.rejects(put(e.store, "cur.2/x86_64/after.img"), denied);
  await assert.rejects(e.store.getJSON(B, "builds.json"), denied);
  await assert.rejects(Deno.stat(`${e.builds}cur.2/x86_64/after.img`), Deno.errors.NotFound);
});

Deno.test("stageGrant: reads of the job below the key prefix, and its inputs elsewhere", () => {
  const g = stageGrant({
    bucket: B,
    keyPrefix: "p",
    arch: "x86_64",
    inputs: [{ bucket: "other", object: "x/y", path: "y" }],
    returns: { cache: false, cacheRepo: false, files: ["../escape", ""] },
  });
  assert.deepEqual(g.read, [{ bucket: B, prefix: "p/" }, { bucket: "other", prefix: "x/y" }]);
  assert.ok(!g.write.some((w) => w.prefix.includes("escape")));
  assert.ok(!g.write.some((w) => w.prefix === "p/cache/"));
});

Deno.test("prefixMatches: a `*` segment matches exactly one segment; a `*` inside one is literal", () => {
  assert.ok(prefixMatches("p/*/x86_64/", "p/41.1/x86_64/meta.json"));
  assert.ok(!prefixMatches("p/*/x86_64/", "p/a/b/x86_64/meta.json"));
  assert.ok(!prefixMatches("p/*/x86_64/", "p/x86_64/meta.json"));
  assert.ok(!prefixMatches("p/*/x86_64/", "q/1/x86_64/meta.json"));
  assert.ok(prefixMatches("a*b/", "a*b/c"));
  assert.ok(!prefixMatches("a*b/", "axxb/c"));
  assert.ok(!prefixMatches("a.b/*/", "aXb/c/d"));
});
