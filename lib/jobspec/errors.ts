/**
 * Errors raised while reading, validating, templating and generating JobSpecs.
 *
 * @module
 */
import { ProblemListError, UsageError } from "../errors/mod.ts";

/** One problem found in a JobSpec, with where it is. `line`/`col` are 1-based (0 = unknown). */
export interface JobSpecIssue {
  /** File name as given by the caller (`<jobspec>` when parsing a string). */
  file: string;
  /** 1-based line in the YAML. */
  line: number;
  /** 1-based column in the YAML. */
  col: number;
  /** YAML path such as `stages[2].execution_order` (empty for the document itself). */
  path: string;
  /** What is wrong. */
  message: string;
}

/** Escapes control characters (newlines, NUL, ...) so an issue stays on one line. */
export function oneLine(s: string): string {
  return s.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f\u2028\u2029]/g,
    (c) =>
      c === "\n"
        ? "\\n"
        : c === "\t"
        ? "\\t"
        : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Formats an issue as `file:line:col: path: message` (always a single line); an issue about
 * the whole file (line 0, e.g. it cannot be read) is `file: message`.
 */
export function formatIssue(i: JobSpecIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return oneLine(`${where}: ${i.path ? `${i.path}: ` : ""}${i.message}`);
}

/**
 * A JobSpec could not be accepted. Carries every problem found (never just the first); the
 * message lists them one per line in `file:line:col: path: message` form.
 */
export class JobSpecError extends ProblemListError {
  /** Every problem found, in position order. */
  constructor(readonly issues: JobSpecIssue[]) {
    super(issues.map(formatIssue));
  }
}

/** A command template could not be parsed or executed (unknown field, bad syntax, nil Meta). */
export class TemplateError extends UsageError {
  constructor(message: string, readonly template: string) {
    super(message);
  }
}

/** A template used `.Meta` but no meta.json was given (e.g. in a dry run). */
export class MetaUnavailableError extends TemplateError {}

/** A build-artifact shorthand, kola test or publish target that cannot be turned into commands. */
export class ShorthandError extends UsageError {
  constructor(message: string, readonly shorthand: string) {
    super(message);
  }
}

/** A cloud named in `publish_artifacts` has no (or an unusable) `clouds_cfgs` entry. */
export class CloudConfigError extends UsageError {
  constructor(message: string, readonly cloud: string) {
    super(message);
  }
}

/** An override whose write path cannot be computed (neither rpm nor tarball, bad type, ...). */
export class OverrideError extends UsageError {
  constructor(message: string, readonly uri: string) {
    super(message);
  }
}

/** A repo entry that cannot be written (bad name, no content, HTTP failure). */
export class RepoError extends UsageError {
  constructor(message: string, readonly path?: string) {
    super(message);
  }
}

/** `generate` (or a run without `--spec`) was given shorthands it cannot turn into stages. */
export class GenerateError extends ProblemListError {
  constructor(readonly problems: string[]) {
    super(problems);
  }
}
