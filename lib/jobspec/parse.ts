/**
 * Strict JobSpec parsing: YAML (1.1, like Gangplank's yaml.v2) with node positions, type
 * checks against the field table, unknown keys with did-you-mean hints, and semantic checks
 * (stage ids, shorthands, kola tests, publish targets, repos, overrides, return files).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node as YamlNode,
  parseDocument,
  visit,
} from "yaml";
import { JobSpecError, type JobSpecIssue } from "./errors.ts";
import { closest } from "./suggest.ts";
import { DEFAULT_BUCKET, type FieldType, type JobSpec, JOBSPEC_TYPE } from "./types.ts";
import { checkSemantics } from "./semantics.ts";
export { buildIdProblem, jobBucketProblem, relativePathProblem } from "./semantics.ts";

/** Options of {@link parseJobSpec}. */
export interface ParseOptions {
  /** Name used in issue locations. Default `<jobspec>`. */
  file?: string;
  /** Unknown keys become warnings instead of errors. */
  lenient?: boolean;
}

/** Result of a successful parse. */
export interface ParseResult {
  /** The parsed, validated JobSpec. */
  spec: JobSpec;
  /** Problems tolerated because of `lenient` (unknown keys). */
  warnings: JobSpecIssue[];
}

/** Keys users plausibly write that Gangplank's JobSpec no longer (or never) had. */
const KNOWN_STALE: Record<string, string> = {
  oscontainer: "removed from the JobSpec; use publish_oscontainer",
  force_version: "removed from the JobSpec",
  command: "unknown key; did you mean commands?",
  direct_execution: "unknown key; did you mean direct_exec?",
  artifacts: "unknown key; did you mean build_artifacts?",
};

/**
 * Most text (in characters, plus one per node) that alias expansion may add to a JobSpec. An
 * anchored node reused many times (or aliases of aliases) can expand a small file into
 * gigabytes ("billion laughs"); a JobSpec that needs more than this is refused.
 */
export const MAX_ALIAS_EXPANSION = 1024 * 1024;

/**
 * Alias resolution in one pass over the document (each alias → the latest anchor of its name
 * before it), and the expanded size of every node, aliases included, memoised.
 */
class Aliases {
  readonly #target = new Map<YamlNode, YamlNode | undefined>();
  readonly #size = new Map<YamlNode, number>();
  readonly #inProgress = new Set<YamlNode>();

  constructor(doc: Document) {
    const anchors = new Map<string, YamlNode>();
    visit(doc, {
      Node: (_key, node) => {
        if (isAlias(node)) this.#target.set(node, anchors.get(node.source));
        else if (node.anchor) anchors.set(node.anchor, node);
      },
    });
  }

  /** The node an alias stands for (`undefined` when its anchor is not defined before it). */
  target(alias: YamlNode): YamlNode | undefined {
    return this.#target.get(alias);
  }

