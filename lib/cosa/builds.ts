/**
 * `builds.json`, cosa's index of builds (newest first), and the architecture names cosa uses.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../toolkit/fs.ts";
import { join } from "node:path";
import { GangplankError } from "../errors/mod.ts";
import { pathSegmentProblem } from "../names/mod.ts";

/** One entry of `builds.json`: a build id and the architectures it was built for. */
export interface BuildEntry {
  id: string;
  arches: string[];
}

/** The `builds.json` document: `{ "schema-version", builds: [...], timestamp }`, newest first. */
export interface BuildsJSON {
  "schema-version": string;
  builds: BuildEntry[];
  timestamp: string;
  /** Unknown fields are kept as they are. */
  [key: string]: unknown;
}

/** A `builds.json` (or `meta.json`) that cannot be parsed or has the wrong shape. */
export class CosaFormatError extends GangplankError {
  constructor(readonly file: string, readonly detail: string) {
    super(`${file}: ${detail}`);
  }
}

/** Schema version cosa writes into new `builds.json` files. */
export const BUILDS_SCHEMA_VERSION = "1.0.0";

/**
 * Maps Go/Node/uname architecture names to cosa's: `amd64`/`x64` → `x86_64`,
 * `arm64` → `aarch64`; anything else is returned unchanged (`ppc64le`, `s390x`).
 */
export function normalizeArch(arch: string): string {
  switch (arch) {
    case "amd64":
    case "x64":
    case "x86-64":
      return "x86_64";
    case "arm64":
      return "aarch64";
    case "ppc64":
      return "ppc64le";
    default:
      return arch;
  }
}

/** An empty `builds.json` document. */
export function emptyBuilds(): BuildsJSON {
  return {
    "schema-version": BUILDS_SCHEMA_VERSION,
    builds: [],
    timestamp: new Date().toISOString(),
  };
}

/**
 * A build id or architecture that cannot be used as a path segment (`"../../x/evil"`, an
 * absolute path, a control character, an empty string): `builds.json` comes from the job
 * bucket, which stages write to, so it is refused before anything joins it into a path.
 */
export class UnsafeNameError extends CosaFormatError {
  constructor(file: string, readonly field: string, readonly value: string, problem: string) {
    super(file, `${field} ${JSON.stringify(value)} ${problem}: refusing to use it as a path`);
  }
}

/**
 * Validates a parsed `builds.json` value and returns a fresh, normalised copy (arches
 * normalised, legacy string entries `"id"` accepted as `{ id, arches: [] }`). Every build id
 * and arch must be one safe path segment.
 * @throws {UnsafeNameError} for a build id or arch that is not a safe path segment.
 * @throws {CosaFormatError} when the shape is wrong.
 */
export function parseBuilds(value: unknown, file = "builds.json"): BuildsJSON {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new CosaFormatError(file, "not a JSON object");
  }
  const v = value as Record<string, unknown>;
  const raw = v.builds ?? [];
  if (!Array.isArray(raw)) throw new CosaFormatError(file, "`builds` is not an array");
  const safe = (field: string, value: string) => {
    const problem = pathSegmentProblem(value);
    if (problem) throw new UnsafeNameError(file, field, value, problem);
    return value;
  };
  const builds: BuildEntry[] = raw.map((b, i) => {
    if (typeof b === "string" && b !== "") return { id: safe(`builds[${i}]`, b), arches: [] };
    if (!b || typeof b !== "object") {
      throw new CosaFormatError(file, `builds[${i}] is not an object`);
    }
    const e = b as Record<string, unknown>;
    if (typeof e.id !== "string" || e.id === "") {
      throw new CosaFormatError(file, `builds[${i}].id is not a non-empty string`);
    }
    const arches = e.arches ?? [];
    if (!Array.isArray(arches) || arches.some((a) => typeof a !== "string")) {
      throw new CosaFormatError(file, `builds[${i}].arches is not a list of strings`);
    }
    return {
      ...e,
      id: safe(`builds[${i}].id`, e.id),
      arches: (arches as string[]).map((a, j) =>
        safe(`builds[${i}].arches[${j}]`, normalizeArch(a))
      ),
    };
  });
  return {
    ...v,
    "schema-version": typeof v["schema-version"] === "string"
      ? v["schema-version"]
      : BUILDS_SCHEMA_VERSION,
    builds,
    timestamp: typeof v.timestamp === "string" ? v.timestamp : "",
  };
}

