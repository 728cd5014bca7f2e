import assert from "node:assert/strict";
import { LiveView } from "../../lib/log/live_view.ts";

// deno-lint-ignore no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** A tiny terminal: applies text, `\r`, `\n`, cursor up (`ESC[nA`) and erase-below (`ESC[J`). */
class Screen {
  rows: string[] = [""];
  y = 0;
  write(s: string) {
    // deno-lint-ignore no-control-regex
    for (const tok of plain(s).split(/(\x1b\[\d*[AJ]|\r|\n)/)) {
      if (tok === "") continue;
      if (tok === "\r") continue; // writes below always start at column 0 here
      if (tok === "\n") {
        this.y++;
        if (this.y === this.rows.length) this.rows.push("");
      } else if (tok.endsWith("A")) {
        this.y -= Number(tok.slice(2, -1) || 1);
      } else if (tok.endsWith("J")) {
        this.rows.length = this.y + 1;
        this.rows[this.y] = "";
      } else {
        this.rows[this.y] += tok;
      }
    }
  }
  text() {
    return this.rows.join("\n").replace(/\n+$/, "");
  }
}

Deno.test("LiveView: one status block redrawn in place below the log lines", () => {
  let t = 1_000_000;
  const screen = new Screen();
  const view = new LiveView({
    stages: [{ id: "base", order: 1 }, { id: "metal", order: 2 }, { id: "finalize", order: 3 }],
    write: (s) => screen.write(s),
    columns: () => 80,
    now: () => t,
    tickMs: 0,
    title: "run gp-1",
  });
  view.stageSkipped("base", "succeeded in run gp-0");
  view.groupStarted(["metal"]);
  view.stageWaiting("metal", ["ostree"]);
  t += 2_000;
  view.log("[metal +2.0s] gangplank: waiting for ostree");
  view.stageStarted("metal");
  t += 65_000;
  view.stageLine("metal", "fetch builder/x.raw: 512.0 MiB / 1.0 GiB (50%)");
  view.log("[metal +67.0s] fetch builder/x.raw: 512.0 MiB / 1.0 GiB (50%)");
  const lines = screen.text().split("\n");
  assert.deepEqual(lines.slice(0, 2), [
    "[metal +2.0s] gangplank: waiting for ostree",
    "[metal +67.0s] fetch builder/x.raw: 512.0 MiB / 1.0 GiB (50%)",
  ]);
  assert.match(lines[2], /^── run gp-1 · 1\/3 stage\(s\) done · 1m07\.0s ─+$/);
  assert.match(lines[3], /^ ↷ base +skipped \(resumed\) +succeeded in run gp-0$/);
  assert.match(
    lines[4],
    /^ ▶ metal +running 1m05\.0s +fetch builder\/x\.raw: 512\.0 MiB \/ 1\.0 GiB \(50%\)$/,
  );
  assert.match(lines[5], /^ · finalize +queued \(group 3\)$/);
  assert.equal(lines.length, 6, "one block, not a copy per redraw");
  view.stageEnded("metal", { result: "failed", exitCode: 9, durationMs: 67_000 });
  assert.match(screen.text(), /✘ metal +failed \(exit code 9\) after 1m07\.0s/);
  for (const l of screen.text().split("\n")) assert.ok(l.length <= 79, `fits: ${l}`);
  view.close();
  assert.equal(screen.text(), lines.slice(0, 2).join("\n"), "the block is erased at the end");
  view.log("after");
  assert.match(screen.text(), /\nafter$/);
});

Deno.test("LiveView: transfer progress shows on the running stage's line while it is fresh", () => {
  let t = 0;
  const view = new LiveView({
    stages: [{ id: "metal", order: 1 }],
    write: () => {},
    columns: () => 100,
    now: () => t,
    tickMs: 0,
  });
  view.stageStarted("metal");
  view.stageLine("metal", "+ cosa buildextend-metal");
  t += 1000;
  view.stageProgress("metal", "builder/x.raw: 512.0 MiB / 1.0 GiB (50%) 120 MiB/s");
  assert.match(
    plain(view.lines()[1]),
    /running 1\.0s +⇅ builder\/x\.raw: 512\.0 MiB \/ 1\.0 GiB \(50%\)/,
  );
  t += 5000;
  assert.match(plain(view.lines()[1]), /running 6\.0s +\+ cosa buildextend-metal$/);
  view.close();
});

Deno.test("LiveView: a narrow terminal gets cut lines, never wrapped ones", () => {
  const out: string[] = [];
  const view = new LiveView({
    stages: [{ id: "a-very-long-stage-identifier-that-goes-on", order: 1 }],
    write: (s) => out.push(s),
    columns: () => 30,
    tickMs: 0,
  });
  view.stageStarted("a-very-long-stage-identifier-that-goes-on");
  view.stageLine("a-very-long-stage-identifier-that-goes-on", "x".repeat(200));
  for (const l of view.lines()) assert.ok(plain(l).length <= 29, plain(l));
  view.close();
});
