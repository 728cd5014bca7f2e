/**
 * Typed errors shared by every part of gangplank, and the one place that maps them to exit
 * codes. Errors carry data; callers branch on `instanceof`, never on message text.
 *
 * @module
 */

import { constants } from "node:os";

/** Base class of every error gangplank raises on purpose. */
export class GangplankError extends Error {
  /** Exit code a script should end with when this error reaches it. */
  readonly exitCode: number = 1;
  /** A message saying what and where; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from the user (a JobSpec, a flag, a config file): exit code 2. */
export class UsageError extends GangplankError {
  /** Always 2. */
  override readonly exitCode: number = 2;
}

/**
 * Bad input found as a list of located problems (a JobSpec's issues, a generator's or a
 * planner's problems): each line says where and what, so a script prints them as they are.
 */
export class ProblemListError extends UsageError {
  /** One problem per line (the message is these lines joined). */
  constructor(readonly lines: readonly string[]) {
    super(lines.join("\n"));
  }
}

/** The run was interrupted by a signal; exit code 128 + signal number (130, 143). */
export class InterruptedError extends GangplankError {
  /** 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP. */
  override readonly exitCode: number;
  /** The run was stopped by `signal`. */
  constructor(readonly signal: "SIGINT" | "SIGTERM" | "SIGHUP") {
    super(`interrupted by ${signal}`);
    this.exitCode = signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 129;
  }
}

/** Maps any thrown value to the exit code a script should use. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof GangplankError) return err.exitCode;
  return 1;
}

/** The shell's exit status of a process killed by `signal`: 128 + its number (SIGKILL → 137). */
export function signalExitCode(signal: string): number {
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  return 128 + (n ?? 0);
}
