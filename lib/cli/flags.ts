/**
 * Declarative command-line flags: every flag of the four scripts is one {@link FlagDef} row
 * (names, help, help group, parser, Gangplank's old spellings), and {@link addFlags} turns rows
 * into commander options. Old spellings are hidden from help and folded into the new flag with a
 * one-line note ({@link FoldedAliases}).
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { UsageError } from "../errors/mod.ts";

/** Help groups; each command shows only the groups that apply to it. */
export type FlagGroup =
  | "spec"
  | "generate"
  | "run"
  | "workers"
  | "local"
  | "podman"
  | "kube"
  | "relay";

/** Help headings of {@link FlagGroup}s. */
export const GROUP_TITLES: Readonly<Record<FlagGroup, string>> = {
  spec: "JobSpec (file, or generated from shorthands):",
  generate: "Generate:",
  run: "Run:",
  workers: "Workers (every backend):",
  local: "Backend local (workers are processes on this machine):",
  podman: "Backend podman (workers are containers, here or over SSH):",
  kube: "Backend kube (workers are Kubernetes/OpenShift pods):",
  relay: "Relay:",
};

/** An old (Gangplank) spelling of a flag: same value, or a boolean that sets a fixed value. */
export type OldName = string | { flag: string; sets: string };

/** One flag. */
export interface FlagDef {
  /** commander flags, e.g. `"-w, --work-dir <dir>"` or `"--dry-run"`. */
  flags: string;
  help: string;
  group: FlagGroup;
  /** Default value (shown in help). */
  default?: string | boolean;
  /** Repeatable: values collected into a list (`-A a -A b`). */
  repeat?: boolean;
  /** Allowed values. */
  choices?: readonly string[];
  /** Parses/validates one value (throw {@link UsageError}). */
  parse?: (value: string) => unknown;
  /** Gangplank's spellings, accepted but hidden from help: `"--workDir"`, `"-R"`. */
  old?: readonly OldName[];
}

/** Where each old spelling goes: `{ alias attribute → target attribute, old, new, sets }`. */
interface AliasInfo {
  attr: string;
  target: string;
  oldName: string;
  newName: string;
  sets?: string;
  repeat: boolean;
}

/** Old spellings registered on a command (see {@link addFlags}, {@link foldAliases}). */
export type FoldedAliases = AliasInfo[];

const collect = (v: string, prev: unknown) => [...((prev as string[] | undefined) ?? []), v];

function camel(long: string): string {
  return long.replace(/^-+/, "").replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The attribute name commander stores a flag under (`--work-dir` → `workDir`). */
export function attributeOf(def: FlagDef): string {
  return new Option(def.flags).attributeName();
}

/** The long name of a flag (`--work-dir`), or its short one. */
export function longNameOf(def: FlagDef): string {
  const o = new Option(def.flags);
  return o.long ?? o.short ?? def.flags;
}

/**
 * Adds the rows to `cmd` (help grouped by {@link GROUP_TITLES}), old spellings as hidden options.
 * Returns the old spellings, for {@link foldAliases}.
 */
export function addFlags(
  cmd: Command<[], Record<string, unknown>>,
  defs: readonly FlagDef[],
): FoldedAliases {
  const aliases: FoldedAliases = [];
  for (const d of defs) {
    const o = new Option(d.flags, d.help).helpGroup(GROUP_TITLES[d.group]);
    if (d.choices) o.choices(d.choices);
    if (d.repeat) {
      o.argParser(d.parse ? (v: string, p: unknown) => collect(d.parse!(v) as string, p) : collect);
    } else if (d.parse) o.argParser((v: string) => d.parse!(v));
    if (d.default !== undefined) {
      if (d.parse && typeof d.default === "string") o.default(d.parse(d.default), d.default);
      else o.default(d.default);
    }
    cmd.addOption(o);
    const valuePart = d.flags.match(/\s(<[^>]+>|\[[^\]]+\])$/)?.[1];
    for (const old of d.old ?? []) {
      const name = typeof old === "string" ? old : old.flag;
      const sets = typeof old === "string" ? undefined : old.sets;
      // A distinct attribute per alias, so its use is seen and folded with a note.
      const attr = `gpOld${camel(name).replace(/^./, (c) => c.toUpperCase())}`;
      const long = name.startsWith("--") ? name : `--gp-old-${name.replace(/^-+/, "")}`;
      const spec = name.startsWith("--") ? name : `${name}, ${long}`;
      const a = new Option(sets === undefined && valuePart ? `${spec} ${valuePart}` : spec)
        .hideHelp();
      a.attributeName = () => attr;
      if (sets === undefined && valuePart) {
        if (d.repeat) a.argParser(collect);
        if (d.choices) a.choices(d.choices);
      }
      cmd.addOption(a);
      aliases.push({
        attr,
        target: o.attributeName(),
        oldName: name,
        newName: sets === undefined ? (o.long ?? d.flags) : `${o.long} ${sets}`,
        sets,
        repeat: !!d.repeat,
      });
    }
  }
  return aliases;
}