  /** Expanded size of `node`; `Infinity` for an alias that (indirectly) contains itself. */
  size(node: unknown): number {
    if (node == null || typeof node !== "object") return 1;
    if (isPair(node)) return this.size(node.key) + this.size(node.value);
    const n = node as YamlNode;
    const known = this.#size.get(n);
    if (known !== undefined) return known;
    if (this.#inProgress.has(n)) return Infinity;
    this.#inProgress.add(n);
    let total = 1;
    if (isAlias(n)) total = this.size(this.#target.get(n));
    else if (isScalar(n)) total += String(n.value ?? "").length;
    else if (isMap(n) || isSeq(n)) {
      for (const item of n.items) {
        total += this.size(item);
        if (total > MAX_ALIAS_EXPANSION) break; // enough to know it is too big
      }
    }
    this.#inProgress.delete(n);
    this.#size.set(n, total);
    return total;
  }
}

class Ctx {
  readonly errors: JobSpecIssue[] = [];
  readonly warnings: JobSpecIssue[] = [];
  readonly pos = new Map<string, { line: number; col: number }>();
  /** Text added by alias expansion so far (see {@link MAX_ALIAS_EXPANSION}). */
  expanded = 0;
  constructor(
    readonly file: string,
    readonly lc: LineCounter,
    readonly lenient: boolean,
    readonly aliases: Aliases,
  ) {}
  /**
   * The node an alias stands for, charged to the expansion budget.
   * @throws {JobSpecError} (that one problem alone) once the budget is spent, or for an alias
   * that contains itself: nothing more of the document is expanded.
   */
  resolve(alias: YamlNode, path: string): YamlNode | undefined {
    const target = this.aliases.target(alias);
    const size = this.aliases.size(target);
    this.expanded += size;
    if (this.expanded > MAX_ALIAS_EXPANSION) {
      const name = isAlias(alias) ? `*${alias.source}` : "an alias";
      const { line, col } = this.at(alias);
      throw new JobSpecError([{
        file: this.file,
        line,
        col,
        path,
        message: size === Infinity
          ? `alias ${name} refers to a node that contains it`
          : `alias ${name}: aliases expand this JobSpec beyond ${
            MAX_ALIAS_EXPANSION / 1024
          } KiB (an anchor reused too often); refusing to expand them`,
      }]);
    }
    return target;
  }
  at(node: YamlNode | undefined | null): { line: number; col: number } {
    const off = node?.range?.[0];
    if (off === undefined) return { line: 0, col: 0 };
    return this.lc.linePos(off);
  }
  error(path: string, where: { line: number; col: number }, message: string) {
    this.errors.push({ file: this.file, ...where, path, message });
  }
  warn(path: string, where: { line: number; col: number }, message: string) {
    this.warnings.push({ file: this.file, ...where, path, message });
  }
  /** Position recorded for `path`, or the closest recorded parent. */
  where(path: string): { line: number; col: number } {
    let p = path;
    for (;;) {
      const w = this.pos.get(p);
      if (w) return w;
      const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
      if (cut <= 0) return this.pos.get("") ?? { line: 1, col: 1 };
      p = p.slice(0, cut);
    }
  }
}

function describe(node: YamlNode | null | undefined): string {
  if (node == null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return "null";
    if (typeof v === "string") {
      return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
    }
    return String(v);
  }
  return "an unsupported node";
}

const KIND_NAMES: Record<FieldType["kind"], string> = {
  string: "a string",
  bool: "a boolean (true or false)",
  int: "an integer",
  number: "a number",
  list: "a list",
  object: "a mapping",
  any: "a value",
};

/** Converts one YAML node to a value of `type`; records issues; returns undefined on error. */
function convert(
  ctx: Ctx,
  raw: YamlNode | null | undefined,
  type: FieldType,
  path: string,
  depth: number,
): unknown {
  let node: YamlNode | null | undefined = raw;
  if (node && isAlias(node)) node = ctx.resolve(node, path);
  const where = ctx.at(raw ?? undefined);
  ctx.pos.set(path, where);
  if (node == null) return undefined;
  if (isScalar(node) && node.value === null) return undefined;
  if (depth > 20) {
    ctx.error(path, where, "nesting too deep");
    return undefined;
  }
  const bad = () => {
    ctx.error(path, where, `expected ${KIND_NAMES[type.kind]}, got ${describe(node)}`);
    return undefined;
  };
  switch (type.kind) {
    case "any":
      return node.toJSON();
    case "string": {
      if (!isScalar(node)) return bad();
      const v = node.value;
      let s: string;
      if (typeof v === "string") s = v;
      else if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") {
        // yaml.v2 decoded plain scalars such as 4.8 or yes into strings verbatim.
        s = typeof node.source === "string" ? node.source : String(v);
      } else return bad();
      if (type.oneOf) {
        const m = type.oneOf.find((o) => type.caseInsensitive ? o === s.toLowerCase() : o === s);
        if (m === undefined) {
          ctx.error(path, where, `expected one of ${type.oneOf.join(", ")}, got ${describe(node)}`);
          return undefined;
        }
        return m;
      }
      return s;
    }
    case "bool":
      if (!isScalar(node) || typeof node.value !== "boolean") return bad();
      return node.value;
    case "int":
    case "number": {
      if (!isScalar(node)) return bad();
      const v = typeof node.value === "bigint" ? Number(node.value) : node.value;
      if (typeof v !== "number" || !Number.isFinite(v)) return bad();
      if (type.kind === "int") {
        if (!Number.isSafeInteger(v)) return bad();
        if (type.min !== undefined && v < type.min) {
          ctx.error(path, where, `must be at least ${type.min}, got ${v}`);
          return undefined;
        }
      }
      return v;
    }
    case "list": {
      if (!isSeq(node)) return bad();
      const out: unknown[] = [];
      node.items.forEach((item, i) => {
        const v = convert(ctx, item as YamlNode, type.of, `${path}[${i}]`, depth + 1);
        if (v !== undefined) out.push(v);
      });
      return out;
    }
    case "object": {
      if (!isMap(node)) return bad();
      const out: Record<string, unknown> = {};
      const allowed = type.fields.map((f) => f.key);
      const seen = new Set<string>();
      for (const pair of node.items) {
        const keyNode = pair.key as YamlNode | null;
        const k = keyNode && isScalar(keyNode) ? keyNode.value : undefined;
        const kw = ctx.at(keyNode ?? undefined);
        if (typeof k !== "string") {
          ctx.error(path, kw, `keys must be strings, got ${describe(keyNode)}`);
          continue;
        }
        const sub = path ? `${path}.${safeKey(k)}` : safeKey(k);
        const field = type.fields.find((f) => f.key === k);
        if (!field) {
          const hint = KNOWN_STALE[k] ??
            (closest(k, allowed)
              ? `unknown key; did you mean ${closest(k, allowed)}?`
              : undefined) ??
            `unknown key (known keys: ${allowed.join(", ")})`;
          if (ctx.lenient) ctx.warn(sub, kw, `${hint}; ignored`);
          else ctx.error(sub, kw, hint);
          continue;
        }
        seen.add(k);
        const v = convert(ctx, pair.value as YamlNode | null, field.type, sub, depth + 1);
        if (v !== undefined) out[k] = v;
      }
      for (const fd of type.fields) {
        if (fd.required && !seen.has(fd.key)) {
          ctx.error(path, where, `missing required key ${fd.key}`);
        }
      }
      return out;
    }
  }
}

const MAX_ISSUES = 100;

/** Drops exact duplicates and caps the list (the last entry says how many were left out). */
function limitIssues(issues: JobSpecIssue[]): JobSpecIssue[] {
  const seen = new Set<string>();
  const out = issues.filter((i) => {
    const k = `${i.line}:${i.col}:${i.path}:${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  if (out.length <= MAX_ISSUES) return out;
  const rest = out.length - MAX_ISSUES;
  const last = out[MAX_ISSUES];
  return [...out.slice(0, MAX_ISSUES), {
    ...last,
    path: "",
    message: `... and ${rest} more problems`,
  }];
}

/** A key as shown in a path: plain when simple, JSON-quoted otherwise. */
function safeKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k.length > 60 ? `${k.slice(0, 60)}…` : k);
}

function cleanYamlMessage(m: string): string {
  if (m.includes("Maximum call stack")) return "the document is nested too deeply";
  const first = m.split("\n")[0];
  return first.replace(/ at line \d+, column \d+:?$/, "");
}

/**
 * Parses and validates a JobSpec. Every problem is collected; if any is an error, one
 * {@link JobSpecError} listing them all is thrown. Missing `job`, `recipe`, `minio` become `{}`
 * (with `minio.bucket` defaulting to `builder`), missing `stages` becomes `[]`.
 *
 * @throws {JobSpecError}
 * @example
 * const { spec } = parseJobSpec("stages:\n- id: b\n  build_artifacts: [base]\n", {});
 */
export function parseJobSpec(text: string, opts: ParseOptions = {}): ParseResult {
  const file = opts.file ?? "<jobspec>";
  const lc = new LineCounter();
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, {
      lineCounter: lc,
      version: "1.1",
      prettyErrors: true,
      uniqueKeys: true,
      keepSourceTokens: false,
    });
  } catch (e) {
    // The YAML library reports problems as errors; this is a last resort (e.g. stack exhaustion).
    const message = e instanceof RangeError
      ? "the document is nested too deeply"
      : `unreadable YAML: ${String((e as Error)?.message ?? e).split("\n")[0]}`;
    throw new JobSpecError([{ file, line: 1, col: 1, path: "", message }]);
  }
  const ctx = new Ctx(file, lc, !!opts.lenient, new Aliases(doc));
  for (const e of doc.errors) {
    const lp = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
    ctx.error("", { line: lp.line, col: lp.col }, cleanYamlMessage(e.message));
  }
  if (ctx.errors.length) throw new JobSpecError(limitIssues(ctx.errors));
  const root = doc.contents as YamlNode | null;
  ctx.pos.set("", { line: 1, col: 1 });
  if (root == null || (isScalar(root) && root.value === null)) {
    throw new JobSpecError([{ file, line: 1, col: 1, path: "", message: "the JobSpec is empty" }]);
  }
  const value = convert(ctx, root, JOBSPEC_TYPE, "", 0) as Partial<JobSpec> | undefined;
  const spec: JobSpec = {
    ...(value ?? {}),
    job: value?.job ?? {},
    recipe: value?.recipe ?? {},
    minio: value?.minio ?? {},
    stages: value?.stages ?? [],
  };
  if (spec.minio.bucket === undefined || spec.minio.bucket === "") {
    spec.minio.bucket = DEFAULT_BUCKET;
  }
  if (value) checkSemantics(ctx, spec);
  if (ctx.errors.length) {
    ctx.errors.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new JobSpecError(limitIssues(ctx.errors));
  }
  return { spec, warnings: ctx.warnings };
}

/**
 * Reads and parses a JobSpec file. Read errors (missing file, ...) become a JobSpecError at
 * `path:0:0`.
 *
 * @throws {JobSpecError}
 */
export async function loadJobSpec(
  path: string,
  opts: { lenient?: boolean; signal?: AbortSignal } = {},
): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(path, { encoding: "utf8", signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const msg = code === "ENOENT"
      ? "no such file"
      : code === "EISDIR"
      ? "is a directory"
      : String((e as Error).message);
    throw new JobSpecError([{
      file: path,
      line: 0,
      col: 0,
      path: "",
      message: `cannot read JobSpec: ${msg}`,
    }]);
  }
  return parseJobSpec(text, { file: path, lenient: opts.lenient });
}
