/**
 * The worker ("gangway", reference §5, bugs of §12 fixed): `cosa init` from the recipe, fetch
 * inputs (verified, atomic, confined to srv), `.repo` files, `builds/latest`, run the stage,
 * then return results to the job bucket (builds.json merged, known meta files, new artifacts
 * of the latest build, kola logs, caches, `return_files`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { arch as hostArch, tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { extractTarGz, packTarGz } from "../archive/mod.ts";
// Direct module imports (not mod.ts): see stage.ts (start-up time of every worker).
import { mergeBuilds, normalizeArch, parseBuilds, readBuilds } from "../cosa/builds.ts";
import {
  type BuildInfo,
  type CosaMeta,
  deepMerge,
  isArtifactFile,
  isKnownBuildMeta,
  readLatestBuild,
} from "../cosa/meta.ts";
import type { FetchLike, Stage } from "../jobspec/mod.ts";
import { repoFileName, writeRepoFile } from "../jobspec/repo.ts";
import { ENV_FORCE_ARCH, remoteFileTarget, srvRelative, type WorkSpec } from "../workspec/mod.ts";
import { GangplankError } from "../errors/mod.ts";
import { BashRunner, type CommandRunner } from "./runner.ts";
import {
  OscontainerPushError,
  pushOscontainer,
  redactingLog,
  registrySecrets,
  shouldPushOscontainer,
} from "./oscontainer.ts";
import { type CommandFailure, runScriptFile, runStage, type StageDeps } from "./stage.ts";
import type { ArtifactStoreLike } from "./store.ts";

/** Key of the returned package cache tarball (below the key prefix). */
export const CACHE_TARBALL_KEY = "cache/cache.tar.gz";
/** Key of the returned ostree repo cache tarball (below the key prefix). */
export const REPO_TARBALL_KEY = "cache/repo.tar.gz";

/** Dependencies of {@link runWorker}. */
export interface WorkerDeps {
  /** The worker's srv directory (`/srv` in a pod); must exist. */
  srvDir: string;
  /** The complete environment of the stage's commands (nothing else is inherited). */
  env: Record<string, string>;
  /** The relay secret: never logged; any output line containing it is redacted. */
  secretKey: string;
  store: ArtifactStoreLike;
  /** Default: {@link BashRunner}. */
  runner?: CommandRunner;
  log: (line: string) => void;
  signal: AbortSignal;
  /** Architecture (default `env.COSA_FORCE_ARCH`, else this machine's). */
  arch?: string;
  /** HTTP client for URL repos (default global fetch). */
  fetch?: FetchLike;
  /** Delay between starts of concurrent commands (default 50 ms). */
  staggerMs?: number;
  /**
   * Service-account token file for oscontainer pushes with `secret_type: token` (default
   * `/var/run/secrets/kubernetes.io/serviceaccount/token`).
   */
  saTokenPath?: string;
}

/** What a worker did; {@link WorkerResult.exitCode} is the process exit code. */
export interface WorkerResult {
  exitCode: number;
  /** One line saying why it failed (absent on success). */
  message?: string;
  stageIds: string[];
  /** Every failed command (concurrent stages can have several). */
  failures: CommandFailure[];
  /** Bytes downloaded (transfers skipped because the file was already there count 0). */
  bytesIn: number;
  /** Bytes uploaded. */
  bytesOut: number;
  filesFetched: number;
  /** Downloads skipped because the destination already had the expected sha256. */
  filesSkipped: number;
  /** Object keys uploaded (with key prefix). */
  uploaded: string[];
  /** Names (`images` keys) of the artifacts uploaded. */
  artifactsReturned: string[];
  /** Upload problems (`<key>: <error>`); any makes the worker fail. */
  uploadErrors: string[];
  /** Latest build for the arch after the stage, if any. */
  buildId?: string;
  /** True when aborted (signal). */
  aborted: boolean;
}

/** Prefix of the machine-readable summary line a worker prints last. */
export const SUMMARY_PREFIX = "gangway-summary: ";

