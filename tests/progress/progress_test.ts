import assert from "node:assert/strict";
import { createProgress, longTransferProgress, progressFactory } from "../../lib/progress/mod.ts";
import { formatBytes, formatRate } from "../../lib/progress/progress.ts";

const MiB = 1024 * 1024;

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("formatBytes and formatRate use binary units", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(512 * MiB), "512.0 MiB");
  assert.equal(formatBytes(1024 * MiB), "1.0 GiB");
  assert.equal(formatRate(120 * MiB), "120 MiB/s");
  assert.equal(formatRate(3.5 * MiB), "3.5 MiB/s");
  assert.equal(formatRate(0), "0 B/s");
});

Deno.test("non-TTY: one line per interval with the rate of that interval", () => {
  const c = clock();
  const out: string[] = [];
  const p = createProgress({
    label: "disk.qcow2",
    total: 1024 * MiB,
    isTTY: false,
    write: (s) => out.push(s),
    intervalMs: 5000,
    now: c.now,
  });
  c.advance(1000);
  p.update(100 * MiB);
  assert.equal(out.length, 0, "nothing before the interval passed");
  c.advance(3266); // 4.266 s since start
  p.update(412 * MiB);
  assert.equal(out.length, 0);
  c.advance(734); // exactly 5 s since start: 512 MiB in 5 s
  p.update(0); // zero bytes never reports
  p.update(1);
  assert.equal(out.length, 1);
  assert.match(out[0], /^disk\.qcow2: 512\.0 MiB \/ 1\.0 GiB \(50%\) 102 MiB\/s$/);
  c.advance(5000);
  p.update(512 * MiB - 1);
  assert.equal(out.length, 2);
  assert.equal(out[1], "disk.qcow2: 1.0 GiB / 1.0 GiB (100%) 102 MiB/s");
  p.done();
  p.done();
  assert.equal(out.length, 3, "done() writes once");
  assert.equal(out[2], "disk.qcow2: 1.0 GiB / 1.0 GiB (100%) 102 MiB/s in 10.0s");
  p.update(5);
  assert.equal(out.length, 3, "no output after done()");
});

Deno.test("non-TTY without a total shows the amount only", () => {
  const c = clock();
  const out: string[] = [];
  const p = createProgress({
    label: "stream",
    isTTY: false,
    write: (s) => out.push(s),
    intervalMs: 1000,
    now: c.now,
  });
  c.advance(1000);
  p.update(2 * MiB);
  assert.deepEqual(out, ["stream: 2.0 MiB 2.0 MiB/s"]);
});

Deno.test("TTY: a bar redrawn in place, throttled, ending with a newline", () => {
  const c = clock();
  const out: string[] = [];
  const p = createProgress({
    label: "f",
    total: 100,
    isTTY: true,
    write: (s) => out.push(s),
    ttyIntervalMs: 100,
    barWidth: 10,
    now: c.now,
  });
  c.advance(100);
  p.update(50);
  c.advance(10);
  p.update(10); // throttled
  assert.equal(out.length, 1);
  assert.ok(out[0].startsWith("\rf [#####-----] 50 B / 100 B (50%) "), out[0]);
  assert.ok(!out[0].includes("\n"));
  c.advance(100);
  p.update(40);
  assert.equal(out.length, 2);
  assert.ok(out[1].startsWith("\rf [##########] 100 B / 100 B (100%) "), out[1]);
  p.done();
  assert.equal(out.length, 3);
  assert.ok(out[2].startsWith("\r") && out[2].endsWith("\n"));
});

Deno.test("progressFactory shares the writer", () => {
  const out: string[] = [];
  const c = clock();
  const make = progressFactory({ isTTY: false, write: (s) => out.push(s), now: c.now });
  const p = make("a", 10);
  p.update(10);
  c.advance(2000);
  p.done();
  assert.deepEqual(out, ["a: 10 B / 10 B (100%) 5 B/s in 2.0s"]);
});

Deno.test("longTransferProgress: quick transfers write nothing, long ones a line a second", () => {
  let t = 0;
  const lines: string[] = [];
  const factory = longTransferProgress((l) => lines.push(l), 1000, () => t);
  const quick = factory("builder/small", 2048);
  quick.update(1024);
  t += 300;
  quick.update(1024);
  quick.done();
  assert.equal(lines.length, 0);
  const slow = factory("builder/big.raw", 4 * 1024 * 1024);
  for (let i = 0; i < 4; i++) {
    t += 600;
    slow.update(1024 * 1024);
  }
  slow.done();
  assert.deepEqual(lines.map((l) => l.replace(/ \S+ \S+\/s/, " RATE")), [
    "builder/big.raw: 2.0 MiB / 4.0 MiB (50%) RATE",
    "builder/big.raw: 4.0 MiB / 4.0 MiB (100%) RATE",
    "builder/big.raw: 4.0 MiB / 4.0 MiB (100%) RATE in 2.4s",
  ]);
});
