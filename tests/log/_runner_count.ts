/**
 * Test helper: runs the script given as argument with the worker's {@link BashRunner} and
 * prints one JSON line counting what came out of stdout. Started with a small V8 heap by
 * lines_test.ts, so a splitter that holds a whole line dies of it.
 */
import { LINE_CONTINUES } from "../../lib/log/lines.ts";
import { BashRunner } from "../../lib/worker/runner.ts";

const counts = { pieces: 0, chars: 0, longest: 0, unmarked: 0, code: -1 };
const r = await new BashRunner().run(Deno.args[0], {
  env: { PATH: "/usr/bin:/bin" },
  cwd: Deno.cwd(),
  signal: new AbortController().signal,
  onLine: (l, stream) => {
    if (stream !== "stdout") return;
    counts.pieces++;
    counts.longest = Math.max(counts.longest, l.length);
    if (l.endsWith(LINE_CONTINUES)) counts.chars += l.length - LINE_CONTINUES.length;
    else {
      counts.unmarked++;
      counts.chars += l.length;
    }
  },
});
counts.code = r.code;
console.log(JSON.stringify(counts));
