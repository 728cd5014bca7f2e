/**
 * cosa's per-build `meta.json`: the fields Gangplank and templates use, artifacts, the list of
 * "known" build metadata files, and the delayed merge of `meta.<x>.json` fragments.
 *
 * @module
 */

import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  CosaFormatError,
  latestBuild,
  normalizeArch,
  readBuilds,
  UnsafeNameError,
} from "./builds.ts";
import { CONTROL_CHARS, pathSegmentProblem } from "../names/mod.ts";

/** One entry of `meta.json`'s `images` map. */
export interface CosaArtifact {
  path: string;
  sha256: string;
  size?: number;
  "uncompressed-sha256"?: string;
  "uncompressed-size"?: number;
  "skip-compression"?: boolean;
  [key: string]: unknown;
}

/**
 * A build's `meta.json`. Only the fields gangplank reads are typed; every other field is kept
 * as-is (cosa adds fields over time, and they must never make a build invisible).
 */
export interface CosaMeta {
  buildid: string;
  name?: string;
  "ostree-commit"?: string;
  "ostree-version"?: string;
  "ostree-timestamp"?: string;
  "coreos-assembler.basearch"?: string;
  "coreos-assembler.build-timestamp"?: string;
  "coreos-assembler.delayed-meta-merge"?: boolean;
  "coreos-assembler.meta-stamp"?: number;
  images?: Record<string, CosaArtifact>;
  [key: string]: unknown;
}

/** An artifact of a build, as the worker and coordinator move it around. */
export interface ArtifactInfo {
  /** The `images` key (`qemu`, `metal4k`, `live-iso`, ...). */
  name: string;
  /** File name relative to `builds/<id>/<arch>/`. */
  path: string;
  sha256: string;
  size?: number;
}

const META_JSON_RE = /^meta\.(json|.*\.json)$/;

/** True for `meta.json` and `meta.<x>.json` base names (cosa's `IsMetaJSON`). */
export function isMetaJSON(name: string): boolean {
  return META_JSON_RE.test(basename(name));
}

/**
 * True for the build metadata files that are shipped to workers and returned by them:
 * `meta.json`, `meta.*.json`, `builds.json`, `commitmeta.json`, `ostree-commit-object`,
 * `coreos-assembler-config-git.json` and `manifest-lock.generated*`.
 */
export function isKnownBuildMeta(name: string): boolean {
  const b = basename(name);
  return isMetaJSON(b) || b === "builds.json" || b === "commitmeta.json" ||
    b === "ostree-commit-object" || b === "coreos-assembler-config-git.json" ||
    b.startsWith("manifest-lock.generated");
}

/**
 * The artifacts declared in `meta.images` that have a non-empty path, sorted by name. An
 * artifact's path must be a plain file name (cosa writes nothing else) and its name must have
 * no control characters: meta.json comes from the job bucket and both end up in paths and logs.
 * @throws {UnsafeNameError} for an artifact whose path or name is unsafe.
 */
export function artifactsOf(meta: CosaMeta | undefined, file = "meta.json"): ArtifactInfo[] {
  const images = meta?.images;
  if (!images || typeof images !== "object") return [];
  const out: ArtifactInfo[] = [];
  for (const [name, a] of Object.entries(images)) {
    if (!a || typeof a !== "object" || typeof a.path !== "string" || a.path === "") continue;
    if (CONTROL_CHARS.test(name)) {
      throw new UnsafeNameError(file, "images key", name, "contains a control character");
    }
    const problem = pathSegmentProblem(a.path);
    if (problem) throw new UnsafeNameError(file, `images.${name}.path`, a.path, problem);
    const info: ArtifactInfo = { name, path: a.path, sha256: String(a.sha256 ?? "") };
    if (typeof a.size === "number") info.size = a.size;
    out.push(info);
  }
  return out.sort((x, y) => x.name.localeCompare(y.name));
}

/** The artifact named `name` (cosa's `GetArtifact`: only when its path is non-empty). */
export function artifactOf(meta: CosaMeta | undefined, name: string): ArtifactInfo | undefined {
  return artifactsOf(meta).find((a) => a.name === name);
}

/** True when `fileName` (a base name) is the path of one of the build's artifacts. */
export function isArtifactFile(meta: CosaMeta | undefined, fileName: string): boolean {
  const b = basename(fileName);
  return artifactsOf(meta).some((a) => basename(a.path) === b);
}

/**
 * Parses `meta.json` text loosely: it must be a JSON object with a non-empty `buildid`; every
 * other field passes through. (Strict schema checks live in {@link validateMeta}.)
 * @throws {CosaFormatError}
 */
