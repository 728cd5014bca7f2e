/** The `pods/log` stream of the test API server: follow, tail, since, timestamps, limitBytes. */

import assert from "node:assert/strict";
import { LogBuffer, type LogQuery, logStream } from "./logs.ts";

async function read(s: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(s).text();
}

const base: LogQuery = { follow: false, timestamps: false };

Deno.test("log buffer: stdout/stderr lines interleave by arrival, partial lines flushed at the end", () => {
  const b = new LogBuffer();
  b.append("stdout", "a\nb");
  b.append("stderr", "E1\n");
  b.append("stdout", "c\n");
  b.append("stderr", "tail");
  b.end();
  assert.equal(b.text(), "a\nE1\nbc\ntail");
  b.append("stdout", "ignored after end\n");
  assert.equal(b.entries.length, 4);
});

Deno.test("log stream: tailLines, limitBytes, sinceTime, timestamps", async () => {
  const b = new LogBuffer();
  b.append("stdout", "one\ntwo\nthree\n");
  b.end();
  const stop = new AbortController().signal;
  assert.equal(await read(logStream(b, { ...base, tailLines: 2 }, stop)), "two\nthree\n");
  assert.equal(await read(logStream(b, { ...base, tailLines: 0 }, stop)), "");
  assert.equal(await read(logStream(b, { ...base, limitBytes: 6 }, stop)), "one\ntw");
  assert.equal(
    await read(logStream(b, { ...base, sinceTime: new Date(Date.now() + 60_000) }, stop)),
    "",
  );
  const ts = await read(logStream(b, { ...base, tailLines: 1, timestamps: true }, stop));
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three\n$/);
});

Deno.test("log stream: follow delivers new lines and ends with the container, or on stop", async () => {
  const b = new LogBuffer();
  b.append("stdout", "first\n");
  const stopper = new AbortController();
  const text = read(logStream(b, { ...base, follow: true }, stopper.signal));
  b.append("stdout", "second\n");
  b.append("stdout", "no-newline");
  b.end();
  assert.equal(await text, "first\nsecond\nno-newline");
  const b2 = new LogBuffer();
  b2.append("stdout", "x\n");
  const open = read(logStream(b2, { ...base, follow: true }, stopper.signal));
  stopper.abort();
  assert.equal(await open, "x\n");
});
