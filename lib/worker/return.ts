/**
 * The worker's return step: always after the stages (logs and metadata come back after a
 * failure too): the latest build's new artifacts, then its metadata, kola logs, and
 * builds.json (meta.json and builds.json merged by compare-and-swap); after a successful stage
 * its caches and `return_files`.
 *
 * @module
 */

import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { packTarGz } from "../archive/mod.ts";
import { type BuildsJSON, mergeBuilds, parseBuilds, readBuilds } from "../cosa/builds.ts";
import {
  type BuildInfo,
  type CosaMeta,
  deepMerge,
  isArtifactFile,
  isKnownBuildMeta,
  readLatestBuild,
} from "../cosa/meta.ts";
import type { Stage } from "../jobspec/mod.ts";
import { srvRelative } from "../workspec/workspec.ts";
import {
  artifactKey,
  BUILDS_JSON_KEY,
  CACHE_TARBALL_KEY,
  REPO_TARBALL_KEY,
  RETURN_FILES_DIR,
} from "../workspec/layout.ts";
import { confine, keyOf, sha256File, type WorkerContext } from "./context.ts";
import { casMergeJSON } from "../store/cas.ts";

/** True when `rel` was fetched and is still byte-identical. */
async function unchangedSinceFetch(ctx: WorkerContext, rel: string, abs: string): Promise<boolean> {
  const f = ctx.fetched.get(rel);
  if (!f) return false;
  const s = await stat(abs);
  if (s.size !== f.size) return false;
  if (s.mtimeMs === f.mtimeMs) return true;
  return (await sha256File(abs)) === f.sha256;
}

/** Uploads a file; `create`: only if nothing is at `key` yet (a new build's files). */
async function upload(
  ctx: WorkerContext,
  key: string,
  abs: string,
  create = false,
): Promise<boolean> {
  const { store, signal } = ctx;
  try {
    const size = (await stat(abs)).size;
    await store.putFile(ctx.ws.return.bucket, key, abs, {
      signal,
      ...(create ? { ifNoneMatch: true } : {}),
    });
    ctx.result.bytesOut += size;
    ctx.result.uploaded.push(key);
    ctx.log(`gangway: uploaded ${key} (${size} bytes)`);
    return true;
  } catch (e) {
    ctx.result.uploadErrors.push(`${key}: ${(e as Error).message}`);
    ctx.log(`gangway: upload of ${key} failed: ${(e as Error).message}`);
    return false;
  }
}