export function parseMeta(text: string, file = "meta.json"): CosaMeta {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CosaFormatError(file, `invalid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new CosaFormatError(file, "not a JSON object");
  }
  const m = v as CosaMeta;
  if (typeof m.buildid !== "string" || m.buildid === "") {
    throw new CosaFormatError(file, "`buildid` is missing or empty");
  }
  if (m.images !== undefined && (typeof m.images !== "object" || Array.isArray(m.images))) {
    throw new CosaFormatError(file, "`images` is not an object");
  }
  return m;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

/** Deep merge: objects are merged key by key, everything else from `over` replaces `base`. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return structuredClone(over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const value = Object.hasOwn(out, k) && isPlainObject(out[k]) && isPlainObject(v)
      ? deepMerge(out[k], v)
      : structuredClone(v);
    // A data property even for "__proto__" (JSON may hold that key): never a prototype change.
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}

function stampOf(m: unknown): number {
  const s = isPlainObject(m) ? m["coreos-assembler.meta-stamp"] : undefined;
  return typeof s === "number" && Number.isFinite(s) ? s : 0;
}

/**
 * The delayed meta merge: `meta.json` plus its `meta.<x>.json` fragments, deep-merged in
 * `coreos-assembler.meta-stamp` order so that the newest value of a field wins (fragments
 * without a stamp count as oldest; ties keep the given order, base first). The result's stamp
 * is the newest one seen. Pure: inputs are not modified.
 */
export function mergeMetaFragments(base: CosaMeta, fragments: readonly unknown[]): CosaMeta {
  const all = [{ m: base, i: 0 }, ...fragments.map((m, k) => ({ m, i: k + 1 }))]
    .filter((x) => isPlainObject(x.m))
    .sort((x, y) => stampOf(x.m) - stampOf(y.m) || x.i - y.i);
  let out = {} as CosaMeta;
  for (const { m } of all) out = deepMerge(out, m);
  const newest = Math.max(...all.map((x) => stampOf(x.m)));
  if (newest > 0) out["coreos-assembler.meta-stamp"] = newest;
  if (!out.buildid) out.buildid = base.buildid;
  return out;
}

/** A build read from disk: its id, arch and (merged) metadata. */
export interface BuildInfo {
  id: string;
  arch: string;
  /** `<buildsDir>/<id>/<arch>` */
  dir: string;
  meta: CosaMeta;
  /** Names of the `meta.<x>.json` fragments merged in (delayed merge), sorted. */
  fragments: string[];
}

/**
 * Reads `<buildsDir>/<id>/<arch>/meta.json`; when it has `coreos-assembler.delayed-meta-merge:
 * true`, the `meta.<x>.json` fragments of that same directory (only) are merged in memory.
 * @throws {UnsafeNameError} when `id`, `arch` or an artifact's path is not a safe name.
 * @throws {CosaFormatError} when meta.json or a fragment is not valid JSON.
 */
export async function readBuildMeta(
  buildsDir: string,
  id: string,
  arch: string,
): Promise<BuildInfo> {
  const a = normalizeArch(arch);
  for (const [field, value] of [["build id", id], ["arch", a]]) {
    const problem = pathSegmentProblem(value);
    if (problem) throw new UnsafeNameError(join(buildsDir, "builds.json"), field, value, problem);
  }
  const dir = join(buildsDir, id, a);
  const file = join(dir, "meta.json");
  const base = parseMeta(await readFile(file, "utf8"), file);
  const fragments: string[] = [];
  let meta = base;
  if (base["coreos-assembler.delayed-meta-merge"] === true) {
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isFile() && d.name !== "meta.json" && isMetaJSON(d.name))
      .map((d) => d.name)
      .sort();
    const parsed: unknown[] = [];
    for (const n of names) {
      const f = join(dir, n);
      try {
        parsed.push(JSON.parse(await readFile(f, "utf8")));
      } catch (e) {
        throw new CosaFormatError(f, `invalid JSON: ${(e as Error).message}`);
      }
      fragments.push(n);
    }
    meta = mergeMetaFragments(base, parsed);
  }
  artifactsOf(meta, file); // refuses unsafe artifact names and paths now, not when used
  return { id, arch: a, dir, meta, fragments };
}

/**
 * The latest build for `arch` under `buildsDir` (first `builds.json` entry listing the arch),
 * with its metadata (delayed merge applied). `undefined` when there is no builds.json, no
 * build for the arch, or its meta.json is missing.
 */
export async function readLatestBuild(
  buildsDir: string,
  arch: string,
): Promise<BuildInfo | undefined> {
  const builds = await readBuilds(buildsDir);
  const entry = latestBuild(builds, arch);
  if (!entry) return undefined;
  try {
    return await readBuildMeta(buildsDir, entry.id, arch);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}
