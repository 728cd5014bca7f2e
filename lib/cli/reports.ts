/**
 * Writing a run's reports (`--report FILE`, repeatable): JSON, or a self-contained HTML page
 * when FILE ends in `.html`/`.htm` (with each stage's log embedded).
 *
 * @module
 */
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UsageError } from "../errors/mod.ts";
import type { RunReport } from "../coordinator/report.ts";
import { renderHtmlReport } from "../coordinator/report_html.ts";

/**
 * Writes `text` to `path` atomically (a temp file beside it, then a rename): readers see the
 * old file or the new one, never half of it.
 *
 * @throws {UsageError} naming the path when it cannot be written (nothing is left behind).
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${crypto.randomUUID().slice(0, 8)}`);
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
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
      await writeFileAtomic(path, JSON.stringify(report, null, 2) + "\n");
      continue;
    }
    if (!logs) {
      logs = new Map();
      for (const s of report.stages) {
        const text = await readTail(s.logFile, MAX_LOG_BYTES);
        if (text !== undefined) logs.set(s.id, text);
      }
    }
    await writeFileAtomic(path, renderHtmlReport(report, { logs }));
  }
}
