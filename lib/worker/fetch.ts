/**
 * The worker's fetch step: remote files (verified, atomic, confined to srv; tarballs
 * extracted), `.repo` files into `src/config`, and the `builds/latest` symlink.
 *
 * @module
 */

import { lstat, mkdir, readFile, readlink, rename, rm, stat, symlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { extractTarGz } from "../archive/mod.ts";
import type { FetchLike, Repo } from "../jobspec/mod.ts";
import { repoFileName, writeRepoFile } from "../jobspec/repo.ts";
import { remoteFileTarget, type WorkSpec } from "../workspec/workspec.ts";
import { confine, failWith, type Fetched, sha256File, type WorkerContext } from "./context.ts";

/**
 * Fetches every remote file of the WorkSpec. False (after recording the failure) when one
 * could not be fetched.
 */
export async function fetchRemoteFiles(ctx: WorkerContext): Promise<boolean> {
  for (const [i, rf] of ctx.ws.remotefiles.entries()) {
    if (ctx.signal.aborted) break;
    const what = `remotefiles[${i}] ${rf.bucket}/${rf.object}`;
    try {
      await fetchRemote(ctx, rf);
    } catch (e) {
      if (ctx.signal.aborted) break;
      failWith(ctx, 1, `fetching ${what}: ${(e as Error).message}`);
      return false;
    }
  }
  return true;
}

/** Writes the recipe's `.repo` files into `src/config`; false after recording a failure. */
export async function writeRepoFiles(
  ctx: WorkerContext,
  repos: readonly Repo[],
  fetch: FetchLike | undefined,
): Promise<boolean> {
  if (!repos.length || ctx.signal.aborted) return true;
  const dir = await confine(ctx, "src/config");
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const [i, r] of repos.entries()) {
    try {
      await rm(join(dir, repoFileName(r)), { force: true });
      const p = await writeRepoFile(r, dir, { fetch, signal: ctx.signal });
      ctx.log(`gangway: wrote ${relative(ctx.srv, p)}`);
    } catch (e) {
      failWith(ctx, 1, `recipe.repos[${i}]: ${(e as Error).message}`);
      return false;
    }
  }
  return true;
}

/** Points `builds/latest` at `id` (atomically; a real directory named latest is left alone). */
export async function updateLatestLink(ctx: WorkerContext, id: string): Promise<void> {
  const link = join(ctx.srv, "builds", "latest");
  try {
    const l = await lstat(link);
    if (l.isSymbolicLink() && (await readlink(link)) === id) return;
    if (!l.isSymbolicLink()) return; // a real directory named latest: leave it alone
  } catch { /* missing */ }
  const tmp = `${link}.tmp-${crypto.randomUUID()}`;
  await symlink(id, tmp);
  await rename(tmp, link);
}

async function fetchRemote(ctx: WorkerContext, rf: WorkSpec["remotefiles"][number]): Promise<void> {
  const { store, signal } = ctx;
  const expect = rf.artifact
    ? { sha256: rf.artifact.sha256, size: rf.artifact.size, name: rf.artifact.name }
    : undefined;
  if (rf.compressed) {
    const tmp = join(ctx.scratch, `fetch-${crypto.randomUUID()}.tar.gz`);
    const r = await store.fetchFile(rf.bucket, rf.object, tmp, { signal, expect });
    ctx.result.bytesIn += r.bytes;
    ctx.result.filesFetched++;
    const rel = rf.force_extract_path ?? "";
    const root = await confine(ctx, rel);
    // At the srv root, tarballs hold `srv/...` entries (Gangplank's `tar -cf x /srv/cache`).
    const x = await extractTarGz(tmp, root, {
      signal,
      ...(rel === "" ? { stripPrefix: "srv" } : {}),
      ...(ctx.extractMaxBytes !== undefined ? { maxBytes: ctx.extractMaxBytes } : {}),
    });
    ctx.log(
      `gangway: extracted ${rf.bucket}/${rf.object} (${r.bytes} bytes, ${x.files} files) into ` +
        `${rel === "" ? "srv" : rel}`,
    );
    await rm(tmp, { force: true });
    return;
  }
  const rel = remoteFileTarget(rf);
  const dest = await confine(ctx, rel);
  await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
  await confine(ctx, rel); // the parent now exists: re-check it is not a symlink out of srv
  const r = await store.fetchFile(rf.bucket, rf.object, dest, { signal, expect });
  ctx.result.bytesIn += r.bytes;
  if (r.skipped) ctx.result.filesSkipped++;
  else ctx.result.filesFetched++;
  const s = await stat(dest);
  const info: Fetched = {
    sha256: rf.artifact?.sha256 ?? await sha256File(dest),
    size: s.size,
    mtimeMs: s.mtimeMs,
  };
  if (rel.endsWith("/meta.json") || rel === "meta.json" || rel === "builds/builds.json") {
    try {
      info.json = JSON.parse(await readFile(dest, "utf8"));
    } catch { /* not JSON: no merge later */ }
  }
  ctx.fetched.set(rel, info);
  ctx.log(
    `gangway: ${r.skipped ? "already have" : "fetched"} ${rel}` +
      (r.skipped ? "" : ` (${r.bytes} bytes${rf.artifact ? ", sha256 verified" : ""})`),
  );
}
