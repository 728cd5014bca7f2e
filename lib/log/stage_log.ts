/**
 * Per-stage log streaming: every worker line goes to the console with a `[stage-id +12.3s]`
 * prefix (elapsed time since the stage started) and, unprefixed, to the stage's own log file
 * `<logDir>/<sanitised stage id>.log`.
 *
 * @module
 */

/** Formats an elapsed time in milliseconds as `12.3s` (or `4m05.2s` past a minute). */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}m${rest < 10 ? "0" : ""}${rest.toFixed(1)}s`;
}

/**
 * Turns a stage id into a safe file base name: characters outside `[A-Za-z0-9._-]` become
 * `_`, a leading dot is replaced, and the result is at most 100 characters (never empty).
 *
 * @example
 * ```ts
 * sanitizeStageId("ExecOrder 1 Stage/x"); // "ExecOrder_1_Stage_x"
 * ```
 */
export function sanitizeStageId(id: string): string {
  let s = id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100);
  if (s.startsWith(".")) s = "_" + s.slice(1);
  if (s === "" || s === "_" || s === "..") s = "stage";
  return s;
}

/**
 * File base names (without `.log`) for a list of stage ids: sanitised, and made unique by
 * appending `-<index>` when two ids sanitise to the same name.
 */
export function logNamesFor(ids: readonly string[]): string[] {
  const seen = new Map<string, number>();
  for (const id of ids) {
    const s = sanitizeStageId(id);
    seen.set(s, (seen.get(s) ?? 0) + 1);
  }
  return ids.map((id, i) => {
    const s = sanitizeStageId(id);
    return (seen.get(s) ?? 0) > 1 ? `${s}-${i}` : s;
  });
}

/** Options for {@link openStageLog}. */
export interface StageLogOptions {
  /** Stage id shown in the console prefix. */
  stageId: string;
  /** Absolute path of the log file (created or appended to, mode 0644). */
  file: string;
  /** Receives each prefixed console line. */
  console: (line: string) => void;
  /** Clock in ms (for tests); defaults to `Date.now`. */
  now?: () => number;
  /** A first line written to the file only (e.g. which run appends to it). */
  header?: string;
}

/** A stage's log sink. Close it (or dispose it) when the stage ends. */
export interface StageLog extends Disposable {
  /** Path of the log file. */
  readonly file: string;
  /** Milliseconds since the log was opened. */
  elapsed(): number;
  /** Writes one line (without trailing newline) to the console and the file. */
  line(text: string, stream?: "stdout" | "stderr"): void;
  /** Closes the file. Further lines only go to the console. */
  close(): void;
}

const enc = new TextEncoder();

function writeAll(f: Deno.FsFile, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += f.writeSync(data.subarray(off));
}

/** Opens a stage log: console prefixing plus a log file. Creates the file's directory. */
export function openStageLog(opts: StageLogOptions): StageLog {
  const now = opts.now ?? Date.now;
  const start = now();
  const dir = opts.file.slice(0, opts.file.lastIndexOf("/"));
  if (dir) Deno.mkdirSync(dir, { recursive: true });
  let f: Deno.FsFile | null = Deno.openSync(opts.file, {
    create: true,
    append: true,
    mode: 0o644,
  });
  if (opts.header !== undefined) writeAll(f, enc.encode(opts.header + "\n"));
  const log: StageLog = {
    file: opts.file,
    elapsed: () => now() - start,
    line(text, _stream) {
      opts.console(`[${opts.stageId} +${formatElapsed(now() - start)}] ${text}`);
      if (f) writeAll(f, enc.encode(text + "\n"));
    },
    close() {
      if (f) {
        f.close();
        f = null;
      }
    },
    [Symbol.dispose]() {
      log.close();
    },
  };
  return log;
}
