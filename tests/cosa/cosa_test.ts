import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  addBuild,
  artifactOf,
  artifactsOf,
  type BuildsJSON,
  CosaFormatError,
  type CosaMeta,
  isArtifactFile,
  isKnownBuildMeta,
  isMetaJSON,
  latestBuild,
  mergeBuilds,
  mergeMetaFragments,
  normalizeArch,
  parseMeta,
  readBuildMeta,
  readBuilds,
  readLatestBuild,
  validateMeta,
  writeBuilds,
} from "../../lib/cosa/mod.ts";
import { tempDir } from "../_helpers/mod.ts";

/** Copies of /work/shared/fixtures/cosa (real cosa build metadata). */
const FIX = new URL("./fixtures", import.meta.url).pathname;
const fixture = async (n: string): Promise<CosaMeta> =>
  parseMeta(await readFile(join(FIX, n), "utf8"), n);

const builds = (ids: [string, string[]][], ts = "2020-10-30T00:00:00Z"): BuildsJSON => ({
  "schema-version": "1.0.0",
  builds: ids.map(([id, arches]) => ({ id, arches })),
  timestamp: ts,
});

Deno.test("TestBuildsMeta: latest build for x86_64 from builds.json", async () => {
  await using d = await tempDir();
  await writeFile(
    join(d.path, "builds.json"),
    JSON.stringify(builds([
      ["32.20201030.dev.1", ["aarch64"]],
      ["32.20201030.dev.0", ["x86_64", "aarch64"]],
      ["32.20201029.dev.3", ["x86_64"]],
    ])),
  );
  const b = await readBuilds(d.path);
  assert.equal(latestBuild(b, "x86_64")?.id, "32.20201030.dev.0");
  assert.equal(latestBuild(b, "amd64")?.id, "32.20201030.dev.0");
  assert.equal(latestBuild(b, "arm64")?.id, "32.20201030.dev.1");
  assert.equal(latestBuild(b, "s390x"), undefined);
  assert.equal(await readBuilds(join(d.path, "nope")), undefined);
});

Deno.test("readBuilds rejects a malformed builds.json with the file name", async () => {
  await using d = await tempDir();
  await writeFile(join(d.path, "builds.json"), `{"builds": [{"arches": ["x86_64"]}]}`);
  await assert.rejects(readBuilds(d.path), (e) => {
    assert.ok(e instanceof CosaFormatError);
    assert.match(e.message, /builds\.json: builds\[0\]\.id/);
    return true;
  });
  await writeFile(join(d.path, "builds.json"), `{not json`);
  await assert.rejects(readBuilds(d.path), CosaFormatError);
});

Deno.test("normalizeArch maps Go/Node names to cosa names", () => {
  assert.equal(normalizeArch("amd64"), "x86_64");
  assert.equal(normalizeArch("x64"), "x86_64");
  assert.equal(normalizeArch("arm64"), "aarch64");
  assert.equal(normalizeArch("s390x"), "s390x");
  assert.equal(normalizeArch("x86_64"), "x86_64");
});

Deno.test("mergeBuilds: union of parallel workers, newest first, arches united", () => {
  const base = builds([["b.1", ["x86_64"]], ["b.0", ["x86_64"]]], "2020-01-01T00:00:00Z");
  const w1 = builds(
    [["b.2", ["x86_64"]], ["b.1", ["x86_64"]], ["b.0", ["x86_64"]]],
    "2020-01-02T00:00:00Z",
  );
  const w2 = builds([["b.1", ["x86_64", "aarch64"]], ["b.0", ["x86_64"]]], "2020-01-03T00:00:00Z");
  const m = mergeBuilds(w1, w2);
  assert.deepEqual(m.builds.map((b) => b.id), ["b.2", "b.1", "b.0"]);
  assert.deepEqual(m.builds[1].arches, ["x86_64", "aarch64"]);
  assert.equal(m.timestamp, "2020-01-03T00:00:00Z");
  // Order-independent for the same inputs
  assert.deepEqual(mergeBuilds(w2, w1).builds.map((b) => b.id), ["b.2", "b.1", "b.0"]);
  // Both sides added a different new build: both kept, larger id first
  const a = builds([["b.10", ["x86_64"]], ["b.1", ["x86_64"]]]);
  const c = builds([["b.9", ["x86_64"]], ["b.1", ["x86_64"]]]);
  assert.deepEqual(mergeBuilds(a, c).builds.map((b) => b.id), ["b.10", "b.9", "b.1"]);
  assert.deepEqual(mergeBuilds(c, a).builds.map((b) => b.id), ["b.10", "b.9", "b.1"]);
  // Missing sides
  assert.deepEqual(mergeBuilds(undefined, base).builds, base.builds);
  assert.deepEqual(mergeBuilds(base, undefined).builds, base.builds);
  assert.deepEqual(mergeBuilds(undefined, undefined).builds, []);
  // Inputs untouched
  assert.deepEqual(w2.builds[0].arches, ["x86_64", "aarch64"]);
  assert.deepEqual(w1.builds[1].arches, ["x86_64"]);
});

