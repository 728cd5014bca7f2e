/**
 * Keeping secret values out of log lines.
 *
 * @module
 */

/** The mark that replaces a secret value. */
export const REDACTED = "***";

/**
 * `line` with every occurrence of any of `secrets` replaced by `***` (longest first, so a
 * secret that contains another is hidden whole; empty strings are ignored).
 *
 * @example
 * ```ts
 * import { redact } from "./redact.ts";
 * if (redact("key=abc123", ["abc123"]) !== "key=***") throw new Error("redact");
 * ```
 */
export function redact(line: string, secrets: readonly string[]): string {
  return redactor(secrets)(line);
}

/**
 * A function that redacts `secrets` from a line (the list sorted once, for many lines).
 *
 * @example
 * ```ts
 * import { redactor } from "./redact.ts";
 * const hide = redactor(["s3cr3t"]);
 * if (hide("token s3cr3t") !== "token ***") throw new Error("redactor");
 * ```
 */
export function redactor(secrets: readonly string[]): (line: string) => string {
  const list = secrets.filter((s) => s !== "").sort((a, b) => b.length - a.length);
  if (list.length === 0) return (line) => line;
  return (line) => {
    let l = line;
    for (const s of list) if (l.includes(s)) l = l.replaceAll(s, REDACTED);
    return l;
  };
}
