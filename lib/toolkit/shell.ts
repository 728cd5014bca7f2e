/**
 * POSIX shell quoting.
 *
 * @module
 */

/**
 * `s` as one POSIX shell word: unchanged when it holds only characters the shell never
 * interprets, otherwise single-quoted (embedded `'` written as `'\''`).
 *
 * @example
 * ```ts
 * import { quote } from "./shell.ts";
 * if (quote("it's") !== `'it'\\''s'`) throw new Error("quote");
 * if (quote("a/b.txt") !== "a/b.txt") throw new Error("plain");
 * ```
 */
export function quote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
