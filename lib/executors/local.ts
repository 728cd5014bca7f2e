/**
 * The local backend: each stage's worker is a subprocess of the coordinator (by default
 * `deno run -A scripts/work.ts`) with its own scratch directory standing in for `/srv`
 * (`COSA_SRV_DIR`) and its own `TMPDIR`, all under one temp dir per run. Workers run in their own process group
 * (session), so an abort or a leftover grandchild is stopped as a whole: SIGTERM to the group,
 * then SIGKILL after a grace period.
 *
 * @module
 */

import { forEachLine, WORKER_MAX_LINE_LENGTH } from "../log/lines.ts";
import { sanitizeStageId } from "../log/stage_log.ts";
import type { Executor, RelayEndpoint, StageOutcome, WorkerLaunch } from "./types.ts";
import { ENV_LIFELINE, secretFileVar } from "../workspec/env.ts";
import { recordWorker, writeOwner } from "./local_cleanup.ts";

/** Options of {@link LocalExecutor}. */
export interface LocalExecutorOptions {
  /**
   * argv that starts one worker. Default:
   * `[Deno.execPath(), "run", "-A", "--config", <root>/deno.json, <root>/scripts/work.ts]`.
   * Pass e.g. `[Deno.execPath(), "run", "-A", "dist/work.js"]` for a bundled worker.
   */
  workerCommand?: string[];
  /** Repository root used by the default worker command. Default: this checkout. */
  root?: string;
  /**
   * Environment every worker inherits before the launch's own (`PATH`, `HOME`, `DENO_DIR`,
   * `TMPDIR`, ...). The library never reads the process environment itself: scripts pass it.
   */
  baseEnv?: Record<string, string>;
  /** Directories put in front of the worker's PATH (e.g. `examples/fake-cosa`). */
  pathPrefix?: string[];
  /**
   * Directories appended to the worker's PATH. The directory of the running deno is always
   * appended (the worker and the stand-in cosa need `deno`).
   */
  pathSuffix?: string[];
  /** Parent of the run's temp dir (default: the system temp dir). */
  tempParent?: string;
  /** Time between SIGTERM and SIGKILL when stopping a worker. Default 5000 ms. */
  killGraceMs?: number;
  /** Keep each stage's scratch dir after a normal end (always removed on abort). */
  keepScratch?: boolean;
  /** Architecture reported by {@link LocalExecutor.arch}; default: this machine's. */
  arch?: string;
  /**
   * Pre-started workers kept ready (default 2; 0 turns it off). A warm worker has already
   * loaded the worker's modules when a stage starts, which is most of a worker's start-up time.
   * Used only with the default worker command, and only when `scripts/work.ts` exports
   * `main()` (run through `scripts/local_worker_host.ts`); otherwise every worker starts cold.
   */
  warmWorkers?: number;
  /**
   * The coordinator's pid. When given, the run's temp dir records it (`owner.json`, with the
   * process's start time, the host and the work dir) and every worker's pid, so that
   * `submit --cleanup` ({@link cleanupLocal}) can tell a dead run's leftovers from a live run.
   */
  ownerPid?: number;
}

const WORKER_LINES = { maxLineLength: WORKER_MAX_LINE_LENGTH };
const DENO_BIN_DIR = Deno.execPath().slice(0, Deno.execPath().lastIndexOf("/")) || "/";
const DEFAULT_ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Normalises Deno/Go/uname architecture names to cosa's (`x86_64`, `aarch64`, ...). */
function localArch(): string {
  const a: string = Deno.build.arch;
  return a === "amd64" ? "x86_64" : a === "arm64" ? "aarch64" : a;
}

interface Live {
  child: Deno.ChildProcess;
  done: Promise<Deno.CommandStatus>;
  /** The write end of the worker's stdin, held open while the stage runs (its lifeline). */
  lifeline?: WritableStreamDefaultWriter<Uint8Array>;
}

