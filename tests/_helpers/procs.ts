/**
 * Processes, for tests: what /proc says about them (parent, start time, state, argv), the
 * descendants of a process, and a long-running service (a relay, sshd, a browser) started,
 * waited for and stopped in one place. Every loop here is bounded in time.
 *
 * @module
 */

/** What /proc/<pid>/stat says about a process. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot: with the pid, identifies the process. */
  start: string;
  /** `R`, `S`, `D`, `Z` (zombie), ... */
  state: string;
}

/** A process seen at some point: pid, start time (to survive pid reuse) and argv. */
export interface SeenProcess {
  pid: number;
  start: string;
  cmd: string;
}

/** /proc/<pid>/stat of a process, or `null` when it does not exist. */
export function procStat(pid: number): ProcStat | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after "(comm) ": state(0) ppid(1) ... starttime (field 22 overall) is index 19.
    const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(rest[1]), start: rest[19], state: rest[0] };
  } catch {
    return null;
  }
}

/** The argv of a process joined with spaces ("" when it is gone). */
export function cmdlineOf(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

/** The short name (`comm`) of a process ("" when it is gone). */
export function commOf(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

/** Whether a process exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== "Z";
}

/** Every process now (a snapshot of /proc). */
export function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const st = procStat(Number(e.name));
    if (st) out.push(st);
  }
  return out;
}

/** The pids (other than this process) whose argv satisfies `match`. */
export function processesMatching(match: (cmd: string) => boolean): number[] {
  return allProcesses()
    .filter((p) => p.pid !== Deno.pid && match(cmdlineOf(p.pid)))
    .map((p) => p.pid);
}

/** Every current descendant of `root`, parents before their children. */
export function descendants(root: number): SeenProcess[] {
  const children = new Map<number, ProcStat[]>();
  for (const st of allProcesses()) {
    const list = children.get(st.ppid) ?? [];
    list.push(st);
    children.set(st.ppid, list);
  }
  const out: SeenProcess[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push({ pid: c.pid, start: c.start, cmd: cmdlineOf(c.pid) });
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

/** A process as seen now (its start time tells it from a later one of the same pid). */
export function seenNow(pid: number): SeenProcess {
  return { pid, start: procStat(pid)?.start ?? "", cmd: cmdlineOf(pid) };
}

/** The processes of `seen` that still run (same pid and start time, not a zombie). */
export function stillAlive(seen: Iterable<SeenProcess>): SeenProcess[] {
  return [...seen].filter((p) => {
    const st = procStat(p.pid);
    return st !== null && st.start === p.start && st.state !== "Z";
  });
}

/** Sends `signal` to every descendant of `root` (deepest first), then to `root`. */
export function killTree(root: number, signal: Deno.Signal = "SIGKILL"): void {
  for (const p of [root, ...descendants(root).map((d) => d.pid)].reverse()) {
    try {
      Deno.kill(p, signal);
    } catch { /* gone */ }
  }
}

/** What a stopped {@link Service} printed and how it ended. */
export interface ServiceExit {
  code: number;
  stdout: string;
  stderr: string;
}

/** A long-running process started by {@link startService}; disposing it kills it. */
export interface Service extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  /** Output so far. */
  stdout(): string;
  /** Output so far. */
  stderr(): string;
  /**
   * Sends `signal` (default SIGTERM), SIGKILLs the process and its descendants after
   * `graceMs` (default 10 s), and resolves with how it ended. Idempotent.
   */
  stop(signal?: Deno.Signal, graceMs?: number): Promise<ServiceExit>;
}

/** Options of {@link startService}. */
export interface ServiceOptions {
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Polled until true (every 50 ms, up to `timeoutMs`): the service is ready. Gets the
   * output so far.
   */
  ready(out: { stdout: string; stderr: string }): boolean | Promise<boolean>;
  /** Default 20 s. */
  timeoutMs?: number;
  /** Named in the error when it does not get ready. */
  what: string;
}

/**
 * Starts `cmd` with its output collected, waits until `ready`; on an early exit or a timeout
 * kills it (and its descendants) and throws with its stderr.
 */
export async function startService(cmd: string, opts: ServiceOptions): Promise<Service> {
  const child = new Deno.Command(cmd, {
    args: opts.args ?? [],
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const dec = new TextDecoder();
    try {
      for await (const c of s) add(dec.decode(c, { stream: true }));
    } catch { /* closed */ }
  };
  const pumps = Promise.all([
    pump(child.stdout, (t) => (stdout += t)),
    pump(child.stderr, (t) => (stderr += t)),
  ]);
  let exited = false;
  const status = child.status.finally(() => (exited = true));
  let stopped: Promise<ServiceExit> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM", graceMs = 10_000) => {
    stopped ??= (async () => {
      // Its children are re-parented once it exits: remember them now.
      const family = descendants(child.pid);
      if (signal === "SIGKILL") killTree(child.pid);
      else {
        try {
          child.kill(signal);
        } catch { /* gone */ }
      }
      const timer = setTimeout(() => killTree(child.pid), graceMs);
      const st = await status;
      clearTimeout(timer);
      for (const p of stillAlive([...family, ...descendants(child.pid)])) {
        try {
          Deno.kill(p.pid, "SIGKILL"); // anything it left behind
        } catch { /* gone */ }
      }
      await pumps;
      return { code: st.code, stdout, stderr };
    })();
    return stopped;
  };
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await Promise.resolve(opts.ready({ stdout, stderr })).catch(() => false);
    if (ok) break;
    const why = exited
      ? `${opts.what}: exited before it was ready`
      : Date.now() > deadline
      ? `timed out after ${timeoutMs} ms waiting for ${opts.what}`
      : undefined;
    if (why) {
      const out = await stop("SIGKILL");
      throw new Error(`${why}\nstderr: ${out.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    pid: child.pid,
    stdout: () => stdout,
    stderr: () => stderr,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop("SIGKILL");
    },
  };
}
