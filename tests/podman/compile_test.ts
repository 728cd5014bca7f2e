/**
 * `deno task compile`: four binaries that run the demo from a folder outside the checkout, the
 * compiled submit starting its local workers with the compiled worker next to it. Needs the
 * runtime deno compile embeds: `DENORT_BIN`; without one (offline, as here) the test checks the
 * one-line failure instead.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { compile, COMPILE_ENTRIES } from "../../scripts/compile.ts";
import { ROOT, runCommand, tempDir } from "../_helpers/mod.ts";

const denort = Deno.env.get("DENORT_BIN");
if (denort && !existsSync(denort)) throw new Error(`DENORT_BIN ${denort} does not exist`);

Deno.test(
  "compile: four binaries that run the demo from a temp dir, or (no runtime to embed) one line naming DENORT_BIN and nothing written",
  async () => {
    await using out = await tempDir("gp-compile-");
    let files: string[];
    try {
      files = await compile({ outDir: out.path, env: denort ? { DENORT_BIN: denort } : {} });
    } catch (e) {
      // Offline without DENORT_BIN (this project's machines): deno cannot fetch the runtime it
      // embeds. The failure must say so in one line and leave no binary behind.
      assert.ok(!denort, `compile failed although DENORT_BIN is set: ${e}`);
      const msg = e instanceof Error ? e.message : String(e);
      assert.ok(!msg.includes("\n"), `one line: ${msg}`);
      assert.match(msg, /^compile: submit: .*set DENORT_BIN/);
      assert.deepEqual([...Deno.readDirSync(out.path)].map((d) => d.name), []);
      return;
    }
    assert.deepEqual(
      files.map((f) => f.slice(out.path.length + 1)).sort(),
      [...COMPILE_ENTRIES.map((e) => `gangplank-${e.replaceAll("_", "-")}`), "work.js"].sort(),
    );
    await Deno.copyFile(`${ROOT}/examples/demo.jobspec.yaml`, `${out.path}/demo.jobspec.yaml`);
    await Deno.mkdir(`${out.path}/fake-cosa`);
    for (const f of ["cosa", "cosa.ts", "oci.ts", "kola"]) {
      await Deno.copyFile(`${ROOT}/examples/fake-cosa/${f}`, `${out.path}/fake-cosa/${f}`);
      await Deno.chmod(`${out.path}/fake-cosa/${f}`, 0o755);
    }
    const denoDir = Deno.execPath().slice(0, Deno.execPath().lastIndexOf("/"));
    const r = await runCommand(`${out.path}/gangplank-submit`, [
      "-s",
      "demo.jobspec.yaml",
      "--worker-path",
      "fake-cosa",
      "-w",
      "w",
    ], {
      cwd: out.path,
      env: { HOME: out.path, PATH: `${denoDir}:/usr/bin:/bin` },
      timeoutMs: 180_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(existsSync(`${out.path}/w/builds/builds.json`));
    const v = await runCommand(`${out.path}/gangplank-relay`, ["--help"], { cwd: out.path });
    assert.equal(v.code, 0, v.stderr);
  },
);
