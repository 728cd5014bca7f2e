/**
 * Transfer progress: a bar redrawn in place (`\r`) on a terminal, a periodic one-line log
 * otherwise. Pure apart from the injected `write` function and clock.
 *
 * @module
 */

/** A running progress report for one transfer. */
export interface Progress {
  /** Adds `bytes` more bytes to the amount transferred so far. */
  update(bytes: number): void;
  /** Ends the report: draws/logs the final state once (idempotent). */
  done(): void;
}

/** Creates a {@link Progress} for a transfer named `label` of `total` bytes (when known). */
export type ProgressFactory = (label: string, total?: number) => Progress;

/** Options for {@link createProgress}. */
export interface ProgressOptions {
  /** What is being transferred (an object key, a file name). */
  label: string;
  /** Total size in bytes, when known. */
  total?: number;
  /** Draw a bar redrawn with `\r` (a terminal) instead of periodic log lines. */
  isTTY: boolean;
  /** Where output goes (a terminal writer, or a logger that adds its own newline). */
  write: (s: string) => void;
  /** Minimum time between two log lines when not on a TTY. Default 5000 ms. */
  intervalMs?: number;
  /** Minimum time between two redraws on a TTY. Default 200 ms. */
  ttyIntervalMs?: number;
  /** Width of the bar in characters on a TTY. Default 30. */
  barWidth?: number;
  /** Clock in milliseconds (injectable for tests). Default `Date.now`. */
  now?: () => number;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * Formats a byte count with binary units: `512 B`, `1.5 KiB`, `512.0 MiB`, `1.0 GiB`.
 *
 * @example
 * ```ts
 * formatBytes(512 * 1024 * 1024); // "512.0 MiB"
 * ```
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) n = 0;
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${UNITS[i]}`;
}

/** Formats a rate in bytes per second: `120 MiB/s`, `3.5 MiB/s`, `0 B/s`. */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) bytesPerSecond = 0;
  let n = bytesPerSecond;
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  const digits = i === 0 || n >= 10 ? 0 : 1;
  return `${n.toFixed(digits)} ${UNITS[i]}/s`;
}

/**
 * Creates a progress report. On a TTY it redraws `label [#####-----] 50% 512.0 MiB / 1.0 GiB
 * 120 MiB/s` in place at most every `ttyIntervalMs`; otherwise it writes one line such as
 * `label: 512.0 MiB / 1.0 GiB (50%) 120 MiB/s` at most every `intervalMs` (the rate is the one
 * measured since the previous line). `done()` always writes the final state once, with the
 * average rate of the whole transfer.
 *
 * @example
 * ```ts
 * const p = createProgress({ label: "disk.qcow2", total: 1 << 30, isTTY: false, write: log });
 * stream.on("data", (c) => p.update(c.length));
 * stream.on("end", () => p.done());
 * ```
 */
export function createProgress(opts: ProgressOptions): Progress {
  const now = opts.now ?? Date.now;
  const intervalMs = opts.intervalMs ?? 5000;
  const ttyIntervalMs = opts.ttyIntervalMs ?? 200;
  const barWidth = opts.barWidth ?? 30;
  const total = opts.total !== undefined && opts.total >= 0 ? opts.total : undefined;
  const start = now();
  let bytes = 0;
  let lastAt = start;
  let lastBytes = 0;
  let finished = false;
  let lastLen = 0;

  const amount = (): string => {
    if (total === undefined) return formatBytes(bytes);
    const pct = total === 0 ? 100 : Math.min(100, Math.floor((bytes / total) * 100));
    return `${formatBytes(bytes)} / ${formatBytes(total)} (${pct}%)`;
  };

  const bar = (): string => {
    if (total === undefined) return "";
    const frac = total === 0 ? 1 : Math.min(1, bytes / total);
    const filled = Math.round(frac * barWidth);
    return `[${"#".repeat(filled)}${"-".repeat(barWidth - filled)}] `;
  };

  const render = (rate: number, final: boolean): void => {
    if (opts.isTTY) {
      const line = `${opts.label} ${bar()}${amount()} ${formatRate(rate)}`;
      const pad = lastLen > line.length ? " ".repeat(lastLen - line.length) : "";
      lastLen = line.length;
      opts.write(`\r${line}${pad}${final ? "\n" : ""}`);
    } else {
      const secs = (now() - start) / 1000;
      const suffix = final ? ` in ${secs.toFixed(1)}s` : "";
      opts.write(`${opts.label}: ${amount()} ${formatRate(rate)}${suffix}`);
    }
  };

  return {
    update(n: number): void {
      if (finished || !(n > 0)) return;
      bytes += n;
      const t = now();
      const due = opts.isTTY ? ttyIntervalMs : intervalMs;
      if (t - lastAt < due) return;
      const rate = ((bytes - lastBytes) * 1000) / Math.max(1, t - lastAt);
      lastAt = t;
      lastBytes = bytes;
      render(rate, false);
    },
    done(): void {
      if (finished) return;
      finished = true;
      const rate = (bytes * 1000) / Math.max(1, now() - start);
      render(rate, true);
    },
  };
}

/** Options for {@link progressFactory}. */
export type ProgressFactoryOptions = Omit<ProgressOptions, "label" | "total">;

/** A {@link ProgressFactory} creating reports that share `opts` (the writer, TTY mode, clock). */
export function progressFactory(opts: ProgressFactoryOptions): ProgressFactory {
  return (label, total) => createProgress({ ...opts, label, total });
}

/**
 * A {@link ProgressFactory} for long transfers only: a line every `intervalMs` once a transfer
 * has lasted that long, and its final line then; a quicker transfer writes nothing.
 *
 * @example
 * ```ts
 * const progress = longTransferProgress((line) => console.log(`progress: ${line}`));
 * const p = progress("builder/disk.raw", 1 << 30);
 * p.update(1 << 20);
 * p.done(); // quick: nothing was written
 * ```
 */
export function longTransferProgress(
  write: (line: string) => void,
  intervalMs = 1000,
  now: () => number = Date.now,
): ProgressFactory {
  return (label, total) => {
    let shown = false;
    const p = createProgress({
      label,
      total,
      isTTY: false,
      intervalMs,
      now,
      write: (line) => {
        shown = true;
        write(line);
      },
    });
    return {
      update: (n) => p.update(n),
      done: () => {
        if (shown) p.done();
      },
    };
  };
}
