/**
 * The layers of ARCHITECTURE.md and the effects rule, checked: every file under lib/ passes
 * the project's lint rules (tools/lint_plugin.ts), the rules catch what they are for, and the
 * table in ARCHITECTURE.md is the one the rules use.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import plugin from "../tools/lint_plugin.ts";
import { LAYERS } from "../tools/layers.ts";
import { ROOT } from "./_helpers/mod.ts";

async function libFiles(dir = join(ROOT, "lib")): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...await libFiles(p));
    else if (d.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

const lint = (file: string, source: string) =>
  Deno.lint.runPlugin(plugin, file, source).map((d) => `${d.id}: ${d.message}`);

Deno.test("architecture: no file under lib/ imports up or sideways, or reaches for env/args/exit/console", async () => {
  const files = await libFiles();
  assert.ok(files.length > 50, `only ${files.length} files found under lib/`);
  const problems: string[] = [];
  for (const f of files) {
    for (const p of lint(f, await readFile(f, "utf8"))) {
      problems.push(`${f.slice(ROOT.length + 1)}: ${p}`);
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("architecture: the rules catch an upward, a sideways and an unknown-folder import", () => {
  const at = (rel: string) => `${ROOT}/${rel}`;
  assert.deepEqual(
    lint(at("lib/coordinator/x.ts"), `import { runWorker } from "../worker/mod.ts";`),
    [
      "gangplank/layers: lib/coordinator (layer 6) must not import lib/worker (layer 6): " +
      "imports go only to lower layers (ARCHITECTURE.md)",
    ],
  );
  assert.equal(lint(at("lib/jobspec/x.ts"), `export * from "../plan/mod.ts";`).length, 1);
  assert.equal(lint(at("lib/toolkit/x.ts"), `const m = await import("../cli/mod.ts");`).length, 1);
  assert.equal(
    lint(at("lib/relay/x.ts"), `import type { T } from "../../tests/_helpers/mod.ts";`).length,
    1,
  );
  assert.match(
    lint(at("lib/newthing/x.ts"), `import "../errors/mod.ts";`)[0],
    /lib\/newthing has no layer/,
  );
  // Files in subfolders belong to their top folder.
  assert.equal(lint(at("lib/relay/client/x.ts"), `import "../../coordinator/mod.ts";`).length, 1);
  assert.deepEqual(lint(at("lib/relay/client/x.ts"), `import "../server.ts";`), []);
  assert.equal(lint(at("lib/relay/client/x.ts"), `Deno.env.get("A");`).length, 1);
  // Allowed: down a layer, within the folder, packages.
  assert.deepEqual(
    lint(
      at("lib/worker/x.ts"),
      `import { a } from "../workspec/mod.ts"; import { b } from "./run.ts"; import "node:fs";`,
    ),
    [],
  );
  // Outside lib/ the layers do not apply.
  assert.deepEqual(lint(at("scripts/x.ts"), `import "../lib/cli/mod.ts";`), []);
});

Deno.test("architecture: Deno.env, Deno.args, Deno.exit, console and process globals are refused in lib/ only", () => {
  const bad = [
    `Deno.env.get("HOME");`,
    `const a = Deno.args;`,
    `Deno.exit(1);`,
    `console.log("x");`,
    `console.error("x");`,
    `process.exit(1);`,
    `const e = process.env.HOME;`,
    `const v = process.argv;`,
  ];
  for (const src of bad) {
    assert.equal(lint(`${ROOT}/lib/worker/x.ts`, src).length, 1, src);
    assert.deepEqual(lint(`${ROOT}/scripts/x.ts`, src), [], src);
  }
  // Code inside a string (a script run elsewhere) and comments are not calls.
  assert.deepEqual(
    lint(`${ROOT}/lib/executors/x.ts`, "// console.log\nconst s = `console.log(1); Deno.exit(3)`;"),
    [],
  );
});

Deno.test("architecture: ARCHITECTURE.md shows the layer table the rules use", async () => {
  const md = await readFile(join(ROOT, "ARCHITECTURE.md"), "utf8");
  const rows = [...md.matchAll(/^\| (\d+) +\| ([^|]+)\| ([^|]+)\|$/gm)].map((m) => ({
    layer: Number(m[1]),
    folders: m[2].split(",").map((s) => s.trim()),
    role: m[3].trim(),
  }));
  assert.deepEqual(
    rows,
    LAYERS.map((l, i) => ({ layer: i, folders: [...l.folders], role: l.role })),
  );
  const folders = (await readdir(join(ROOT, "lib"), { withFileTypes: true }))
    .filter((d) => d.isDirectory()).map((d) => d.name).sort();
  assert.deepEqual([...LAYERS.flatMap((l) => l.folders)].sort(), folders);
});