/**
 * Moves the values given under old spellings to their flags (parsing them like the flag would)
 * and returns one note per old spelling used. Given both ways, the old spelling's value counts
 * (repeatable flags collect both).
 */
export function foldAliases(
  raw: Record<string, unknown>,
  aliases: FoldedAliases,
  defs: readonly FlagDef[],
): string[] {
  const notes: string[] = [];
  for (const a of aliases) {
    const v = raw[a.attr];
    if (v === undefined) continue;
    delete raw[a.attr];
    notes.push(`note: ${a.oldName} is an old spelling of ${a.newName}`);
    const def = defs.find((d) => attributeOf(d) === a.target);
    const parse = (s: unknown) => (def?.parse ? def.parse(String(s)) : s);
    if (a.sets !== undefined) raw[a.target] = parse(a.sets);
    else if (a.repeat) {
      raw[a.target] = [...((raw[a.target] as unknown[]) ?? []), ...(v as unknown[]).map(parse)];
    } else raw[a.target] = parse(v);
  }
  return notes;
}

/** Parses a Go-style duration (`90m`, `1h30m`, `45s`, `500ms`) or plain seconds, to ms. */
export function parseDuration(s: string): number {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
  let total = 0;
  let i = 0;
  while (i < t.length) {
    re.lastIndex = i;
    const m = re.exec(t);
    if (!m) throw new UsageError(`invalid duration ${JSON.stringify(s)} (e.g. 1h, 90m, 30s)`);
    const n = Number(m[1]);
    total += n * (m[2] === "h" ? 3_600_000 : m[2] === "m" ? 60_000 : m[2] === "s" ? 1000 : 1);
    i = re.lastIndex;
  }
  if (t === "" || total <= 0) {
    throw new UsageError(`invalid duration ${JSON.stringify(s)}: must be positive`);
  }
  return Math.round(total);
}

/** Parses `KEY=VALUE` (for `-e`); the key must be a shell variable name. */
export function parseKeyValue(flag: string, v: string): [string, string] {
  const eq = v.indexOf("=");
  const key = eq > 0 ? v.slice(0, eq) : "";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    throw new UsageError(`${flag} ${JSON.stringify(v)}: expected KEY=VALUE`);
  }
  return [key, v.slice(eq + 1)];
}

/** A positive integer flag value. */
export function positiveInt(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) {
      throw new UsageError(`${flag}: expected a positive integer, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

/** commander's error (message and captured stderr) as one line: `unknown option '--x' (did you mean --y?)`. */
export function commanderMessage(captured: string, e: unknown): string {
  const msg = (captured || (e as Error).message).trim().replace(/^error: /, "");
  return msg.split("\n").map((l) => l.trim()).filter(Boolean).join(" ")
    .replace("(Did you mean", "(did you mean");
}

/**
 * Parses `HOST[:PORT]` (IPv6 in brackets) for `flag`.
 *
 * @throws {UsageError} naming the flag for a malformed value or a port outside 1-65535.
 */
export function parseHostPort(value: string, flag: string): { host: string; port?: number } {
  const m = value.match(/^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/) ??
    value.match(/^([^:\s/\[\]]+)(?::(\d+))?$/);
  if (!m) throw new UsageError(`${flag} ${value}: expected HOST[:PORT]`);
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) {
    throw new UsageError(`${flag} ${value}: port must be 1-65535`);
  }
  return port === undefined ? { host: m[1] } : { host: m[1], port };
}

/**
 * Parses a numeric user/group id for `flag` (`none` too when `allowNone`).
 *
 * @throws {UsageError} naming the flag for anything else.
 */
export function parseId(value: string, flag: string, allowNone: boolean): number | "none" {
  if (allowNone && value === "none") return "none";
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 31 - 1) {
    throw new UsageError(`${flag} ${value}: expected a numeric id${allowNone ? " or none" : ""}`);
  }
  return Number(value);
}