/** The summary line for a result (no secrets in it). */
export function summaryLine(r: WorkerResult): string {
  const { exitCode, stageIds, bytesIn, bytesOut, filesFetched, filesSkipped } = r;
  return SUMMARY_PREFIX + JSON.stringify({
    exitCode,
    stageIds,
    bytesIn,
    bytesOut,
    filesFetched,
    filesSkipped,
    artifactsReturned: r.artifactsReturned,
    uploaded: r.uploaded.length,
    uploadedKeys: r.uploaded,
    uploadErrors: r.uploadErrors.length,
    ...(r.buildId ? { buildId: r.buildId } : {}),
    ...(r.message ? { message: r.message } : {}),
  });
}

/**
 * A compact JSON outcome for a Kubernetes termination log (at most 4096 bytes: the artifact
 * list and message are shortened to fit).
 */
export function terminationMessage(r: WorkerResult): string {
  const msg = {
    exitCode: r.exitCode,
    ...(r.buildId ? { buildId: r.buildId } : {}),
    artifactsReturned: [...r.artifactsReturned],
    ...(r.message ? { message: r.message } : {}),
  };
  let text = JSON.stringify(msg);
  while (text.length > 4096 && msg.artifactsReturned.length) {
    msg.artifactsReturned.pop();
    text = JSON.stringify(msg);
  }
  if (text.length > 4096 && msg.message) {
    msg.message = msg.message.slice(0, 3500) + "...";
    text = JSON.stringify(msg);
  }
  return text;
}

