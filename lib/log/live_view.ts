/**
 * The live view of a run on a terminal: log lines scroll as usual, and below them a status
 * block — one line per stage (queued, waiting for X, running with elapsed time and its transfer
 * progress or latest line, done) — is redrawn in place with ANSI cursor movement. Off a
 * terminal the coordinator prints plain lines instead; this module is only used on a TTY.
 *
 * Pure apart from the injected `write` function, clock and timer.
 *
 * @module
 */

import { formatElapsed } from "./stage_log.ts";

/** How a stage ended, as the view needs it. */
export interface LiveStageEnd {
  result: string;
  exitCode: number | null;
  durationMs: number;
  reason?: string;
}

/** Options of {@link LiveView}. */
export interface LiveViewOptions {
  /** The run's stages in execution order, with their group. */
  stages: readonly { id: string; order: number }[];
  /** Writes raw text to the terminal (no newline added). */
  write: (s: string) => void;
  /** The terminal's width in columns (status lines are cut to fit: no wrapping). */
  columns: () => number;
  /** Clock in ms (tests). Default `Date.now`. */
  now?: () => number;
  /** Redraws the elapsed times this often; 0 turns the timer off (tests). Default 1000 ms. */
  tickMs?: number;
  /** Title of the block (e.g. the run id). */
  title?: string;
}

type State =
  | { kind: "queued" }
  | { kind: "waiting"; missing: string[]; since: number }
  | { kind: "running"; since: number; last?: string; progress?: string; progressAt?: number }
  | { kind: "skipped"; reason: string }
  | { kind: "done"; end: LiveStageEnd };

const ESC = "\x1b[";
const C = {
  dim: (s: string) => `${ESC}2m${s}${ESC}0m`,
  green: (s: string) => `${ESC}32m${s}${ESC}0m`,
  red: (s: string) => `${ESC}31m${s}${ESC}0m`,
  yellow: (s: string) => `${ESC}33m${s}${ESC}0m`,
  blue: (s: string) => `${ESC}34m${s}${ESC}0m`,
  cyan: (s: string) => `${ESC}36m${s}${ESC}0m`,
  bold: (s: string) => `${ESC}1m${s}${ESC}0m`,
};

/** Visible length of a string with ANSI colour codes. */
function visible(s: string): number {
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "").length;
}

