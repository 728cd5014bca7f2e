import assert from "node:assert/strict";
import { formatElapsed, logNamesFor, openStageLog, sanitizeStageId } from "../../lib/log/mod.ts";
import { formatBytes, summaryTable } from "../../lib/coordinator/report.ts";
import { tempDir } from "../_helpers/mod.ts";

Deno.test("log: elapsed time, sanitised and unique file names", () => {
  assert.equal(formatElapsed(12_345), "12.3s");
  assert.equal(formatElapsed(0), "0.0s");
  assert.equal(formatElapsed(65_200), "1m05.2s");
  assert.equal(sanitizeStageId("ExecOrder 1 Stage/../x"), "ExecOrder_1_Stage_.._x");
  assert.equal(sanitizeStageId("..hidden"), "_.hidden");
  assert.equal(sanitizeStageId(""), "stage");
  assert.equal(sanitizeStageId("a".repeat(300)).length, 100);
  assert.deepEqual(logNamesFor(["a b", "a/b", "c"]), ["a_b-0", "a_b-1", "c"]);
});

Deno.test("log: stage lines go prefixed to the console and raw to the file", async () => {
  await using tmp = await tempDir();
  let t = 1000;
  const lines: string[] = [];
  const file = `${tmp.path}/logs/s.log`;
  const l = openStageLog({
    stageId: "s 1",
    file,
    console: (x) => lines.push(x),
    now: () => t,
    header: "=== run 1 ===",
  });
  l.line("hello");
  t += 12_300;
  l.line("world", "stderr");
  l.close();
  l.line("after close");
  assert.deepEqual(lines, ["[s 1 +0.0s] hello", "[s 1 +12.3s] world", "[s 1 +12.3s] after close"]);
  assert.equal(Deno.readTextFileSync(file), "=== run 1 ===\nhello\nworld\n");
});

Deno.test("report: bytes and the summary table", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  const rows = summaryTable({
    stages: [{
      id: "base",
      result: "succeeded",
      exitCode: 0,
      durationMs: 3000,
      bytesIn: 0,
      bytesOut: 2048,
      artifacts: ["ostree", "qemu"],
      objects: [],
    }, {
      id: "later",
      result: "not-run",
      exitCode: null,
      durationMs: 0,
      bytesIn: 0,
      bytesOut: 0,
      artifacts: [],
      objects: [],
    }],
  } as never);
  assert.match(rows[0], /^STAGE\s+RESULT\s+EXIT\s+DURATION\s+IN\s+OUT\s+RETURNED$/);
  assert.match(rows[1], /^base\s+succeeded\s+0\s+3\.0s\s+0 B\s+2\.0 KiB\s+ostree, qemu$/);
  assert.match(rows[2], /^later\s+not-run\s+-\s+-\s+0 B\s+0 B\s+-$/);
});