/** A pre-started worker host waiting for its launch line. */
interface Warm extends Live {
  exited: boolean;
}

/**
 * Runs workers as local subprocesses.
 *
 * @example
 * ```ts
 * await using exec = new LocalExecutor({ baseEnv: { PATH: "/usr/bin:/bin" } });
 * const endpoint = await exec.prepare({ host: "127.0.0.1", port: 9000 }, { runId, signal });
 * const outcome = await exec.runStage(launch);
 * ```
 */
export class LocalExecutor implements Executor {
  readonly name = "local";
  readonly #opts: LocalExecutorOptions;
  readonly #cmd: string[];
  readonly #live = new Set<Live>();
  readonly #root: string;
  readonly #warm: Warm[] = [];
  #warmEnabled = false;
  #tempRoot: string | null = null;
  #tempRootPromise: Promise<string> | null = null;
  #disposed = false;

  /** An executor running workers as local processes; nothing starts before `runStage`. */
  constructor(opts: LocalExecutorOptions = {}) {
    this.#opts = opts;
    const root = opts.root ?? DEFAULT_ROOT;
    this.#root = root;
    this.#cmd = opts.workerCommand ?? [
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      "--config",
      `${root}/deno.json`,
      `${root}/scripts/work.ts`,
    ];
  }

  /** The run's temp dir (holding one scratch dir per stage), once created. */
  get tempRoot(): string | null {
    return this.#tempRoot;
  }

  /** Local workers reach the relay at the address it listens on. */
  async prepare(
    relay: RelayEndpoint,
    opts: { runId: string; workDir?: string; signal: AbortSignal },
  ): Promise<RelayEndpoint> {
    opts.signal.throwIfAborted();
    const root = await this.#ensureTempRoot(opts.runId);
    if (this.#opts.ownerPid !== undefined) {
      await writeOwner(root, {
        pid: this.#opts.ownerPid,
        runId: opts.runId,
        ...(opts.workDir ? { workDir: opts.workDir } : {}),
      });
    }
    const n = this.#opts.warmWorkers ?? 2;
    if (n > 0 && !this.#opts.workerCommand && !this.#warmEnabled) {
      // The default worker can be pre-started only if its module exports main().
      const mod = await import(this.#workerModule()).catch(() => undefined);
      if (typeof mod?.main === "function") {
        this.#warmEnabled = true;
        this.#fillPool();
      }
    }
    return { ...relay };
  }

  /** Number of pre-started workers currently waiting. */
  get warmCount(): number {
    return this.#warm.filter((w) => !w.exited).length;
  }

  #workerModule(): string {
    return new URL(`file://${this.#root}/scripts/work.ts`).href;
  }

  #fillPool(): void {
    const n = this.#opts.warmWorkers ?? 2;
    while (!this.#disposed && this.#tempRoot && this.#warm.length < n) {
      const base = this.#baseEnv(this.#tempRoot);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          "--config",
          `${this.#root}/deno.json`,
          `${this.#root}/scripts/local_worker_host.ts`,
          this.#workerModule(),
        ],
        cwd: this.#tempRoot,
        clearEnv: true,
        env: base,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
      const w: Warm = { child, done: child.status, exited: false };
      w.done.then(() => (w.exited = true));
      this.#warm.push(w);
    }
  }

  /** Takes a live pre-started worker and sends it its launch; undefined when none is ready. */
  async #claimWarm(
    env: Record<string, string>,
    cwd: string,
  ): Promise<Live | undefined> {
    while (this.#warm.length > 0) {
      const w = this.#warm.shift()!;
      if (w.exited) {
        await discard(w);
        continue;
      }
      try {
        const writer = w.child.stdin.getWriter();
        await writer.write(new TextEncoder().encode(JSON.stringify({ env, cwd }) + "\n"));
        // Not closed: stdin stays open as the worker's lifeline until the stage ends.
        return { child: w.child, done: w.done, lifeline: writer };
      } catch {
        killGroup(w.child.pid, "SIGKILL");
        await discard(w);
      }
    }
    return undefined;
  }

  /** This machine's architecture in cosa's naming. */
  arch(opts: { signal: AbortSignal }): Promise<string> {
    opts.signal.throwIfAborted();
    return Promise.resolve(this.#opts.arch ?? localArch());
  }

  #ensureTempRoot(runId?: string): Promise<string> {
    if (this.#disposed) return Promise.reject(new Error("LocalExecutor is disposed"));
    this.#tempRootPromise ??= Deno.makeTempDir({
      dir: this.#opts.tempParent,
      prefix: `gangplank-local-${runId ? sanitizeStageId(runId).slice(0, 40) + "-" : ""}`,
    }).then((p) => (this.#tempRoot = p));
    return this.#tempRootPromise;
  }

  #path(): string {
    const base = this.#opts.baseEnv ?? {};
    return [
      ...(this.#opts.pathPrefix ?? []),
      ...(base.PATH ? [base.PATH] : ["/usr/local/bin:/usr/bin:/bin"]),
      ...(this.#opts.pathSuffix ?? []),
      DENO_BIN_DIR,
    ].join(":");
  }

  /** Environment of a pre-started worker host before it gets its launch. */
  #baseEnv(home: string): Record<string, string> {
    const base = { ...this.#opts.baseEnv };
    return { ...base, HOME: base.HOME ?? home, DENO_NO_UPDATE_CHECK: "1", PATH: this.#path() };
  }

  #env(
    launch: WorkerLaunch,
    scratch: string,
    tmp: string,
    secretFiles: Record<string, string>,
  ): Record<string, string> {
    const base = { ...this.#opts.baseEnv };
    const path = this.#path();
    return {
      ...base,
      HOME: base.HOME ?? scratch,
      // The worker's own temp files live with its scratch dir, so they go when it goes (even
      // when the worker is killed and cannot clean up).
      TMPDIR: tmp,
      // No background version check: a worker starts fast and never touches the network.
      DENO_NO_UPDATE_CHECK: "1",
      ...launch.env,
      ...secretFiles,
      PATH: path,
      COSA_SRV_DIR: scratch,
      // Stop when the coordinator is gone (its end of the worker's stdin closes).
      [ENV_LIFELINE]: "stdin",
    };
  }

  /** Starts the worker, streams its lines, and resolves with its exit code. */
  async runStage(launch: WorkerLaunch): Promise<StageOutcome> {
    launch.signal.throwIfAborted();
    const root = await this.#ensureTempRoot(launch.runId);
    const stageDir = `${root}/${launch.stageIndex}-${sanitizeStageId(launch.stageId)}`;
    const scratch = `${stageDir}/srv`;
    const tmp = `${stageDir}/tmp`;
    // Synchronous: a few small local writes on every stage's path, where each asynchronous
    // one waits for a thread of a busy machine (and a stage's worker waits for them).
    Deno.mkdirSync(scratch, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(tmp, { recursive: true, mode: 0o700 });
    const secretsDir = `${stageDir}/secrets`;
    let aborted = false;
    try {
      const env = this.#env(launch, scratch, tmp, writeSecretFiles(secretsDir, launch.secretEnv));
      let live = this.#warmEnabled ? await this.#claimWarm(env, scratch) : undefined;
      if (live) {
        this.#fillPool();
      } else {
        const [cmd, ...args] = this.#cmd;
        const child = new Deno.Command(cmd, {
          args,
          cwd: scratch,
          clearEnv: true,
          env,
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
          detached: true,
        }).spawn();
        live = { child, done: child.status, lifeline: child.stdin.getWriter() };
      }
      const child = live.child;
      this.#live.add(live);
      const record = await this.#recordWorker(root, child.pid);
      const onAbort = () => {
        aborted = true;
        void this.#stop(live);
      };
      launch.signal.addEventListener("abort", onAbort, { once: true });
      const pumps = Promise.all([
        forEachLine(child.stdout, (l) => launch.onLine(l, "stdout"), WORKER_LINES),
        forEachLine(child.stderr, (l) => launch.onLine(l, "stderr"), WORKER_LINES),
      ]).catch(() => {});
      try {
        const status = await live.done;
        // Whatever the worker left behind in its process group goes with it.
        killGroup(child.pid, "SIGKILL");
        const d = delay(2000);
        await Promise.race([pumps, d.promise]);
        d.cancel();
        const outcome: StageOutcome = { exitCode: status.code };
        if (aborted) outcome.reason = "cancelled";
        else if (status.signal) outcome.reason = `killed by ${status.signal}`;
        return outcome;
      } finally {
        launch.signal.removeEventListener("abort", onAbort);
        this.#live.delete(live);
        await live.lifeline?.close().catch(() => {});
        if (record) await Deno.remove(record).catch(() => {});
      }
    } finally {
      // The worker removes each secret file once read; a worker that never started cannot.
      await Deno.remove(secretsDir, { recursive: true }).catch(() => {});
      if (aborted || !this.#opts.keepScratch) {
        await Deno.remove(stageDir, { recursive: true }).catch(() => {});
      } else {
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
      }
    }
  }

  /** Records a worker in the run's temp dir (for `--cleanup` after a killed coordinator). */
  #recordWorker(root: string, pid: number): Promise<string | undefined> {
    if (this.#opts.ownerPid === undefined) return Promise.resolve(undefined);
    return recordWorker(root, pid).catch(() => undefined);
  }

  async #stop(live: Live): Promise<void> {
    const pid = live.child.pid;
    killGroup(pid, "SIGTERM");
    const grace = this.#opts.killGraceMs ?? 5000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        killGroup(pid, "SIGKILL");
        resolve();
      }, grace);
    });
    await Promise.race([live.done.then(() => {}), killed]);
    clearTimeout(timer);
    killGroup(pid, "SIGKILL");
    await live.done;
  }

  /** Stops any worker still running and removes the run's temp dir. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
    const idle = this.#warm.splice(0);
    for (const w of idle) killGroup(w.child.pid, "SIGKILL");
    await Promise.all([...this.#live].map((l) => this.#stop(l)));
    await Promise.all(idle.map(discard));
    const root = this.#tempRoot ?? (await this.#tempRootPromise?.catch(() => null));
    if (root) await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/**
 * Writes each secret env value into its own 0600 file in a new 0700 `dir` and returns the
 * environment naming them (`COSA_RELAY_SECRET_FILE=...`): a secret value never goes into a
 * worker's environment, where `/proc/<pid>/environ` would keep it for the process's life.
 */
function writeSecretFiles(
  dir: string,
  secretEnv: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (Object.keys(secretEnv).length === 0) return out;
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* not there */ }
  Deno.mkdirSync(dir, { mode: 0o700 });
  for (const [name, value] of Object.entries(secretEnv)) {
    const file = `${dir}/${name.toLowerCase()}`;
    Deno.writeTextFileSync(file, value, { mode: 0o600, createNew: true });
    out[secretFileVar(name)] = file;
  }
  return out;
}

/** Waits for a pre-started worker that will not be used and releases its pipes. */
async function discard(w: Warm): Promise<void> {
  await w.done;
  await Promise.all([
    w.child.stdin.close().catch(() => {}),
    w.child.stdout.cancel().catch(() => {}),
    w.child.stderr.cancel().catch(() => {}),
  ]);
}

function killGroup(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(-pid, sig);
  } catch { /* group already gone */ }
}

function delay(ms: number): { promise: Promise<void>; cancel(): void } {
  let t: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<void>((r) => (t = setTimeout(r, ms)));
  return { promise, cancel: () => clearTimeout(t) };
}
