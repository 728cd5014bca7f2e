import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  artifactsOf,
  parseBuilds,
  readBuildMeta,
  readLatestBuild,
  UnsafeNameError,
} from "../../lib/cosa/mod.ts";
import { resolveStageInputs } from "../../lib/coordinator/inputs.ts";
import { pathSegmentProblem } from "../../lib/names/mod.ts";
import { tempDir } from "../_helpers/mod.ts";

const HOSTILE = [
  "../../x/evilbuild",
  "/etc",
  "..",
  ".",
  "",
  "a/b",
  "a\\b",
  "36.0\n[stage +0.0s] run succeeded",
  "esc\u001b[2J",
  "nul\u0000",
  "x".repeat(256),
];

Deno.test("names: one safe path segment, nothing else", () => {
  for (const ok of ["36.20220101.dev.0", "rhcos-44devel.81", "a+b~c:d@e", "é".repeat(127)]) {
    assert.equal(pathSegmentProblem(ok), undefined, ok);
  }
  for (const bad of HOSTILE) assert.notEqual(pathSegmentProblem(bad), undefined, bad);
});

Deno.test("builds.json: a hostile build id or arch is refused, naming the entry", () => {
  for (const bad of HOSTILE.filter((b) => b !== "")) {
    const doc = { builds: [{ id: "ok.1", arches: ["x86_64"] }, { id: bad, arches: ["x86_64"] }] };
    assert.throws(
      () => parseBuilds(doc, "b/builds.json"),
      (e) => e instanceof UnsafeNameError && e.field === "builds[1].id" && e.value === bad,
      JSON.stringify(bad),
    );
    assert.throws(() => parseBuilds({ builds: [bad] }), UnsafeNameError);
  }
  assert.throws(
    () => parseBuilds({ builds: [{ id: "ok", arches: ["../../x"] }] }),
    (e) => e instanceof UnsafeNameError && e.field === "builds[0].arches[0]",
  );
});

Deno.test("meta.json: an artifact path or name that is not a plain file name is refused", async () => {
  const meta = (path: string, name = "qemu") => ({
    buildid: "1",
    images: { [name]: { path, sha256: "ab".repeat(32) } },
  });
  assert.equal(artifactsOf(meta("x.qcow2"))[0].path, "x.qcow2");
  for (const p of ["../../../etc/passwd", "/etc/passwd", "..", "sub/../../x", "a\nb"]) {
    assert.throws(() => artifactsOf(meta(p)), UnsafeNameError, p);
  }
  assert.throws(() => artifactsOf(meta("x", "qemu\n[s +1s] forged")), UnsafeNameError);

  // On disk: readBuildMeta refuses before reading anything, and after merging fragments.
  await using tmp = await tempDir();
  const builds = join(tmp.path, "srv", "builds");
  const outside = join(tmp.path, "outside", "evil", "x86_64");
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, "meta.json"), JSON.stringify(meta("x")));
  await assert.rejects(readBuildMeta(builds, "../../outside/evil", "x86_64"), UnsafeNameError);
  await assert.rejects(readBuildMeta(builds, "ok", "../x"), UnsafeNameError);
  await mkdir(join(builds, "1", "x86_64"), { recursive: true });
  await writeFile(join(builds, "1", "x86_64", "meta.json"), JSON.stringify(meta("../x")));
  await assert.rejects(readBuildMeta(builds, "1", "x86_64"), UnsafeNameError);
  await writeFile(
    join(builds, "builds.json"),
    JSON.stringify({ builds: [{ id: "../../outside/evil", arches: ["x86_64"] }] }),
  );
  await assert.rejects(readLatestBuild(builds, "x86_64"), UnsafeNameError);
});

Deno.test("coordinator: a hostile build id or artifact path in the bucket stops input resolution", async () => {
  const objects: Record<string, string> = {
    "builder/builds.json": JSON.stringify({
      builds: [{ id: "../../../outside/evil", arches: ["x86_64"] }],
    }),
  };
  const store = {
    getJSON: (b: string, k: string) =>
      Promise.resolve(objects[`${b}/${k}`] && JSON.parse(objects[`${b}/${k}`])),
    stat: (b: string, k: string) =>
      Promise.resolve(objects[`${b}/${k}`] ? { size: objects[`${b}/${k}`].length } : undefined),
    list: (b: string, p: string) =>
      Promise.resolve(
        Object.keys(objects).filter((k) => k.startsWith(`${b}/${p}`))
          .map((k) => ({ key: k.slice(b.length + 1), size: objects[k].length })),
      ),
  };
  const loc = { bucket: "builder", keyPrefix: "", arch: "x86_64" };
  const needs = {
    requireArtifacts: ["qemu"],
    requestArtifacts: [],
    requireCache: false,
    requestCache: false,
    requireCacheRepo: false,
    requestCacheRepo: false,
  };
  const signal = new AbortController().signal;
  await assert.rejects(resolveStageInputs(store, loc, needs, { signal }), UnsafeNameError);
  objects["builder/builds.json"] = JSON.stringify({ builds: [{ id: "1", arches: ["x86_64"] }] });
  objects["builder/1/x86_64/meta.json"] = JSON.stringify({
    buildid: "1",
    images: { qemu: { path: "../../../../etc/passwd", sha256: "ab".repeat(32) } },
  });
  await assert.rejects(resolveStageInputs(store, loc, needs, { signal }), UnsafeNameError);
});
