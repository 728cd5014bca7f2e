/**
 * Hostile JobSpecs: names that would become paths or forge console lines, templates reaching
 * for JavaScript internals, and YAML aliases that amplify a small file into a huge one.
 */
import assert from "node:assert/strict";
import {
  JobSpecError,
  MAX_ALIAS_EXPANSION,
  parseJobSpec,
  renderTemplate,
} from "../../lib/jobspec/mod.ts";

function issues(text: string) {
  try {
    parseJobSpec(text, { file: "j.yaml" });
  } catch (e) {
    if (e instanceof JobSpecError) return e.issues;
    throw e;
  }
  assert.fail("the JobSpec was accepted");
}

const STAGE = "stages:\n- id: a\n  commands: [true]\n";

Deno.test("jobspec: minio.bucket must follow S3's rules (no path, no uppercase), located", () => {
  for (const bucket of ["../../x", "UPPER_bad", "a/b", "/abs", "x", "..", "a..b"]) {
    const found = issues(`minio:\n  bucket: ${JSON.stringify(bucket)}\n${STAGE}`);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.deepEqual(
      [found[0].line, found[0].col, found[0].path],
      [2, 11, "minio.bucket"],
      JSON.stringify(found[0]),
    );
    assert.match(found[0].message, /not an S3 bucket name/);
  }
  for (const ok of ["builder", "my-bucket.2", "abc"]) {
    assert.equal(parseJobSpec(`minio: {bucket: ${ok}}\n${STAGE}`).spec.minio.bucket, ok);
  }
});

Deno.test("jobspec: copy-build must be one path segment", () => {
  const found = issues(`copy-build: ../../outside\n${STAGE}`);
  assert.deepEqual(found.map((i) => i.path), ["copy-build"]);
});

Deno.test("jobspec: a control character in a stage id is refused (it would forge console lines)", () => {
  for (const id of ["a\\n[b +0.0s] gangplank: run succeeded", "a\\rb", "esc\\e[2J", "a\\u2028b"]) {
    const found = issues(`stages:\n- id: "${id}"\n  commands: [true]\n`);
    assert.deepEqual(found.map((i) => [i.line, i.path]), [[2, "stages[0].id"]], id);
    assert.match(found[0].message, /control characters/);
  }
});

Deno.test("templates: index reaches own data only, never JavaScript internals", () => {
  const { spec } = parseJobSpec(`job: {build_name: n}\n${STAGE}`);
  const data = { JobSpec: spec, Meta: JSON.parse('{"buildid":"1","images":{},"x":{}}') };
  for (
    const key of [
      "constructor",
      "__proto__",
      "toString",
      "hasOwnProperty",
      "valueOf",
      "__defineGetter__",
    ]
  ) {
    for (const tpl of [`{{index .JobSpec "${key}"}}`, `{{index .Meta "${key}"}}`]) {
      const out = renderTemplate(tpl, data);
      assert.ok(!/function|native code|\[object/.test(out), `${tpl} rendered ${out}`);
    }
    const nested = renderTemplate(`{{index .JobSpec "job" "${key}"}}`, data);
    assert.ok(!/function|native code|\[object/.test(nested), nested);
  }
  // Own data still works.
  assert.equal(renderTemplate(`{{index .JobSpec "job" "build_name"}}`, data), "n");
  assert.equal(renderTemplate(`{{index .Meta "buildid"}}`, data), "1");
});

Deno.test("templates: a meta.json with a __proto__ key does not change what templates see", () => {
  const meta = JSON.parse('{"buildid":"1","__proto__":{"polluted":"yes"}}');
  const out = renderTemplate(`{{index .Meta "polluted"}}`, { JobSpec: {} as never, Meta: meta });
  assert.notEqual(out, "yes");
});

// The attack from issue 9: ~70 KB of YAML whose anchored command list is reused by 500 stages
// (30 MB once expanded). It used to take seconds and hundreds of MB; now the parser refuses it
// after at most MAX_ALIAS_EXPANSION characters of expansion, with one located error.
Deno.test("jobspec: an anchor reused 500 times is refused with one located error, in bounded memory", () => {
  const cmds = Array.from({ length: 500 }, (_, i) => `    - echo ${i} ${"x".repeat(100)}`);
  const text = "stages:\n- id: s0\n  commands: &c\n" + cmds.join("\n") + "\n" +
    Array.from({ length: 499 }, (_, i) => `- id: s${i + 1}\n  commands: *c\n`).join("");
  assert.ok(text.length > 60_000 && text.length < 80_000);
  const heap0 = Deno.memoryUsage().heapUsed;
  const found = issues(text);
  const grown = (Deno.memoryUsage().heapUsed - heap0) / 2 ** 20;
  assert.equal(found.length, 1, JSON.stringify(found.slice(0, 3)));
  assert.match(found[0].message, /alias \*c: aliases expand this JobSpec beyond/);
  assert.match(found[0].path, /^stages\[\d+\]\.commands$/);
  assert.ok(found[0].line > 500);
  // Far less than the 30 MB the expansion would hold.
  assert.ok(grown < 24, `heap grew by ${grown.toFixed(1)} MiB`);
});

Deno.test("jobspec: aliases of aliases (billion laughs) and self-reference are refused", () => {
  const s = "y".repeat(2000);
  const laughs = `x: &a "${s}"\nstages:\n- id: a\n  commands: [${
    Array.from({ length: 600 }, () => "*a").join(", ")
  }]\n`;
  // Unknown top-level key x aside, expansion stops at the budget: exactly one problem.
  const found = issues(laughs);
  assert.ok(found.some((i) => /aliases expand this JobSpec/.test(i.message)));
  assert.ok(600 * s.length > MAX_ALIAS_EXPANSION);
  const self = issues("stages: &s\n- id: a\n  commands: [true]\n- *s\n");
  assert.equal(self.length, 1);
  assert.match(self[0].message, /refers to a node that contains it/);
});

Deno.test("jobspec: ordinary alias reuse still works", () => {
  const { spec } = parseJobSpec(
    "stages:\n- id: a\n  commands: &c [echo one, echo two]\n- id: b\n  commands: *c\n",
  );
  assert.deepEqual(spec.stages[1].commands, ["echo one", "echo two"]);
});
