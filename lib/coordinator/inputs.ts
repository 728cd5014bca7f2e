/**
 * Dependency resolution against the object store (reference §4.4, with §12.1.1/2/10/11 fixed):
 * `builds.json` → latest build for the arch → `meta.json` merged with its own `meta.*.json`
 * fragments → required/requested artifacts (the object must exist with the size meta.json
 * gives), caches at `[prefix/]cache/cache.tar.gz|repo.tar.gz` in the job bucket, the known
 * metadata files of that build only (exact `<id>/<arch>/` prefix), `builds.json`, and the
 * `copy-build` metadata.
 *
 * @module
 */

import { artifactOf, type CosaArtifact, latestBuild } from "../cosa/mod.ts";
import type { Readiness } from "./schedule.ts";
import { type BuildView, StoreView } from "./store_view.ts";
import {
  artifactKey,
  BUILDS_JSON_KEY,
  CACHE_TARBALL_KEY,
  objectKey,
  REPO_TARBALL_KEY,
} from "../workspec/layout.ts";

/** The read side of the object store the coordinator needs. */
export interface StoreReader {
  /** Parsed JSON of an object, or `undefined` when it does not exist. */
  getJSON(bucket: string, key: string, opts: { signal: AbortSignal }): Promise<unknown>;
  /** Size of an object, or `undefined` when it does not exist. */
  stat(
    bucket: string,
    key: string,
    opts: { signal: AbortSignal },
  ): Promise<{ size: number } | undefined>;
  /** Every object whose key starts with `prefix` (recursive). */
  list(
    bucket: string,
    prefix: string,
    opts: { signal: AbortSignal },
  ): Promise<{ key: string; size: number }[]>;
}

/** One file the worker must fetch (mapped to the WorkSpec's remote file by the coordinator). */
export interface InputFile {
  bucket: string;
  /** Object key (with the key prefix). */
  object: string;
  /** Destination relative to the worker's `/srv` (e.g. `builds/<id>/<arch>/x.qcow2`). */
  path: string;
  /** Verification data for artifacts. */
  artifact?: CosaArtifact & { name: string };
  /** A cache tarball to extract (below the worker's `/srv`). */
  compressed?: boolean;
  size?: number;
}

/** What one stage waits for and optionally receives. */
export interface StageNeeds {
  requireArtifacts: string[];
  requestArtifacts: string[];
  requireCache: boolean;
  requestCache: boolean;
  requireCacheRepo: boolean;
  requestCacheRepo: boolean;
}

/** Where the job's objects live. */
export interface JobLocation {
  bucket: string;
  /** `minio.key_prefix` without leading/trailing slashes ("" for none). */
  keyPrefix: string;
  arch: string;
  /** `copy-build`: a build whose metadata every stage receives (must exist). */
  copyBuild?: string;
}

/** The resolved inputs of a stage. */
export interface StageInputs {
  files: InputFile[];
  /** Latest build id for the arch when the stage was resolved. */
  buildId?: string;
}

/** Joins the key prefix and a key (lib/workspec's `objectKey`). */
export function keyOf(loc: Pick<JobLocation, "keyPrefix">, key: string): string {
  return objectKey(loc.keyPrefix, key);
}

/**
 * Checks a stage's dependencies once. Ready: every file to send. Not ready: a readable list
 * of what is missing (`artifact "qemu" (build 1.0 x86_64)`, `cache "cache.tar.gz"`, ...).
 * `opts.view`: a reading of `store` shared with the checks that start at the same moment
 * (lib/coordinator/store_view.ts; its reads take its own signal); default: this check's own.
 */
export async function resolveStageInputs(
  store: StoreReader,
  loc: JobLocation,
  needs: StageNeeds,
  opts: { signal: AbortSignal; view?: StoreView },
): Promise<Readiness<StageInputs>> {
  const reads = opts.view ?? new StoreView(store, loc, opts.signal);
  const missing: string[] = [];
  const files: InputFile[] = [];
  const builds = await reads.builds();
  const latest = latestBuild(builds, loc.arch);
  let view: BuildView | undefined;
  if (latest) {
    view = await reads.build(latest.id);
    files.push(...view.files);
  }
  if (builds) {
    files.push({
      bucket: loc.bucket,
      object: keyOf(loc, BUILDS_JSON_KEY),
      path: "builds/builds.json",
    });
  }
  if (loc.copyBuild && loc.copyBuild !== latest?.id) {
    const entry = builds?.builds.find((b) => b.id === loc.copyBuild);
    if (!entry) missing.push(`copy-build "${loc.copyBuild}"`);
    else files.push(...(await reads.build(loc.copyBuild)).files);
  }

  const addArtifact = async (name: string, required: boolean) => {
    const where = latest ? ` (build ${latest.id} ${loc.arch})` : ` (no build for ${loc.arch})`;
    const a = view?.meta ? artifactOf(view.meta, name) : undefined;
    if (!a || !view) {
      if (required) missing.push(`artifact "${name}"${where}`);
      return;
    }
    const base = a.path.slice(a.path.lastIndexOf("/") + 1);
    const key = keyOf(loc, artifactKey(view.id, loc.arch, base));
    const st = await reads.stat(key);
    if (!st || (a.size !== undefined && st.size !== a.size)) {
      if (required) missing.push(`artifact "${name}" object ${key}${where}`);
      return;
    }
    const img = view.meta!.images![name];
    const artifact: NonNullable<InputFile["artifact"]> = { name, path: base, sha256: a.sha256 };
    if (a.size !== undefined) artifact.size = a.size;
    for (const k of ["uncompressed-sha256", "uncompressed-size", "skip-compression"] as const) {
      if (img[k] !== undefined) (artifact as Record<string, unknown>)[k] = img[k];
    }
    files.push({
      bucket: loc.bucket,
      object: key,
      path: `builds/${view.id}/${loc.arch}/${base}`,
      artifact,
      size: st.size,
    });
  };
  const seen = new Set<string>();
  for (const n of needs.requireArtifacts) {
    if (!seen.has(n)) await addArtifact(n, true);
    seen.add(n);
  }
  for (const n of needs.requestArtifacts) {
    if (!seen.has(n)) await addArtifact(n, false);
    seen.add(n);
  }

  const addCache = async (tarballKey: string, required: boolean, requested: boolean) => {
    if (!required && !requested) return;
    const tarball = tarballKey.slice(tarballKey.lastIndexOf("/") + 1);
    const key = keyOf(loc, tarballKey);
    const st = await reads.stat(key);
    if (!st) {
      if (required) missing.push(`cache "${tarball}" (${loc.bucket}/${key})`);
      return;
    }
    files.push({
      bucket: loc.bucket,
      object: key,
      path: tarballKey,
      compressed: true,
      size: st.size,
    });
  };
  await addCache(CACHE_TARBALL_KEY, needs.requireCache, needs.requestCache);
  await addCache(REPO_TARBALL_KEY, needs.requireCacheRepo, needs.requestCacheRepo);

  if (missing.length > 0) return { ready: false, missing };
  // One entry per destination (a later duplicate, e.g. copy-build == latest, is dropped).
  const byPath = new Map<string, InputFile>();
  for (const f of files) if (!byPath.has(f.path)) byPath.set(f.path, f);
  return {
    ready: true,
    inputs: { files: [...byPath.values()], ...(latest ? { buildId: latest.id } : {}) },
  };
}
