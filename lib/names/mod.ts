/**
 * Rules for names that become paths or parts of log lines. Build ids and architectures from
 * `builds.json` and artifact file names from `meta.json` come from the job bucket, which every
 * stage can write to, so they are hostile input: each must be one plain path segment before
 * anything joins it into a path. Stage ids end up in console lines: no control characters.
 * (S3 bucket names: `bucket.ts`.)
 *
 * @module
 */

/**
 * C0 and C1 control characters (newline, carriage return, escape, ...) and the Unicode line and
 * paragraph separators: none belongs in a name, and in a log line they can forge whole lines.
 */
// deno-lint-ignore no-control-regex
export const CONTROL_CHARS: RegExp = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Longest name accepted, in UTF-8 bytes (the usual file-name limit). */
export const MAX_NAME_BYTES = 255;

/**
 * Why `name` cannot be used as one path segment (a directory or file name), or `undefined`
 * when it can: not empty, not `.` or `..`, no `/` or `\`, no control characters, at most 255
 * bytes.
 *
 * @example
 * ```ts
 * pathSegmentProblem("36.20220101.dev.0"); // undefined
 * pathSegmentProblem("../../x/evilbuild"); // "contains \"/\""
 * ```
 */
export function pathSegmentProblem(name: string): string | undefined {
  if (name === "") return "is empty";
  if (name === "." || name === "..") return `is "${name}"`;
  if (name.includes("/")) return 'contains "/"';
  if (name.includes("\\")) return 'contains "\\"';
  if (CONTROL_CHARS.test(name)) return "contains a control character";
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) {
    return `is longer than ${MAX_NAME_BYTES} bytes`;
  }
  return undefined;
}
