/**
 * Writing a run's reports (`--report FILE`, repeatable): JSON, or a self-contained HTML page
 * when FILE ends in `.html`/`.htm` (with each stage's log embedded).
 *
 * @module
 */
import { writeFileAtomic } from "../toolkit/fs.ts";
import { UsageError } from "../errors/mod.ts";
import type { RunReport } from "../coordinator/report.ts";
import { renderHtmlReport } from "../coordinator/report_html.ts";

/**
 * Writes a file the user asked for (`--report`, `--yaml-out`) atomically: readers see the old
 * file or the new one, never half of it.
 *
 * @throws {UsageError} naming the path when it cannot be written (nothing is left behind).
 */
export async function writeOutputFile(path: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(path, text);
  } catch (e) {
    throw new UsageError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** At most this much of each stage's log (its end) goes into the HTML report. */
export const MAX_LOG_BYTES = 4 * 1024 * 1024;

/** The last `max` bytes of a file (from a line start, saying what was left out). */
async function readTail(path: string, max: number): Promise<string | undefined> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
  } catch {
    return undefined; // a stage that never logged has no file
  }
  using _ = f;
  const size = (await f.stat()).size;
  const start = Math.max(0, size - max);
  await f.seek(start, Deno.SeekMode.Start);
  const buf = new Uint8Array(size - start);
  let off = 0;
  while (off < buf.length) {
    const n = await f.read(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  let text = new TextDecoder().decode(buf.subarray(0, off));
  if (start > 0) {
    text = `[... the first ${start} bytes are left out; the whole log is ${path}]\n` +
      text.slice(text.indexOf("\n") + 1);
  }
  return text;
}

/** Whether a `--report` path gets the HTML page. */
export function isHtmlReport(path: string): boolean {
  return /\.html?$/i.test(path);
}

/** Writes each `--report` file of a finished run. */
export async function writeReports(paths: readonly string[], report: RunReport): Promise<void> {
  let logs: Map<string, string> | undefined;
  for (const path of paths) {
    if (!isHtmlReport(path)) {
      await writeOutputFile(path, JSON.stringify(report, null, 2) + "\n");
      continue;
    }
    if (!logs) {
      logs = new Map();
      for (const s of report.stages) {
        const text = await readTail(s.logFile, MAX_LOG_BYTES);
        if (text !== undefined) logs.set(s.id, text);
      }
    }
    await writeOutputFile(path, renderHtmlReport(report, { logs }));
  }
}