/** Cuts a coloured string to `width` visible characters (colours reset at the end). */
function cut(s: string, width: number): string {
  if (visible(s) <= width) return s;
  let out = "";
  let n = 0;
  // deno-lint-ignore no-control-regex
  for (const part of s.split(/(\x1b\[[0-9;]*m)/)) {
    if (part.startsWith(ESC)) {
      out += part;
      continue;
    }
    const room = width - 1 - n;
    if (room <= 0) break;
    out += part.slice(0, room);
    n += Math.min(part.length, room);
  }
  return out + "…" + `${ESC}0m`;
}

/**
 * A status block per stage redrawn in place below the log. Feed it the run's console lines
 * with {@link LiveView.log} and the stage events (it has the coordinator's `RunObserver`
 * methods); dispose it at the end (the block is erased; the summary table follows the log).
 */
export class LiveView implements Disposable {
  readonly #o: LiveViewOptions;
  readonly #now: () => number;
  readonly #states = new Map<string, State>();
  readonly #start: number;
  #drawn = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(o: LiveViewOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#start = this.#now();
    for (const s of o.stages) this.#states.set(s.id, { kind: "queued" });
    const tick = o.tickMs ?? 1000;
    if (tick > 0) this.#timer = setInterval(() => this.#redraw(""), tick);
    this.#redraw("");
  }

  /** Prints one log line above the block. */
  log(line: string): void {
    if (this.#closed) {
      this.#o.write(line + "\n");
      return;
    }
    this.#redraw(line + "\n");
  }

  /** A group started: its stages wait for their dependencies. */
  groupStarted(ids: string[]): void {
    for (const id of ids) this.#set(id, { kind: "waiting", missing: [], since: this.#now() });
  }
  /** A resumed run skips the stage. */
  stageSkipped(id: string, reason: string): void {
    this.#set(id, { kind: "skipped", reason });
  }
  /** The stage waits for `missing`. */
  stageWaiting(id: string, missing: string[]): void {
    const st = this.#states.get(id);
    const since = st?.kind === "waiting" ? st.since : this.#now();
    this.#set(id, { kind: "waiting", missing, since });
  }
  /** The stage's worker started. */
  stageStarted(id: string): void {
    this.#set(id, { kind: "running", since: this.#now() });
  }
  /** A line of the stage's log: the latest one shows in its status (transfer progress...). */
  stageLine(id: string, line: string): void {
    const st = this.#states.get(id);
    if (st?.kind === "running") st.last = line; // drawn with the next log line or tick
  }
  /** The stage's latest transfer progress: shown instead of its latest line for a few seconds. */
  stageProgress(id: string, text: string): void {
    const st = this.#states.get(id);
    if (st?.kind !== "running") return;
    st.progress = text;
    st.progressAt = this.#now();
    this.#redraw("");
  }
  /** The stage ended. */
  stageEnded(id: string, end: LiveStageEnd): void {
    this.#set(id, { kind: "done", end });
  }

  /** The block's lines as drawn now (without cursor movement). */
  lines(): string[] {
    const width = Math.max(20, this.#o.columns() - 1);
    const now = this.#now();
    const ids = this.#o.stages.map((s) => s.id);
    const nameW = Math.min(28, Math.max(...ids.map((i) => i.length), 5));
    let done = 0;
    const rows = this.#o.stages.map((s) => {
      const st = this.#states.get(s.id)!;
      const name = s.id.length > nameW ? s.id.slice(0, nameW - 1) + "…" : s.id.padEnd(nameW);
      let mark: string;
      let text: string;
      switch (st.kind) {
        case "queued":
          mark = C.dim("·");
          text = C.dim(`queued (group ${s.order})`);
          break;
        case "waiting":
          mark = C.yellow("…");
          text = C.yellow(
            st.missing.length
              ? `waiting for ${st.missing.join(", ")} ${formatElapsed(now - st.since)}`
              : "checking its inputs",
          );
          break;
        case "running":
          mark = C.cyan("▶");
          text = C.cyan(`running ${formatElapsed(now - st.since)}`) +
            (st.progress && now - (st.progressAt ?? 0) < 3000
              ? C.cyan(`  ⇅ ${st.progress}`)
              : st.last
              ? C.dim(`  ${st.last}`)
              : "");
          break;
        case "skipped":
          done++;
          mark = C.blue("↷");
          text = C.blue("skipped (resumed)") + C.dim(`  ${st.reason}`);
          break;
        case "done": {
          done++;
          const e = st.end;
          const t = formatElapsed(e.durationMs);
          if (e.result === "succeeded") {
            mark = C.green("✔");
            text = C.green(`succeeded in ${t}`);
          } else if (e.result === "failed" || e.result === "dependency-timeout") {
            mark = C.red("✘");
            text = C.red(
              `${e.result}${e.exitCode !== null ? ` (exit code ${e.exitCode})` : ""} after ${t}`,
            ) + (e.reason ? C.dim(`  ${e.reason}`) : "");
          } else {
            mark = C.dim("-");
            text = C.dim(e.result);
          }
        }
      }
      return cut(` ${mark} ${name}  ${text}`, width);
    });
    const head = C.bold(
      `── ${this.#o.title ?? "gangplank"} · ${done}/${ids.length} stage(s) done · ${
        formatElapsed(now - this.#start)
      } `,
    );
    const fill = width - visible(head);
    return [fill > 0 ? head + C.dim("─".repeat(fill)) : cut(head, width), ...rows];
  }

  #set(id: string, st: State): void {
    if (!this.#states.has(id)) return;
    this.#states.set(id, st);
    this.#redraw("");
  }

  /** Erases the block, prints `above`, draws the block again: one write, no flicker. */
  #redraw(above: string): void {
    if (this.#closed) return;
    const lines = this.lines();
    const up = this.#drawn ? `\r${ESC}${this.#drawn}A${ESC}J` : "";
    this.#o.write(up + above + lines.join("\n") + "\n");
    this.#drawn = lines.length;
  }

  /** Stops the timer and erases the block (the log and the summary stay). */
  close(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#drawn) this.#o.write(`\r${ESC}${this.#drawn}A${ESC}J`);
    this.#closed = true;
    this.#drawn = 0;
  }

  /** Same as {@link LiveView.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