/**
 * Reads `<dir>/builds.json`. Returns `undefined` when the file does not exist.
 * @throws {CosaFormatError} when it exists but is not a valid builds.json.
 */
export async function readBuilds(dir: string): Promise<BuildsJSON | undefined> {
  const file = join(dir, "builds.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CosaFormatError(file, `invalid JSON: ${(e as Error).message}`);
  }
  return parseBuilds(value, file);
}

/** Writes `<dir>/builds.json` atomically (temp file + rename), 4-space indented like cosa. */
export async function writeBuilds(dir: string, builds: BuildsJSON): Promise<void> {
  await writeFileAtomic(join(dir, "builds.json"), JSON.stringify(builds, null, 4) + "\n", {
    mode: 0o644,
  });
}

/**
 * The newest build (first entry) that lists `arch` (normalised). `undefined` when none does.
 * @example latestBuild(builds, "amd64")?.id // "32.20201030.dev.0"
 */
export function latestBuild(
  builds: BuildsJSON | undefined,
  arch: string,
): BuildEntry | undefined {
  if (!builds) return undefined;
  const a = normalizeArch(arch);
  return builds.builds.find((b) => b.arches.includes(a));
}

/** Natural comparison of build ids (`...dev.10` > `...dev.9`). */
export function compareBuildIds(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/**
 * Union of two `builds.json` documents, newest first: builds from parallel workers are merged
 * (arches united), never dropped. The relative order of each input is kept; where the inputs do
 * not constrain the order (a build only one side has, next to one only the other has), the
 * larger build id (natural order) comes first. `timestamp` is the later of the two.
 */
export function mergeBuilds(a: BuildsJSON | undefined, b: BuildsJSON | undefined): BuildsJSON {
  if (!a && !b) return emptyBuilds();
  if (!a) return parseBuilds(b);
  if (!b) return parseBuilds(a);
  const byId = new Map<string, BuildEntry>();
  const add = (e: BuildEntry) => {
    const prev = byId.get(e.id);
    if (!prev) byId.set(e.id, { ...e, arches: [...e.arches] });
    else {
      for (const arch of e.arches) if (!prev.arches.includes(arch)) prev.arches.push(arch);
    }
  };
  a.builds.forEach(add);
  b.builds.forEach(add);
  const ia = a.builds.map((e) => e.id);
  const ib = b.builds.map((e) => e.id);
  const out: string[] = [];
  const done = new Set<string>();
  let i = 0;
  let j = 0;
  while (i < ia.length || j < ib.length) {
    if (i < ia.length && done.has(ia[i])) {
      i++;
      continue;
    }
    if (j < ib.length && done.has(ib[j])) {
      j++;
      continue;
    }
    let pick: string;
    if (i >= ia.length) pick = ib[j++];
    else if (j >= ib.length) pick = ia[i++];
    else if (ia[i] === ib[j]) {
      pick = ia[i++];
      j++;
    } else if (ib.indexOf(ia[i], j) > j) pick = ib[j++]; // b orders b[j] before a[i]
    else if (ia.indexOf(ib[j], i) > i) pick = ia[i++]; // a orders a[i] before b[j]
    else if (compareBuildIds(ia[i], ib[j]) >= 0) pick = ia[i++];
    else pick = ib[j++];
    done.add(pick);
    out.push(pick);
  }
  const ts = [a.timestamp, b.timestamp].filter((t) => t).sort();
  return {
    ...a,
    ...b,
    "schema-version": b["schema-version"] || a["schema-version"] || BUILDS_SCHEMA_VERSION,
    builds: out.map((id) => byId.get(id)!),
    timestamp: ts.length ? ts[ts.length - 1] : "",
  };
}

/** Returns a copy of `builds` with `id` for `arch` inserted as the newest build. */
export function addBuild(builds: BuildsJSON | undefined, id: string, arch: string): BuildsJSON {
  const base = builds ? parseBuilds(builds) : emptyBuilds();
  const a = normalizeArch(arch);
  const existing = base.builds.find((b) => b.id === id);
  const rest = base.builds.filter((b) => b.id !== id);
  const arches = existing ? existing.arches : [];
  if (!arches.includes(a)) arches.push(a);
  return { ...base, builds: [{ id, arches }, ...rest], timestamp: new Date().toISOString() };
}
