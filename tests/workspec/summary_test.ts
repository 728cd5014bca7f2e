import assert from "node:assert/strict";
import { formatSummaryLine, parseSummaryLine, type WorkerSummary } from "../../lib/workspec/mod.ts";
import { summaryLine, type WorkerResult } from "../../lib/worker/mod.ts";

const result: WorkerResult = {
  exitCode: 1,
  message: "1 upload(s) failed: builds.json: boom",
  stageIds: ["build"],
  failures: [],
  bytesIn: 5,
  bytesOut: 7,
  filesFetched: 1,
  filesSkipped: 2,
  uploaded: ["p/builds.json", "p/1/x86_64/meta.json"],
  artifactsReturned: ["qemu"],
  uploadErrors: ["p/1/x86_64/a.qcow2: boom"],
  buildId: "1",
  aborted: false,
};

Deno.test("summary line: what the worker prints is what the coordinator reads, field by field", () => {
  const s = parseSummaryLine(`[build] ${summaryLine(result)}`);
  const want: WorkerSummary = {
    exitCode: 1,
    stageIds: ["build"],
    bytesIn: 5,
    bytesOut: 7,
    filesFetched: 1,
    filesSkipped: 2,
    artifactsReturned: ["qemu"],
    uploaded: 2,
    uploadedKeys: ["p/builds.json", "p/1/x86_64/meta.json"],
    uploadErrors: 1,
    buildId: "1",
    message: "1 upload(s) failed: builds.json: boom",
  };
  assert.deepEqual(s, want);
  assert.deepEqual(parseSummaryLine(formatSummaryLine(want)), want);
});

Deno.test("summary line: a malformed summary (wrong field types, not JSON) is ignored, not half-trusted", () => {
  const line = summaryLine(result);
  const body = JSON.parse(line.slice(line.indexOf("{")));
  const prefix = line.slice(0, line.indexOf("{"));
  for (
    const bad of [
      { ...body, bytesIn: "5" },
      { ...body, uploadErrors: ["x"] },
      { ...body, artifactsReturned: [1] },
      { ...body, uploadedKeys: undefined },
      { ...body, message: 3 },
      [body],
    ]
  ) {
    assert.equal(parseSummaryLine(prefix + JSON.stringify(bad)), undefined, JSON.stringify(bad));
  }
  assert.equal(parseSummaryLine(prefix + "{not json"), undefined);
  assert.equal(parseSummaryLine("gangway: uploaded x"), undefined);
});
