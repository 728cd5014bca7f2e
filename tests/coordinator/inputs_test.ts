import assert from "node:assert/strict";
import {
  type JobLocation,
  resolveStageInputs,
  type StageNeeds,
  type StoreReader,
} from "../../lib/coordinator/inputs.ts";

/** An in-memory store: bucket/key → content. */
function memStore(objects: Record<string, string>): StoreReader {
  const get = (b: string, k: string) => objects[`${b}/${k}`];
  return {
    getJSON: (b, k) => {
      const v = get(b, k);
      return Promise.resolve(v === undefined ? undefined : JSON.parse(v));
    },
    stat: (b, k) => {
      const v = get(b, k);
      return Promise.resolve(v === undefined ? undefined : { size: v.length });
    },
    list: (b, p) =>
      Promise.resolve(
        Object.entries(objects)
          .filter(([k]) => k.startsWith(`${b}/${p}`))
          .map(([k, v]) => ({ key: k.slice(b.length + 1), size: v.length })),
      ),
  };
}

const needs = (o: Partial<StageNeeds> = {}): StageNeeds => ({
  requireArtifacts: [],
  requestArtifacts: [],
  requireCache: false,
  requestCache: false,
  requireCacheRepo: false,
  requestCacheRepo: false,
  ...o,
});
const loc: JobLocation = { bucket: "builder", keyPrefix: "", arch: "x86_64" };
const sig = { signal: new AbortController().signal };

const builds = (ids: string[]) =>
  JSON.stringify({
    "schema-version": "1.0.0",
    builds: ids.map((id) => ({ id, arches: ["x86_64"] })),
    timestamp: "2026-01-01T00:00:00Z",
  });
const meta = (id: string, images: Record<string, { path: string; size: number }>) =>
  JSON.stringify({
    buildid: id,
    images: Object.fromEntries(
      Object.entries(images).map(([k, v]) => [k, { ...v, sha256: "ab".repeat(32) }]),
    ),
  });

Deno.test("inputs: nothing built yet, a required artifact is missing", async () => {
  const r = await resolveStageInputs(memStore({}), loc, needs({ requireArtifacts: ["qemu"] }), sig);
  assert.equal(r.ready, false);
  assert.ok(!r.ready && /artifact "qemu"/.test(r.missing[0]));
});

Deno.test("inputs: no requirements, no builds → ready with nothing", async () => {
  const r = await resolveStageInputs(memStore({}), loc, needs({ requestArtifacts: ["x"] }), sig);
  assert.deepEqual(r, { ready: true, inputs: { files: [] } });
});

Deno.test("inputs: artifacts, meta files of that build only, builds.json, caches", async () => {
  const store = memStore({
    "builder/builds.json": builds(["1.10", "1.1"]),
    "builder/1.10/x86_64/meta.json": meta("1.10", { ostree: { path: "o.tar", size: 3 } }),
    "builder/1.10/x86_64/meta.qemu.json": JSON.stringify({
      images: { qemu: { path: "d.qcow2", sha256: "cd".repeat(32), size: 5 } },
    }),
    "builder/1.10/x86_64/commitmeta.json": "{}",
    "builder/1.10/x86_64/d.qcow2": "12345",
    "builder/1.10/x86_64/o.tar": "abc",
    "builder/1.10/x86_64/logs/kola.tar.xz": "x",
    "builder/1.10/aarch64/meta.json": meta("1.10", {}),
    "builder/1.1/x86_64/meta.json": meta("1.1", {}),
    "builder/1.100/x86_64/meta.json": meta("1.100", {}),
    "builder/cache/cache.tar.gz": "tgz",
  });
  const r = await resolveStageInputs(
    store,
    loc,
    needs({ requireArtifacts: ["qemu"], requestArtifacts: ["metal"], requireCache: true }),
    sig,
  );
  assert.ok(r.ready);
  const paths = r.inputs.files.map((f) => f.path).sort();
  assert.deepEqual(paths, [
    "builds/1.10/x86_64/commitmeta.json",
    "builds/1.10/x86_64/d.qcow2",
    "builds/1.10/x86_64/meta.json",
    "builds/1.10/x86_64/meta.qemu.json",
    "builds/builds.json",
    "cache/cache.tar.gz",
  ]);
  const q = r.inputs.files.find((f) => f.artifact)!;
  assert.equal(q.object, "1.10/x86_64/d.qcow2");
  assert.equal(q.artifact!.sha256, "cd".repeat(32));
  assert.equal(q.artifact!.size, 5);
  assert.equal(r.inputs.files.find((f) => f.compressed)!.object, "cache/cache.tar.gz");
  assert.equal(r.inputs.buildId, "1.10");
});

Deno.test("inputs: an artifact in meta.json whose object is absent or short is not ready", async () => {
  const store = memStore({
    "builder/p/builds.json": builds(["2"]),
    "builder/p/2/x86_64/meta.json": meta("2", { qemu: { path: "d.qcow2", size: 5 } }),
    "builder/p/2/x86_64/d.qcow2": "123",
  });
  const l = { ...loc, keyPrefix: "p" };
  const r = await resolveStageInputs(store, l, needs({ requireArtifacts: ["qemu"] }), sig);
  assert.ok(!r.ready && r.missing.length === 1 && r.missing[0].includes("p/2/x86_64/d.qcow2"));
  const r2 = await resolveStageInputs(store, l, needs({ requireCacheRepo: true }), sig);
  assert.ok(
    !r2.ready && /cache "repo.tar.gz" \(builder\/p\/cache\/repo.tar.gz\)/.test(r2.missing[0]),
  );
});

Deno.test("inputs: copy-build must exist and its metadata is sent", async () => {
  const store = memStore({
    "builder/builds.json": builds(["3", "2"]),
    "builder/3/x86_64/meta.json": meta("3", {}),
    "builder/2/x86_64/meta.json": meta("2", {}),
  });
  const r = await resolveStageInputs(store, { ...loc, copyBuild: "2" }, needs(), sig);
  assert.ok(r.ready);
  assert.ok(r.inputs.files.some((f) => f.path === "builds/2/x86_64/meta.json"));
  const r2 = await resolveStageInputs(store, { ...loc, copyBuild: "9" }, needs(), sig);
  assert.ok(!r2.ready && r2.missing[0] === 'copy-build "9"');
});