/** Returns the latest build, its logs and builds.json; problems go to `uploadErrors`. */
export async function returnBuild(ctx: WorkerContext): Promise<void> {
  const { ws, store, signal } = ctx;
  const bucket = ws.return.bucket;
  const buildsDir = join(ctx.srv, "builds");
  let build: BuildInfo | undefined;
  try {
    build = await readLatestBuild(buildsDir, ctx.arch);
  } catch (e) {
    ctx.result.uploadErrors.push(`reading the latest build: ${(e as Error).message}`);
    return;
  }
  const kolaLogs: string[] = [];
  try {
    for (const d of await readdir(join(ctx.srv, "tmp"), { withFileTypes: true })) {
      if (d.isFile() && d.name.includes("kola") && d.name.endsWith("tar.xz")) kolaLogs.push(d.name);
    }
  } catch { /* no tmp */ }
  const localBuilds = await readBuilds(buildsDir).catch(() => undefined);
  if (!build && !localBuilds) {
    ctx.log("gangway: no build to return");
    return;
  }
  try {
    await store.ensureBucket(bucket, { signal });
  } catch (e) {
    ctx.result.uploadErrors.push(`bucket ${bucket}: ${(e as Error).message}`);
    return;
  }
  if (build) {
    ctx.result.buildId = build.id;
    const relDir = `builds/${build.id}/${build.arch}`;
    // A build this worker did not receive is new: its files are only ever created (a stage's
    // credential may create files in any build dir but replace files only in its own build).
    const create = !ctx.fetched.has(`${relDir}/meta.json`);
    const artifacts: string[] = [];
    const metas: string[] = [];
    for (const d of await readdir(build.dir, { withFileTypes: true })) {
      if (!d.isFile()) continue;
      if (isKnownBuildMeta(d.name)) metas.push(d.name);
      else if (isArtifactFile(build.meta, d.name)) artifacts.push(d.name);
    }
    const names = Object.entries(build.meta.images ?? {});
    // Artifacts first, then metadata (so metadata never points at a missing object).
    for (const name of artifacts.sort()) {
      const abs = join(build.dir, name);
      const rel = `${relDir}/${name}`;
      if (await unchangedSinceFetch(ctx, rel, abs)) {
        ctx.log(`gangway: ${rel} unchanged since fetched, not uploading`);
        continue;
      }
      if (await upload(ctx, keyOf(ws, artifactKey(build.id, build.arch, name)), abs, create)) {
        for (const [img, a] of names) {
          if (a && typeof a.path === "string" && a.path.split("/").pop() === name) {
            ctx.result.artifactsReturned.push(img);
          }
        }
      }
    }
    for (
      const name of metas.sort((
        a,
        b,
      ) => (a === "meta.json" ? 1 : b === "meta.json" ? -1 : a.localeCompare(b)))
    ) {
      const abs = join(build.dir, name);
      const rel = `${relDir}/${name}`;
      if (await unchangedSinceFetch(ctx, rel, abs)) continue;
      const key = keyOf(ws, artifactKey(build.id, build.arch, name));
      if (name === "meta.json") {
        await returnMeta(ctx, key, abs, ctx.fetched.get(rel)?.json);
        continue;
      }
      await upload(ctx, key, abs, create);
    }
    for (const name of kolaLogs.sort()) {
      await upload(
        ctx,
        keyOf(ws, artifactKey(build.id, build.arch, `logs/${name}`)),
        join(ctx.srv, "tmp", name),
        create,
      );
    }
  }
  // builds.json last, merged with compare-and-swap writes (never a lost update).
  if (
    localBuilds &&
    !(await unchangedSinceFetch(ctx, "builds/builds.json", join(buildsDir, "builds.json")))
  ) {
    const key = keyOf(ws, BUILDS_JSON_KEY);
    const fetched = ctx.fetched.get("builds/builds.json")?.json;
    ctx.result.builds = newBuildEntries(
      fetched === undefined ? undefined : parseBuilds(fetched),
      localBuilds,
    );
    const holdsOurs = (v: unknown) => {
      const cur = v === undefined || v === null ? undefined : parseBuilds(v);
      return localBuilds.builds.every((b) => {
        const x = cur?.builds.find((e) => e.id === b.id);
        return x !== undefined && b.arches.every((a) => x.arches.includes(a));
      });
    };
    try {
      const r = await casMergeJSON({
        store,
        bucket,
        key,
        signal,
        merge: (cur) =>
          holdsOurs(cur) ? undefined : mergeBuilds(
            cur === undefined || cur === null ? undefined : parseBuilds(cur),
            localBuilds,
          ),
        verify: holdsOurs,
      });
      if (r.written) {
        ctx.result.bytesOut += r.bytes;
        ctx.result.uploaded.push(key);
      }
      ctx.log(
        `gangway: ${r.written ? "uploaded" : "already up to date:"} ${key} ` +
          `(${(r.value as { builds?: unknown[] })?.builds?.length ?? 0} build(s), merged` +
          (r.conflicts ? ` after ${r.conflicts} concurrent update(s)` : "") + ")",
      );
    } catch (e) {
      ctx.result.uploadErrors.push(`${key}: ${(e as Error).message}`);
      ctx.log(`gangway: upload of ${key} failed: ${(e as Error).message}`);
    }
  }
}

/** Entries of `local` (ids, or arches of an id) that `fetched` did not have. */
function newBuildEntries(
  fetched: BuildsJSON | undefined,
  local: BuildsJSON,
): { id: string; arches: string[] }[] {
  const out: { id: string; arches: string[] }[] = [];
  for (const b of local.builds) {
    const had = fetched?.builds.find((x) => x.id === b.id);
    const arches = had ? b.arches.filter((a) => !had.arches.includes(a)) : [...b.arches];
    if (!had || arches.length) out.push({ id: b.id, arches });
  }
  return out;
}

/**
 * Returns a build's meta.json with a compare-and-swap write. A meta.json we fetched and the
 * store still holds unchanged is replaced by ours; one a parallel worker updated meanwhile is
 * merged under ours (theirs first, ours wins on conflicts); a new one is created only if no
 * other worker created it first (then merged the same way).
 */
