/**
 * The worker bundle is rebuilt only when its sources change (`work.js.sha256`), so podman runs
 * and tests that need it pay for `deno bundle` once.
 */
import assert from "node:assert/strict";
import { bundle, sourceHash } from "../../scripts/bundle.ts";
import { ROOT, tempDir } from "../_helpers/mod.ts";

Deno.test("bundle: unchanged sources reuse work.js; a stale or missing hash rebuilds it", async () => {
  await using out = await tempDir("gp-bundle-cache-");
  const [work] = await bundle({ outDir: out.path, entries: ["work"] });
  const hash = await sourceHash(ROOT);
  assert.equal((await Deno.readTextFile(`${work}.sha256`)).trim(), hash);
  const first = await Deno.stat(work);

  // Same sources: nothing is written.
  assert.deepEqual(await bundle({ outDir: out.path, entries: ["work"] }), [work]);
  assert.equal((await Deno.stat(work)).mtime?.getTime(), first.mtime?.getTime());
  assert.equal((await Deno.stat(work)).ino, first.ino);

  // A hash from other sources (an older checkout): rebuilt, new hash recorded.
  await Deno.writeTextFile(`${work}.sha256`, "0".repeat(64) + "\n");
  await bundle({ outDir: out.path, entries: ["work"] });
  assert.notEqual((await Deno.stat(work)).ino, first.ino);
  assert.equal((await Deno.readTextFile(`${work}.sha256`)).trim(), hash);

  // A bundle without its hash (written by hand, or an interrupted run) is not trusted.
  await Deno.remove(`${work}.sha256`);
  await Deno.writeTextFile(work, "broken");
  await bundle({ outDir: out.path, entries: ["work"] });
  assert.ok((await Deno.readTextFile(work)).length > 1000);
});

Deno.test("sourceHash: changes when a source file changes", async () => {
  await using root = await tempDir("gp-hash-");
  await Deno.mkdir(`${root.path}/lib/a`, { recursive: true });
  await Deno.mkdir(`${root.path}/scripts`);
  await Deno.writeTextFile(`${root.path}/lib/a/x.ts`, "export const x = 1;\n");
  await Deno.writeTextFile(`${root.path}/scripts/work.ts`, "import '../lib/a/x.ts';\n");
  await Deno.writeTextFile(`${root.path}/deno.json`, "{}\n");
  const h1 = await sourceHash(root.path);
  assert.equal(await sourceHash(root.path), h1);
  await Deno.writeTextFile(`${root.path}/lib/a/x.ts`, "export const x = 2;\n");
  const h2 = await sourceHash(root.path);
  assert.notEqual(h2, h1);
  await Deno.writeTextFile(`${root.path}/deno.json`, '{"x":1}\n');
  assert.notEqual(await sourceHash(root.path), h2);
});