/** Parses a {@link summaryLine}; `undefined` for any other line. */
export function parseSummaryLine(line: string): Record<string, unknown> | undefined {
  const i = line.indexOf(SUMMARY_PREFIX);
  if (i < 0) return undefined;
  try {
    const v = JSON.parse(line.slice(i + SUMMARY_PREFIX.length));
    return v && typeof v === "object" ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A path that would leave the srv dir. */
export class PathEscapeError extends Error {
  constructor(readonly path: string) {
    super(`${path}: escapes the srv dir`);
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Uint8Array);
  return h.digest("hex");
}

/** sh single-quote. */
function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

interface Fetched {
  sha256: string;
  size: number;
  mtimeMs: number;
  json?: unknown;
}

interface Ctx {
  ws: WorkSpec;
  deps: WorkerDeps;
  srv: string;
  srvReal: string;
  arch: string;
  scratch: string;
  log: (line: string) => void;
  fetched: Map<string, Fetched>;
  result: WorkerResult;
}

/**
 * Resolves `rel` (relative to srv) to an absolute path, refusing anything that leaves srv,
 * including through a symlink of an existing ancestor.
 */
async function confine(ctx: Ctx, rel: string): Promise<string> {
  const norm = srvRelative(rel);
  if (norm === undefined) throw new PathEscapeError(rel);
  const abs = join(ctx.srv, norm);
  // Find the deepest existing ancestor (or the path itself) and check where it really is.
  let probe = abs;
  for (;;) {
    try {
      const real = await realpath(probe);
      if (real !== ctx.srvReal && !real.startsWith(ctx.srvReal + sep)) {
        throw new PathEscapeError(rel);
      }
      break;
    } catch (e) {
      if (e instanceof PathEscapeError) throw e;
      if (probe === ctx.srv) break;
      probe = dirname(probe);
    }
  }
  return abs;
}

const keyOf = (ws: WorkSpec, k: string) =>
  ws.return.key_prefix ? `${ws.return.key_prefix}/${k}` : k;

/**
 * Runs the stages of a WorkSpec on this worker and returns their results to the store.
 * Never throws for stage, fetch or upload failures: they end up in the result's exit code and
 * message. Throws only when the srv dir is unusable.
 */
export async function runWorker(ws: WorkSpec, deps: WorkerDeps): Promise<WorkerResult> {
  // The relay secret and every registry secret of the JobSpec are redacted from every line.
  const log = redactingLog(deps.log, [
    deps.secretKey,
    ...registrySecrets(ws.jobspec.publish_oscontainer),
  ]);
  const result: WorkerResult = {
    exitCode: 0,
    stageIds: [...ws.executeStages],
    failures: [],
    bytesIn: 0,
    bytesOut: 0,
    filesFetched: 0,
    filesSkipped: 0,
    uploaded: [],
    artifactsReturned: [],
    uploadErrors: [],
    aborted: false,
  };
  const failWith = (code: number, message: string) => {
    if (result.exitCode === 0) {
      result.exitCode = code;
      result.message = message;
    }
    log(`gangway: ERROR: ${message}`);
  };

  const stages: Stage[] = [];
  for (const id of ws.executeStages) {
    const s = ws.jobspec.stages.find((x) => x.id === id);
    if (!s) {
      failWith(2, `stage "${id}" is not in the jobspec`);
      return result;
    }
    stages.push(s);
  }
  const st = await stat(deps.srvDir);
  if (!st.isDirectory()) throw new Error(`${deps.srvDir}: not a directory`);
  const srvReal = await realpath(deps.srvDir);
  const arch = normalizeArch(deps.arch ?? (deps.env[ENV_FORCE_ARCH] || hostArch()));
  const scratch = await mkdtemp(join(tmpdir(), "gangway-"));
  const ctx: Ctx = {
    ws,
    deps,
    srv: deps.srvDir,
    srvReal,
    arch,
    scratch,
    log,
    fetched: new Map(),
    result,
  };
  const runner = deps.runner ?? new BashRunner();
  const stageDeps = (dir: string): StageDeps => ({
    runner,
    env: deps.env,
    cwd: deps.srvDir,
    scriptDir: dir,
    log,
    signal: deps.signal,
    staggerMs: deps.staggerMs,
  });
  log(`gangway: running as a worker for stage(s) ${ws.executeStages.join(", ")} (arch ${arch})`);
  try {
    // 1. cosa init from the recipe, once per srv dir.
    const recipe = ws.jobspec.recipe ?? {};
    if (recipe.git_url) {
      try {
        await stat(join(deps.srvDir, "src", "config"));
        log("gangway: src/config exists, not running cosa init");
      } catch {
        const args = ["cosa", "init"];
        if (recipe.git_ref) args.push("--force", "--branch", recipe.git_ref);
        if (recipe.git_commit) args.push("--commit", recipe.git_commit);
        args.push(recipe.git_url);
        const source = args.map(shq).join(" ");
        const file = join(scratch, "init.sh");
        await writeFile(file, source + "\n", { mode: 0o700 });
        log(`gangway: ${source}`);
        const f = await runScriptFile(
          { part: "init", index: 0, source, file },
          stages[0].id,
          stageDeps(scratch),
        );
        if (f) {
          result.failures.push(f);
          failWith(f.exitCode, `failed to clone recipe: ${f.message}`);
          return result;
        }
      }
    }

    // 2. Fetch the remote files.
    for (const [i, rf] of ws.remotefiles.entries()) {
      if (deps.signal.aborted) break;
      const what = `remotefiles[${i}] ${rf.bucket}/${rf.object}`;
      try {
        await fetchRemote(ctx, rf);
      } catch (e) {
        if (deps.signal.aborted) break;
        failWith(1, `fetching ${what}: ${(e as Error).message}`);
        return result;
      }
    }

    // 3. .repo files into src/config.
    const repos = recipe.repos ?? [];
    if (repos.length && !deps.signal.aborted) {
      const dir = await confine(ctx, "src/config");
      await mkdir(dir, { recursive: true, mode: 0o755 });
      for (const [i, r] of repos.entries()) {
        try {
          await rm(join(dir, repoFileName(r)), { force: true });
          const p = await writeRepoFile(r, dir, { fetch: deps.fetch, signal: deps.signal });
          log(`gangway: wrote ${relative(deps.srvDir, p)}`);
        } catch (e) {
          failWith(1, `recipe.repos[${i}]: ${(e as Error).message}`);
          return result;
        }
      }
    }

    // 4. .Meta for templates and the builds/latest symlink.
    let before: BuildInfo | undefined;
    try {
      before = await readLatestBuild(join(deps.srvDir, "builds"), arch);
    } catch (e) {
      log(`gangway: warning: cannot read the latest build: ${(e as Error).message}`);
    }
    if (before) {
      await updateLatestLink(ctx, before.id);
      log(`gangway: latest build for ${arch} is ${before.id}`);
    }

    // 5. The stages.
    let stageOk = true;
    for (const s of stages) {
      if (deps.signal.aborted) break;
      const dir = await mkdtemp(join(scratch, "stage-"));
      const out = await runStage(s, ws.jobspec, before?.meta, stageDeps(dir));
      result.failures.push(...out.failures);
      if (out.exitCode !== 0) {
        stageOk = false;
        const msg = out.error ?? out.failures.map((f) => f.message).join("; ");
        if (!deps.signal.aborted) failWith(out.exitCode, msg);
        for (const f of out.failures.slice(1)) log(`gangway: also failed: ${f.message}`);
        break;
      }
      log(`gangway: stage "${s.id}" succeeded`);
    }

    // 5b. Push the oscontainer when the stage produced a new ostree.
    const registries = ws.jobspec.publish_oscontainer?.registries ?? [];
    if (stageOk && registries.length && !deps.signal.aborted) {
      try {
        const after = await readLatestBuild(join(deps.srvDir, "builds"), arch);
        if (after && shouldPushOscontainer(before, after)) {
          await pushOscontainer(ws.jobspec.publish_oscontainer, after.id, {
            runner,
            env: deps.env,
            srvDir: deps.srvDir,
            scriptDir: await mkdtemp(join(scratch, "push-")),
            log,
            signal: deps.signal,
            ...(deps.saTokenPath ? { tokenPath: deps.saTokenPath } : {}),
          });
        } else {
          log("gangway: no new ostree in the latest build, not pushing the oscontainer");
        }
      } catch (e) {
        stageOk = false;
        if (!deps.signal.aborted) {
          failWith(
            e instanceof GangplankError ? e.exitCode : 1,
            e instanceof OscontainerPushError
              ? e.message
              : `oscontainer push: ${(e as Error).message}`,
          );
        }
      }
    }

    if (deps.signal.aborted) {
      result.aborted = true;
      failWith(130, "aborted");
      return result;
    }

    // 6. Return: always (logs and metadata come back after a failure too).
    await returnBuild(ctx);
    if (stageOk) {
      for (const s of stages) await returnStageFiles(ctx, s);
    }
    if (result.uploadErrors.length) {
      failWith(
        1,
        `${result.uploadErrors.length} upload(s) failed: ${result.uploadErrors.join("; ")}`,
      );
    }
    if (deps.signal.aborted) {
      result.aborted = true;
      failWith(130, "aborted");
    }
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}

async function updateLatestLink(ctx: Ctx, id: string): Promise<void> {
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

async function fetchRemote(ctx: Ctx, rf: WorkSpec["remotefiles"][number]): Promise<void> {
  const { store, signal } = ctx.deps;
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
  if (rel.endsWith("/meta.json") || rel === "meta.json") {
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

/** True when `rel` was fetched and is still byte-identical. */
async function unchangedSinceFetch(ctx: Ctx, rel: string, abs: string): Promise<boolean> {
  const f = ctx.fetched.get(rel);
  if (!f) return false;
  const s = await stat(abs);
  if (s.size !== f.size) return false;
  if (s.mtimeMs === f.mtimeMs) return true;
  return (await sha256File(abs)) === f.sha256;
}

async function upload(ctx: Ctx, key: string, abs: string): Promise<boolean> {
  const { store, signal } = ctx.deps;
  try {
    const size = (await stat(abs)).size;
    await store.putFile(ctx.ws.return.bucket, key, abs, { signal });
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

async function returnBuild(ctx: Ctx): Promise<void> {
  const { ws, deps } = ctx;
  const { store, signal } = deps;
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
      if (await upload(ctx, keyOf(ws, `${build.id}/${build.arch}/${name}`), abs)) {
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
      const key = keyOf(ws, `${build.id}/${build.arch}/${name}`);
      const fetchedJson = ctx.fetched.get(rel)?.json;
      if (name === "meta.json" && fetchedJson !== undefined) {
        // Someone else (a parallel worker) may have updated meta.json since we fetched it:
        // merge theirs under ours instead of overwriting it.
        try {
          const remote = await store.getJSON(bucket, key, { signal });
          if (remote && typeof remote === "object" && !isDeepStrictEqual(remote, fetchedJson)) {
            const local = JSON.parse(await readFile(abs, "utf8")) as CosaMeta;
            const merged = deepMerge(remote as CosaMeta, local);
            const text = JSON.stringify(merged, null, 4) + "\n";
            await store.putJSON(bucket, key, merged, { signal });
            ctx.result.bytesOut += text.length;
            ctx.result.uploaded.push(key);
            ctx.log(`gangway: uploaded ${key} (merged with a concurrent update)`);
            continue;
          }
        } catch (e) {
          ctx.result.uploadErrors.push(`${key}: ${(e as Error).message}`);
          continue;
        }
      }
      await upload(ctx, key, abs);
    }
    for (const name of kolaLogs.sort()) {
      await upload(
        ctx,
        keyOf(ws, `${build.id}/${build.arch}/logs/${name}`),
        join(ctx.srv, "tmp", name),
      );
    }
  }
  // builds.json last: read-merge-write, re-reading right before the write.
  if (
    localBuilds &&
    !(await unchangedSinceFetch(ctx, "builds/builds.json", join(buildsDir, "builds.json")))
  ) {
    const key = keyOf(ws, "builds.json");
    const readRemote = async () => {
      const raw = await store.getJSON(bucket, key, { signal });
      return raw === undefined || raw === null ? undefined : parseBuilds(raw);
    };
    try {
      // A parallel worker may write between our read and our write: check afterwards that
      // every build we know is there, and merge again if not (bounded).
      for (let attempt = 1;; attempt++) {
        const merged = mergeBuilds(await readRemote(), localBuilds);
        await store.putJSON(bucket, key, merged, { signal });
        ctx.result.bytesOut += JSON.stringify(merged).length;
        const after = await readRemote();
        const missing = merged.builds.filter((b) =>
          !b.arches.every((a) => after?.builds.some((x) => x.id === b.id && x.arches.includes(a)))
        );
        if (missing.length === 0) {
          ctx.result.uploaded.push(key);
          ctx.log(`gangway: uploaded ${key} (${merged.builds.length} build(s), merged)`);
          break;
        }
        if (attempt >= 5) {
          throw new Error(
            `concurrent writers keep dropping ${missing.map((b) => b.id).join(", ")}`,
          );
        }
        ctx.log(`gangway: ${key} was rewritten concurrently, merging again`);
      }
    } catch (e) {
      ctx.result.uploadErrors.push(`${key}: ${(e as Error).message}`);
      ctx.log(`gangway: upload of ${key} failed: ${(e as Error).message}`);
    }
  }
}

async function returnStageFiles(ctx: Ctx, stage: Stage): Promise<void> {
  const { ws, deps } = ctx;
  const { signal } = deps;
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
      await ctx.deps.store.ensureBucket(ws.return.bucket, { signal });
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
      await ctx.deps.store.ensureBucket(ws.return.bucket, { signal });
      for (const [fileRel, fileAbs] of files) {
        await upload(ctx, keyOf(ws, `cache/${fileRel}`), fileAbs);
      }
    } catch (e) {
      ctx.result.uploadErrors.push(`return_files ${JSON.stringify(f)}: ${(e as Error).message}`);
    }
  }
}

/** Regular files at or below `abs` (confined to srv), as [relative path, absolute path]. */
async function filesBelow(ctx: Ctx, abs: string, rel: string): Promise<[string, string][]> {
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
