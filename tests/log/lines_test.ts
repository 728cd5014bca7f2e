import assert from "node:assert/strict";
import { forEachLine, LINE_CONTINUES, LineSplitStream, LineSplitter } from "../../lib/log/lines.ts";
import { ROOT, runCommand, tempDir } from "../_helpers/mod.ts";

const enc = new TextEncoder();
const M = LINE_CONTINUES.length;

function split(chunks: (string | Uint8Array)[], maxLineLength?: number): string[] {
  const out: string[] = [];
  const s = new LineSplitter((l) => out.push(l), maxLineLength ? { maxLineLength } : {});
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

/** The original text of marked pieces (markers removed, pieces joined). */
function unsplit(lines: string[]): string[] {
  const out: string[] = [];
  let cur = "";
  for (const l of lines) {
    if (l.endsWith(LINE_CONTINUES)) cur += l.slice(0, -M);
    else {
      out.push(cur + l);
      cur = "";
    }
  }
  return out;
}

Deno.test("lines: partial, \\r\\n, final line without newline, empty lines kept", () => {
  assert.deepEqual(split(["ab", "c\r\nde", "f\n", "\n", "\nlast"]), [
    "abc",
    "def",
    "",
    "",
    "last",
  ]);
  assert.deepEqual(split([]), []);
  assert.deepEqual(split(["x\n"]), ["x"]);
});

Deno.test("lines: overlong lines are split and marked, never dropped, at most max long", () => {
  const max = 2 * M + 10;
  const long = "0123456789".repeat(20);
  const got = split([`a\n${long}\nb`], max);
  assert.equal(got[0], "a");
  assert.equal(got.at(-1), "b");
  const pieces = got.slice(1, -1);
  assert.ok(pieces.length > 1);
  for (const p of pieces) assert.ok(p.length <= max, `${p.length} > ${max}`);
  for (const p of pieces.slice(0, -1)) assert.ok(p.endsWith(LINE_CONTINUES));
  assert.ok(!pieces.at(-1)!.endsWith(LINE_CONTINUES));
  assert.deepEqual(unsplit(got), ["a", long, "b"]);
  // Splitting the split output again with the same limit changes nothing.
  assert.deepEqual(split([got.join("\n") + "\n"], max), got);
});

Deno.test("lines: the result does not depend on where the chunks are cut (bytes, UTF-8)", () => {
  const max = 2 * M + 7;
  const text = `héllo wörld ${"€".repeat(40)}\n😀😀😀${"x".repeat(33)}😀\n\r\nend😀`;
  const bytes = enc.encode(text);
  const whole = split([bytes], max);
  for (const l of whole) assert.ok(l.length <= max);
  // No lone surrogate anywhere: pieces never cut a pair in two.
  for (const l of whole) assert.ok(l.isWellFormed(), JSON.stringify(l));
  assert.deepEqual(unsplit(whole), text.split("\n").map((l) => l.replace(/\r$/, "")));
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(split([bytes.slice(0, cut), bytes.slice(cut)], max), whole, `cut ${cut}`);
  }
  const oneByOne = [...bytes].map((b) => new Uint8Array([b]));
  assert.deepEqual(split(oneByOne, max), whole);
});

Deno.test("lines: LineSplitStream and forEachLine", async () => {
  const chunks = ["ab", "c\r\nde", "f\n", "x".repeat(100), "\nlast"].map((c) => enc.encode(c));
  const got: string[] = [];
  for await (const l of ReadableStream.from(chunks).pipeThrough(new LineSplitStream())) {
    got.push(l);
  }
  assert.deepEqual(got, ["abc", "def", "x".repeat(100), "last"]);
  const viaFor: string[] = [];
  await forEachLine(ReadableStream.from(chunks), (l) => viaFor.push(l), { maxLineLength: 40 });
  assert.deepEqual(unsplit(viaFor), got);
  assert.ok(viaFor.every((l) => l.length <= 40));
  assert.throws(() => new LineSplitter(() => {}, { maxLineLength: 3 }), RangeError);
});

// The attack: a stage prints 100 MB without a newline. The splitter used to keep appending to
// one string and search it from the start for every 64 KiB chunk (quadratic; 1.5 GB of memory
// in the worker). Now every byte comes out, in bounded pieces, from a worker whose V8 heap is
// capped at 48 MiB: a splitter holding the line (100 MB) dies of it.
Deno.test("lines: a stage printing 100 MB without a newline: every byte arrives in bounded pieces, in a 48 MiB heap", async () => {
  const total = 100 * 1000 * 1000;
  const max = 64 * 1024;
  await using tmp = await tempDir();
  const script = `${tmp.path}/stage.sh`;
  await Deno.writeTextFile(script, `head -c ${total} /dev/zero | tr '\\0' x; echo; echo after\n`);
  const r = await runCommand(Deno.execPath(), [
    "run",
    "-A",
    "--v8-flags=--max-old-space-size=48",
    `${ROOT}/tests/log/_runner_count.ts`,
    script,
  ], { cwd: tmp.path });
  assert.equal(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout);
  assert.equal(c.code, 0);
  // Every x arrived, plus the 5 characters of "after", in pieces of at most max characters.
  assert.equal(c.chars, total + "after".length);
  assert.ok(c.longest <= max, `longest line ${c.longest}`);
  assert.equal(c.pieces, Math.ceil(total / (max - M)) + 1);
  assert.equal(c.unmarked, 2); // the end of the long line, and "after"
});
