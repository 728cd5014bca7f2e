/**
 * What a local run leaves when its coordinator is killed (`kill -9`, a crash, a lost
 * terminal), and `submit --cleanup`, which removes it: worker process groups still running,
 * the run's `$TMPDIR/gangplank-local-*` dir (every stage's scratch `/srv`), and the relay's
 * in-flight uploads and multipart parts under `<workDir>/.gangplank-relay/`.
 *
 * A run's temp dir records its coordinator (`owner.json`: pid, the process's start time, host,
 * run id, work dir) and one file per live worker (`workers/<pid>`, holding the worker's start
 * time), so that cleanup touches only runs whose coordinator is gone, and only the processes
 * that really are those workers (a pid reused by another process has another start time).
 *
 * @module
 */

import { hostname } from "node:os";
import { join } from "node:path";

/** Prefix of a local run's temp dir in the temp parent. */
export const LOCAL_TEMP_PREFIX = "gangplank-local-";
/** The owner record's file name inside the run's temp dir. */
export const OWNER_FILE = "owner.json";
/** Directory of the per-worker records inside the run's temp dir. */
export const WORKERS_DIR = "workers";

/** Who runs a local run: its coordinator. */
export interface LocalOwner {
  pid: number;
  /** The process's start time (clock ticks since boot, /proc/<pid>/stat field 22). */
  start: string;
  host: string;
  runId: string;
  workDir?: string;
}

/** Start time of process `pid` (field 22 of /proc/<pid>/stat), or null when it is gone. */
export function processStart(pid: number): string | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return s.slice(s.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * True when process `pid` runs and started at `start` (not a reused pid, not a zombie: a dead
 * process its new parent has not reaped yet).
 */
export function sameProcess(pid: number, start: string): boolean {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return fields[0] !== "Z" && fields[19] === start;
  } catch {
    return false;
  }
}

/** Writes `owner.json` into a run's temp dir (0600). */
export async function writeOwner(
  tempRoot: string,
  owner: Omit<LocalOwner, "start" | "host">,
): Promise<void> {
  const start = processStart(owner.pid);
  if (start === null) return; // no /proc: nothing can be checked later either
  const record: LocalOwner = { ...owner, start, host: hostname() };
  await Deno.writeTextFile(join(tempRoot, OWNER_FILE), JSON.stringify(record) + "\n", {
    mode: 0o600,
  });
}

/** Records a worker's pid (and start time) in a run's temp dir; returns the record's path. */
export async function recordWorker(tempRoot: string, pid: number): Promise<string | undefined> {
  const start = processStart(pid);
  if (start === null) return undefined;
  await Deno.mkdir(join(tempRoot, WORKERS_DIR), { recursive: true, mode: 0o700 });
  const file = join(tempRoot, WORKERS_DIR, String(pid));
  await Deno.writeTextFile(file, start, { mode: 0o600 });
  return file;
}

/** What {@link cleanupLocal} found and did. */
export interface LocalCleanupResult {
  /** Worker process groups stopped (their pids). */
  processes: number[];
  /** Run temp dirs removed. */
  dirs: string[];
  /** Relay upload leftovers removed (in-flight files and multipart uploads). */
  uploads: string[];
  /** Runs left alone because their coordinator still runs: `<dir> (pid N)`. */
  alive: string[];
}

/** Options of {@link cleanupLocal}. */
export interface LocalCleanupOptions {
  /** Where runs create their temp dirs (the coordinator's `$TMPDIR`, default `/tmp`). */
  tempParent: string;
  /** Work dirs to clean even when no temp dir names them (`--work-dir`). */
  workDirs?: string[];
  /** Signals processes (`Deno.kill` in a script). */
  kill: (pid: number, signal: "SIGKILL") => void;
  signal: AbortSignal;
}

async function readOwner(dir: string): Promise<LocalOwner | undefined> {
  try {
    const v = JSON.parse(await Deno.readTextFile(join(dir, OWNER_FILE)));
    if (typeof v?.pid === "number" && typeof v?.start === "string") return v as LocalOwner;
  } catch { /* no owner record: not ours to judge */ }
  return undefined;
}

async function entries(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e);
  } catch { /* missing */ }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Finds the local runs under `tempParent` whose coordinator is gone (on this host), stops
 * their worker process groups (SIGKILL), removes their temp dirs, and removes the relay's
 * upload leftovers (`.gangplank-relay/uploads/*` and `.gangplank-relay/tmp/*`) of their work
 * dirs and of `workDirs` — unless a live run uses that work dir. Runs with a live coordinator,
 * other hosts' runs and dirs without an owner record are left alone.
 */
export async function cleanupLocal(opts: LocalCleanupOptions): Promise<LocalCleanupResult> {
  const result: LocalCleanupResult = { processes: [], dirs: [], uploads: [], alive: [] };
  const here = hostname();
  const deadRuns: { dir: string; owner: LocalOwner }[] = [];
  const liveWorkDirs = new Set<string>();
  for (const e of await entries(opts.tempParent)) {
    opts.signal.throwIfAborted();
    if (!e.isDirectory || !e.name.startsWith(LOCAL_TEMP_PREFIX)) continue;
    const dir = join(opts.tempParent, e.name);
    const owner = await readOwner(dir);
    if (!owner || owner.host !== here) continue;
    if (sameProcess(owner.pid, owner.start)) {
      result.alive.push(`${dir} (pid ${owner.pid})`);
      if (owner.workDir) liveWorkDirs.add(owner.workDir);
    } else deadRuns.push({ dir, owner });
  }
  const workDirs = new Set(opts.workDirs ?? []);
  for (const { dir, owner } of deadRuns) {
    for (const w of await entries(join(dir, WORKERS_DIR))) {
      const pid = Number(w.name);
      if (!Number.isSafeInteger(pid) || pid <= 1) continue;
      const start = await Deno.readTextFile(join(dir, WORKERS_DIR, w.name)).catch(() => "");
      if (!sameProcess(pid, start)) continue;
      // Workers lead their own process group: the stage's commands go with it.
      try {
        opts.kill(-pid, "SIGKILL");
      } catch {
        try {
          opts.kill(pid, "SIGKILL");
        } catch { /* gone meanwhile */ }
      }
      result.processes.push(pid);
    }
    await Deno.remove(dir, { recursive: true });
    result.dirs.push(dir);
    if (owner.workDir) workDirs.add(owner.workDir);
  }
  for (const workDir of workDirs) {
    if (liveWorkDirs.has(workDir)) continue;
    for (const sub of ["uploads", "tmp"]) {
      const d = join(workDir, ".gangplank-relay", sub);
      for (const e of await entries(d)) {
        await Deno.remove(join(d, e.name), { recursive: true });
        result.uploads.push(join(d, e.name));
      }
    }
  }
  return result;
}