Deno.test("addBuild puts the new build first; writeBuilds round-trips", async () => {
  await using d = await tempDir();
  const b = addBuild(addBuild(undefined, "x.0", "amd64"), "x.1", "x86_64");
  assert.deepEqual(b.builds, [{ id: "x.1", arches: ["x86_64"] }, {
    id: "x.0",
    arches: ["x86_64"],
  }]);
  await writeBuilds(d.path, b);
  assert.deepEqual((await readBuilds(d.path))?.builds, b.builds);
});

Deno.test("TestMetaRegEx: isMetaJSON", () => {
  assert.equal(isMetaJSON("meta.json"), true);
  assert.equal(isMetaJSON("meta.test.json"), true);
  assert.equal(isMetaJSON("/a/b/meta.aws.json"), true);
  assert.equal(isMetaJSON("commitmmeta.json"), false);
  assert.equal(isMetaJSON("meta.json.bk"), false);
  assert.equal(isMetaJSON("metafoo.json"), false);
});

Deno.test("isKnownBuildMeta: the §0.8 list and nothing else", () => {
  for (
    const n of [
      "meta.json",
      "meta.qemu.json",
      "builds.json",
      "commitmeta.json",
      "ostree-commit-object",
      "coreos-assembler-config-git.json",
      "manifest-lock.generated.x86_64.json",
    ]
  ) assert.equal(isKnownBuildMeta(n), true, n);
  for (const n of ["foo.qcow2", "meta.json.bk", "commitmeta.json.x", "manifest.json", "logs"]) {
    assert.equal(isKnownBuildMeta(n), false, n);
  }
});

Deno.test("TestArtifact: artifactsOf / artifactOf / isArtifactFile on the fcos fixture", async () => {
  const m = await fixture("meta-fcos.json");
  const arts = artifactsOf(m);
  assert.ok(arts.length >= 10);
  const aws = artifactOf(m, "aws");
  assert.equal(aws?.path, "fedora-coreos-31.20200310.20.0-aws.x86_64.vmdk.xz");
  assert.equal(aws?.size, 702342320);
  assert.equal(aws?.sha256, "7c1d7962628a43e1e0d985ac2f94eb10845d4eae922e9fc47b77c2b4c05fbe4a");
  assert.equal(artifactOf(m, "darkCloud"), undefined);
  assert.equal(artifactOf(m, "live-iso")?.size, undefined);
  assert.equal(isArtifactFile(m, "fedora-coreos-31.20200310.20.0-aws.x86_64.vmdk.xz"), true);
  assert.equal(isArtifactFile(m, "meta.json"), false);
  // empty path means "no artifact"
  assert.equal(
    artifactOf({ buildid: "x", images: { q: { path: "", sha256: "a" } } }, "q"),
    undefined,
  );
  assert.deepEqual(artifactsOf(undefined), []);
});

Deno.test("TestSchema: both fixtures validate against cosa's schema", async () => {
  for (const f of ["meta-fcos.json", "meta-rhcos.json"]) {
    const v = validateMeta(await fixture(f));
    assert.deepEqual(v.errors, [], f);
    assert.equal(v.valid, true);
  }
});

