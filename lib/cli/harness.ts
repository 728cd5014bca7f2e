/**
 * The one script harness: every script's logic is a {@link CliMain} — a function of a
 * {@link CliIo} (argv, env, output, an abort signal) returning an exit code — run by
 * {@link runCli}, which owns the mapping of errors to exit codes and one-line messages. The
 * scripts only build the {@link CliIo} from the process (argv, env, signals) and exit with the
 * code; tests call the same function in-process with captured output.
 *
 * @example
 * ```ts
 * const io = captureIo(["--spec", "job.yaml", "--dry-run"]);
 * const code = await runCli("submit", submit, io);
 * ```
 *
 * @module
 */
// Only light imports: every script (the worker among them) starts through this file.
import {
  exitCodeOf,
  GangplankError,
  InterruptedError,
  ProblemListError,
  UsageError,
} from "../errors/mod.ts";
import type { Installation } from "./backends/types.ts";

/** Everything a script reads from and writes to the outside world. */
export interface CliIo {
  /** Arguments, without the program name. */
  readonly argv: readonly string[];
  /** The environment, read once. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths are resolved against. */
  readonly cwd: string;
  /** The caller's uid (`null` where there is none). */
  readonly uid: number | null;
  /**
   * This process's pid, when the script is its own process (absent in-process): local runs
   * record it so that `--cleanup` can tell their leftovers from a live run's.
   */
  readonly pid?: number;
  /** Writes text to stdout as is. */
  stdout(text: string): void;
  /** Writes text to stderr as is. */
  stderr(text: string): void;
  /** Aborted (with an {@link InterruptedError}) by SIGINT/SIGTERM/SIGHUP. */
  readonly signal: AbortSignal;
  /** How this program was installed (where workers come from). */
  readonly install: Installation;
  /** Present when stdout is a terminal: its width (the live view of a run draws on it). */
  readonly terminal?: { columns(): number };
}

/** `--help` (or `--version`) was asked for: print `text` to stdout and exit 0. */
export class HelpShown extends Error {
  constructor(readonly text: string) {
    super("help shown");
  }
}

/** A script's logic. */
export type CliMain = (io: CliIo) => Promise<number>;

/**
 * Runs `main` and maps what it throws to an exit code: `--help` → its text on stdout, 0;
 * bad input ({@link UsageError}) → one line per problem on stderr, 2; an interruption → 130/143;
 * any other error → one line (`GANGPLANK_DEBUG=1` adds the stack), 1.
 */
export async function runCli(name: string, main: CliMain, io: CliIo): Promise<number> {
  try {
    return await main(io);
  } catch (e) {
    if (e instanceof HelpShown) {
      io.stdout(e.text);
      return 0;
    }
    if (io.signal.aborted && io.signal.reason instanceof InterruptedError) {
      io.stderr(`${name}: ${io.signal.reason.message}\n`);
      return io.signal.reason.exitCode;
    }
    if (e instanceof UsageError) {
      // Problem lists (JobSpec, generator, plan) name their place; other errors get our name.
      const lines = e instanceof ProblemListError ? e.lines : [`${name}: ${e.message}`];
      for (const l of lines) io.stderr(`${l}\n`);
      return exitCodeOf(e);
    }
    const msg = e instanceof Error ? e.message : String(e);
    io.stderr(`${name}: ${msg.split("\n")[0]}\n`);
    if (io.env.GANGPLANK_DEBUG && e instanceof Error && e.stack) io.stderr(`${e.stack}\n`);
    return e instanceof GangplankError ? e.exitCode : exitCodeOf(e);
  }
}

/** A line writer over a text writer (`line("x")` writes `x\n`). */
export function lines(write: (text: string) => void): (line: string) => void {
  return (line) => write(`${line}\n`);
}
