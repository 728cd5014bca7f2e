/**
 * `deno task bench lines`: the project's line splitter against the one it replaced (append to
 * one string, search it from the start for every chunk), on output with and without newlines.
 * Ratios within one run; never a pass/fail.
 *
 * @module
 */

import { LineSplitter } from "../lib/log/lines.ts";

/** The splitter the worker used before (quadratic on a line without newline). */
function oldSplitter(emit: (line: string) => void) {
  const dec = new TextDecoder();
  let buf = "";
  return {
    push(chunk: Uint8Array) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        emit(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    },
    end() {
      buf += dec.decode();
      if (buf !== "") emit(buf);
    },
  };
}

function chunks(total: number, lineLength: number | null): Uint8Array[] {
  const size = 64 * 1024;
  const out: Uint8Array[] = [];
  for (let off = 0; off < total; off += size) {
    const c = new Uint8Array(Math.min(size, total - off)).fill(0x78);
    if (lineLength !== null) {
      for (let i = lineLength - 1 - (off % lineLength); i < c.length; i += lineLength) c[i] = 10;
    }
    out.push(c);
  }
  return out;
}

function time(
  make: (emit: (l: string) => void) => { push(c: Uint8Array): void; end(): void },
  data: Uint8Array[],
) {
  let lines = 0;
  const s = make(() => lines++);
  const t0 = performance.now();
  for (const c of data) s.push(c);
  s.end();
  return { ms: performance.now() - t0, lines };
}

/** Runs the section. */
export async function linesBench(print: (line: string) => void): Promise<void> {
  await Promise.resolve();
  const newOne = (emit: (l: string) => void) => new LineSplitter(emit);
  for (const mib of [4, 8, 16]) {
    const total = mib * 2 ** 20;
    for (const lineLength of [1000, null]) {
      const data = chunks(total, lineLength);
      const n = time(newOne, data);
      const o = time(oldSplitter, data);
      print(
        `${String(mib).padStart(3)} MiB, ${lineLength ? `${lineLength}-byte lines` : "no newline"}`
          .padEnd(30) +
          `new ${n.ms.toFixed(0).padStart(6)} ms (${n.lines} lines)   old ${
            o.ms.toFixed(0).padStart(6)
          } ms (${o.lines} lines)   old/new ${(o.ms / n.ms).toFixed(1)}`,
      );
    }
  }
}