Deno.test("validateMeta: unknown fields are reported but never invalidate (§12.1.11)", async () => {
  const m = await fixture("meta-fcos.json");
  m["coreos-assembler.some-future-field"] = { x: 1 };
  const v = validateMeta(m);
  assert.equal(v.valid, true);
  assert.deepEqual(v.unknownFields, ["coreos-assembler.some-future-field"]);
  const bad = structuredClone(m) as Record<string, unknown>;
  delete bad.buildid;
  (bad.images as Record<string, Record<string, unknown>>).qemu.sha256 = 5;
  const vb = validateMeta(bad);
  assert.equal(vb.valid, false);
  assert.ok(vb.errors.some((e) => e.message.includes("buildid")), JSON.stringify(vb.errors));
  assert.ok(vb.errors.some((e) => e.path === "/images/qemu/sha256"), JSON.stringify(vb.errors));
});

Deno.test("TestMergeMeta: delayed merge reads meta.<x>.json fragments of that build", async () => {
  await using d = await tempDir();
  const m = await fixture("meta-fcos.json");
  const amis = m.amis;
  delete m.amis;
  m["coreos-assembler.delayed-meta-merge"] = true;
  m["coreos-assembler.meta-stamp"] = 1000;
  const dir = join(d.path, m.buildid, "x86_64");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "meta.json"), JSON.stringify(m));
  await writeFile(
    join(dir, "meta.test.json"),
    JSON.stringify({ "coreos-assembler.meta-stamp": 2000, amis }),
  );
  // A fragment of another build must not leak in
  const other = join(d.path, "other", "x86_64");
  await mkdir(other, { recursive: true });
  await writeFile(join(other, "meta.evil.json"), JSON.stringify({ name: "evil" }));
  await writeFile(
    join(d.path, "builds.json"),
    JSON.stringify(builds([[m.buildid, ["x86_64"]], ["other", ["x86_64"]]])),
  );
  const b = await readLatestBuild(d.path, "amd64");
  assert.ok(b);
  assert.equal(b.id, m.buildid);
  assert.deepEqual(b.fragments, ["meta.test.json"]);
  assert.deepEqual(b.meta.amis, amis);
  assert.equal(b.meta.name, "fedora-coreos");
  assert.equal(artifactsOf(b.meta).length, artifactsOf(m).length);
  assert.equal(b.meta["coreos-assembler.meta-stamp"], 2000);
  // Without the flag, fragments are ignored
  m["coreos-assembler.delayed-meta-merge"] = false;
  await writeFile(join(dir, "meta.json"), JSON.stringify(m));
  const plain = await readBuildMeta(d.path, m.buildid, "x86_64");
  assert.equal(plain.meta.amis, undefined);
  assert.deepEqual(plain.fragments, []);
});

Deno.test("mergeMetaFragments: newest stamp wins, images united, inputs untouched", () => {
  const base: CosaMeta = {
    buildid: "b",
    "coreos-assembler.meta-stamp": 20,
    summary: "base",
    images: { ostree: { path: "o", sha256: "1" } },
  };
  const older = {
    "coreos-assembler.meta-stamp": 10,
    summary: "old",
    images: { qemu: { path: "q", sha256: "2" } },
  };
  const newer = {
    "coreos-assembler.meta-stamp": 30,
    summary: "new",
    images: { metal: { path: "m", sha256: "3" } },
  };
  const out = mergeMetaFragments(base, [newer, older]);
  assert.equal(out.summary, "new");
  assert.deepEqual(Object.keys(out.images!).sort(), ["metal", "ostree", "qemu"]);
  assert.equal(out["coreos-assembler.meta-stamp"], 30);
  const out2 = mergeMetaFragments(base, [older]);
  assert.equal(out2.summary, "base");
  assert.deepEqual(Object.keys(base.images!), ["ostree"]);
});

Deno.test("readLatestBuild: no builds, no arch, missing meta → undefined", async () => {
  await using d = await tempDir();
  assert.equal(await readLatestBuild(d.path, "x86_64"), undefined);
  await writeFile(join(d.path, "builds.json"), JSON.stringify(builds([["a", ["x86_64"]]])));
  assert.equal(await readLatestBuild(d.path, "aarch64"), undefined);
  assert.equal(await readLatestBuild(d.path, "x86_64"), undefined);
});
