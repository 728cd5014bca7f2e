/**
 * One run at a time in a work dir. A run holds an exclusive lock on `<workDir>/.gangplank-run.lock`
 * for as long as it goes on; a second run into the same dir (fresh or `--resume`) is refused at
 * once (exit 2), naming the dir and the holder, before it creates or changes anything.
 *
 * The lock is the kernel's (`flock`, through `Deno.FsFile.tryLock`) on the open file, not the
 * file's existence: the kernel drops it when the holding process ends in any way (Ctrl-C,
 * `kill -9`, a crash), so a lock left by a dead run is never mistaken for a live one — no pid
 * liveness guess, no pid reuse to be fooled by. The file says who holds it (run id, pid, host,
 * since when) for the refusal message; a run that finds the file but no lock on it takes it over
 * and says whose it was. The file is removed when the run ends (after Ctrl-C too); a run killed
 * by `kill -9` leaves it unlocked, for the next run to take over.
 *
 * @module
 */

import { hostname } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors/mod.ts";
import { delay } from "../toolkit/mod.ts";

/** The lock file's name inside the work dir. */
export const WORK_LOCK_FILE = ".gangplank-run.lock";

/** Who holds (or held) a work dir's lock: the lock file's content. */
export interface LockHolder {
  /** The holding run's id. */
  runId: string;
  /** Its coordinator's pid (absent when it runs in-process, without a pid of its own). */
  pid?: number;
  /** The host it runs on. */
  host: string;
  /** When it took the lock (ISO time). */
  since: string;
}

/** A work dir another live run holds (exit code 2). */
export class WorkDirBusyError extends UsageError {
  /**
   * @param flag how the user named the dir (`-w dir`, `--resume dir`)
   * @param dir the work dir
   * @param holder who holds it (`undefined` while the holder has not written its name yet)
   */
  constructor(readonly flag: string, readonly dir: string, readonly holder?: LockHolder) {
    super(
      `${flag}: work dir ${dir} is in use by ${holderText(holder)}; wait for it to end or stop it`,
    );
  }
}

function holderText(h: LockHolder | undefined): string {
  if (!h) return "a run that is starting (pid not written yet)";
  return `run ${h.runId} (coordinator pid ${h.pid ?? "?"} on ${h.host}, since ${h.since})`;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text);
    if (v && typeof v.runId === "string" && typeof v.host === "string") return v as LockHolder;
  } catch { /* empty or torn: being written */ }
  return undefined;
}

async function readText(f: Deno.FsFile): Promise<string> {
  await f.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(4096);
  let len = 0;
  for (let i = 0; i < 64 && len < buf.length; i++) {
    const n = await f.read(buf.subarray(len));
    if (n === null) break;
    len += n;
  }
  return new TextDecoder().decode(buf.subarray(0, len));
}

/**
 * tryLock, a few times over ~0.2 s: a probe of another starting run holds the lock for an
 * instant; a run holds it for its whole length.
 */
async function tryLockBriefly(f: Deno.FsFile, signal: AbortSignal): Promise<boolean> {
  for (let i = 0; i < 5; i++) {
    if (await f.tryLock(true)) return true;
    await delay(50, { signal });
  }
  return false;
}

/** The holder named in the (held) lock file, waiting up to ~3 s for a starting run to write it. */
async function holderOf(f: Deno.FsFile, signal: AbortSignal): Promise<LockHolder | undefined> {
  for (let i = 0; i < 60; i++) {
    const h = parseHolder(await readText(f));
    if (h) return h;
    await delay(50, { signal });
  }
  return undefined;
}

/** A held work dir lock; disposing it removes the file and releases the lock. */
export class WorkDirLock implements AsyncDisposable {
  #file: Deno.FsFile | undefined;

  /** @internal Use {@link lockWorkDir}. */
  constructor(readonly path: string, file: Deno.FsFile, readonly holder: LockHolder) {
    this.#file = file;
  }

  /** Removes the lock file (if it still is ours) and releases the lock. */
  async [Symbol.asyncDispose](): Promise<void> {
    const f = this.#file;
    if (!f) return;
    this.#file = undefined;
    try {
      const [mine, now] = [await f.stat(), await Deno.stat(this.path).catch(() => undefined)];
      if (now && now.ino === mine.ino && now.dev === mine.dev) await Deno.remove(this.path);
    } catch {
      /* gone already */
    } finally {
      f.close();
    }
  }
}

/**
 * Refuses (throws {@link WorkDirBusyError}) when a live run holds `dir`'s lock; creates and
 * changes nothing (a dir without a lock file passes).
 */
export async function checkWorkDirFree(
  dir: string,
  opts: { flag: string; signal: AbortSignal },
): Promise<void> {
  const { flag, signal } = opts;
  let f: Deno.FsFile;
  try {
    f = await Deno.open(join(dir, WORK_LOCK_FILE), { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
  try {
    if (await tryLockBriefly(f, signal)) await f.unlock();
    else throw new WorkDirBusyError(flag, dir, await holderOf(f, signal));
  } finally {
    f.close();
  }
}

/**
 * Takes `dir`'s lock for run `me` (the dir must exist). A lock file no live run holds (its run
 * was killed) is taken over, `warn`ed with whose it was.
 *
 * @throws {WorkDirBusyError} when a live run holds it (exit code 2); nothing is changed then.
 */
export async function lockWorkDir(
  dir: string,
  me: { runId: string; pid?: number },
  opts: { flag: string; warn: (line: string) => void; signal: AbortSignal },
): Promise<WorkDirLock> {
  const { signal } = opts;
  const path = join(dir, WORK_LOCK_FILE);
  for (let attempt = 0; attempt < 10; attempt++) {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (e) {
      throw new UsageError(`${opts.flag}: cannot lock ${path}: ${(e as Error).message}`);
    }
    let kept = false;
    try {
      if (!(await tryLockBriefly(f, signal))) {
        throw new WorkDirBusyError(opts.flag, dir, await holderOf(f, signal));
      }
      // The run that held it may have removed the file meanwhile: lock the file at the path.
      const [mine, now] = [await f.stat(), await Deno.stat(path).catch(() => undefined)];
      if (!now || now.ino !== mine.ino || now.dev !== mine.dev) continue;
      const left = parseHolder(await readText(f));
      if (left) {
        opts.warn(
          `gangplank: ${opts.flag}: taking over the lock left by run ${left.runId} (coordinator ` +
            `pid ${left.pid ?? "?"} on ${left.host}), which no longer holds it`,
        );
      }
      const holder: LockHolder = {
        runId: me.runId,
        ...(me.pid !== undefined ? { pid: me.pid } : {}),
        host: hostname(),
        since: new Date().toISOString(),
      };
      await f.truncate(0);
      await f.seek(0, Deno.SeekMode.Start);
      const bytes = new TextEncoder().encode(JSON.stringify(holder) + "\n");
      for (let off = 0; off < bytes.length;) off += await f.write(bytes.subarray(off));
      kept = true;
      return new WorkDirLock(path, f, holder);
    } finally {
      if (!kept) f.close();
    }
  }
  throw new UsageError(`${opts.flag}: cannot lock ${path}: it keeps being replaced`);
}