async function returnMeta(
  ctx: WorkerContext,
  key: string,
  abs: string,
  fetchedJson: unknown,
): Promise<void> {
  const { store, signal } = ctx;
  try {
    const local = JSON.parse(await readFile(abs, "utf8")) as CosaMeta;
    const r = await casMergeJSON({
      store,
      bucket: ctx.ws.return.bucket,
      key,
      signal,
      merge: (cur) => {
        if (cur === undefined || cur === null) return local;
        if (fetchedJson !== undefined && isDeepStrictEqual(cur, fetchedJson)) return local;
        const merged = deepMerge(cur as CosaMeta, local);
        return isDeepStrictEqual(merged, cur) ? undefined : merged;
      },
    });
    if (r.written) {
      ctx.result.bytesOut += r.bytes;
      ctx.result.uploaded.push(key);
    }
    ctx.log(
      `gangway: ${r.written ? "uploaded" : "already up to date:"} ${key}` +
        (r.conflicts ? ` (merged with ${r.conflicts} concurrent update(s))` : ""),
    );
  } catch (e) {
    ctx.result.uploadErrors.push(`${key}: ${(e as Error).message}`);
    ctx.log(`gangway: upload of ${key} failed: ${(e as Error).message}`);
  }
}

/** Returns a stage's caches and `return_files`; problems go to `uploadErrors`. */
export async function returnStageFiles(ctx: WorkerContext, stage: Stage): Promise<void> {
  const { ws, signal } = ctx;
  const tarball = async (what: string, srcRel: string, key: string) => {
    const src = join(ctx.srv, srcRel);
    try {
      if (!(await stat(src)).isDirectory()) throw new Error("not a directory");
    } catch {
      ctx.log(`gangway: warning: ${what}: ${srcRel} does not exist, nothing to return`);
      return;
    }
    const dest = join(ctx.scratch, `${what}-${crypto.randomUUID()}.tar.gz`);
    try {
      await ctx.store.ensureBucket(ws.return.bucket, { signal });
      const p = await packTarGz({
        root: ctx.srv,
        paths: [srcRel],
        dest,
        entryPrefix: "srv",
        signal,
      });
      ctx.log(`gangway: ${what}: packed ${p.entries} entries of ${srcRel}`);
      await upload(ctx, keyOf(ws, key), dest);
    } catch (e) {
      ctx.result.uploadErrors.push(`${keyOf(ws, key)}: ${(e as Error).message}`);
    } finally {
      await rm(dest, { force: true }).catch(() => {});
    }
  };
  if (stage.return_cache) await tarball("return_cache", "cache", CACHE_TARBALL_KEY);
  if (stage.return_cache_repo) await tarball("return_cache_repo", "tmp/repo", REPO_TARBALL_KEY);
  for (const f of stage.return_files ?? []) {
    const rel = srvRelative(f);
    if (rel === undefined || rel === "") {
      ctx.result.uploadErrors.push(`return_files ${JSON.stringify(f)}: escapes the srv dir`);
      continue;
    }
    let abs: string;
    try {
      abs = await confine(ctx, rel);
      const files = await filesBelow(ctx, abs, rel);
      if (files.length === 0) throw new Error("no such file");
      await ctx.store.ensureBucket(ws.return.bucket, { signal });
      for (const [fileRel, fileAbs] of files) {
        await upload(ctx, keyOf(ws, `${RETURN_FILES_DIR}/${fileRel}`), fileAbs);
      }
    } catch (e) {
      ctx.result.uploadErrors.push(`return_files ${JSON.stringify(f)}: ${(e as Error).message}`);
    }
  }
}

/** Regular files at or below `abs` (confined to srv), as [relative path, absolute path]. */
async function filesBelow(
  ctx: WorkerContext,
  abs: string,
  rel: string,
): Promise<[string, string][]> {
  const s = await stat(abs);
  await confine(ctx, rel); // resolves symlinks: refuses links out of srv
  if (s.isFile()) return [[rel, abs]];
  if (!s.isDirectory()) return [];
  const out: [string, string][] = [];
  for (
    const d of (await readdir(abs, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name)
    )
  ) {
    if (d.isFile() || d.isDirectory() || d.isSymbolicLink()) {
      out.push(...await filesBelow(ctx, join(abs, d.name), `${rel}/${d.name}`));
    }
  }
  return out;
}
