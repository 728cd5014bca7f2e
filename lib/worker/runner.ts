/**
 * Running one rendered stage script: the {@link CommandRunner} seam (unit tests pass a fake)
 * and the real runner, which spawns `/bin/bash -xeu -o pipefail <script>` with exactly the
 * environment given, streams its output line by line, and kills the script and every process
 * it started when aborted.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { signalExitCode } from "../errors/mod.ts";
import { LineSplitter } from "../log/lines.ts";

/** Options of {@link CommandRunner.run}. */
export interface RunScriptOptions {
  /** The complete environment of the script (nothing is inherited). */
  env: Record<string, string>;
  /** Working directory. */
  cwd: string;
  /** Aborting kills the script (its whole process group). */
  signal: AbortSignal;
  /** Receives each output line (without the newline). */
  onLine: (line: string, stream: "stdout" | "stderr") => void;
}

/** How a script ended: its exit code, or the signal that killed it (then `code` is 128+n). */
export interface RunScriptResult {
  /** Exit code (128+n when killed by signal n). */
  code: number;
  /** The signal that killed it, if any. */
  signal: string | null;
}

/** Runs one script file. */
export interface CommandRunner {
  /** Runs a script file, streaming its output lines to `opts`. */
  run(script: string, opts: RunScriptOptions): Promise<RunScriptResult>;
}

/** Options of {@link BashRunner}. */
export interface BashRunnerOptions {
  /** Shell binary. Default `/bin/bash`, or `/bin/sh` when there is no bash (busybox images). */
  shell?: string;
  /** Grace period between SIGTERM and SIGKILL of the process group on abort. Default 2000 ms. */
  killGraceMs?: number;
}

/**
 * The real runner: `<shell> -xeu -o pipefail <script>` with exactly the given environment,
 * stdout/stderr piped and split into lines. On abort the script and all its descendants get
 * SIGTERM, then SIGKILL after the grace period; the promise resolves once the script is gone.
 */
export class BashRunner implements CommandRunner {
  readonly shell: string;
  readonly killGraceMs: number;

  constructor(opts: BashRunnerOptions = {}) {
    this.shell = opts.shell ?? (existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh");
    this.killGraceMs = opts.killGraceMs ?? 2000;
  }

  run(script: string, opts: RunScriptOptions): Promise<RunScriptResult> {
    return new Promise((resolve, reject) => {
      if (opts.signal.aborted) {
        resolve({ code: 130, signal: "SIGINT" });
        return;
      }
      // Not detached: the script stays in the worker's process group, so whoever kills the
      // worker's group (an executor, a terminal's Ctrl-C) reaches the commands too.
      const child = spawn(this.shell, ["-xeu", "-o", "pipefail", script], {
        cwd: opts.cwd,
        env: opts.env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const out = new LineSplitter((l) => opts.onLine(l, "stdout"));
      const err = new LineSplitter((l) => opts.onLine(l, "stderr"));
      child.stdout!.on("data", (c: Uint8Array) => out.push(c));
      child.stderr!.on("data", (c: Uint8Array) => err.push(c));
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      let closeTimer: ReturnType<typeof setTimeout> | undefined;
      const victims = new Set<number>();
      const killTree = (sig: "SIGTERM" | "SIGKILL") => {
        if (child.pid === undefined) return;
        for (const p of [child.pid, ...victims]) {
          victims.add(p);
          for (const d of descendants(p)) victims.add(d);
        }
        for (const p of victims) {
          try {
            process.kill(p, sig);
          } catch { /* already gone */ }
        }
      };
      const onAbort = () => {
        killTree("SIGTERM");
        killTimer = setTimeout(() => killTree("SIGKILL"), this.killGraceMs);
      };
      opts.signal.addEventListener("abort", onAbort, { once: true });
      let spawnError: Error | undefined;
      child.on("error", (e) => {
        spawnError = e;
      });
      let exitCode: number | null = null;
      let exitSignal: string | null = null;
      let settled = false;
      const finish = (code: number | null, sig: string | null) => {
        if (settled) return;
        settled = true;
        opts.signal.removeEventListener("abort", onAbort);
        if (killTimer) clearTimeout(killTimer);
        if (closeTimer) clearTimeout(closeTimer);
        out.end();
        err.end();
        const c = exitCode ?? code;
        const s = exitSignal ?? sig;
        if (spawnError && c === null && s === null) {
          reject(spawnError);
          return;
        }
        if (s) resolve({ code: signalExitCode(s), signal: s });
        else resolve({ code: c ?? 1, signal: null });
      };
      child.on("exit", (code, sig) => {
        exitCode = code;
        exitSignal = sig;
        // A background process may still hold the pipes: do not wait for it forever.
        closeTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish(code, sig);
        }, 1000);
      });
      child.on("close", (code, sig) => finish(code, sig));
    });
  }
}

/** Pids of all descendants of `pid` (Linux /proc; empty elsewhere). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of children.get(queue.shift()!) ?? []) {
      if (!out.includes(c)) {
        out.push(c);
        queue.push(c);
      }
    }
  }
  return out;
}
