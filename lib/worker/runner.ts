/**
 * Running one rendered stage script: the {@link CommandRunner} seam (unit tests pass a fake)
 * and the real runner, which spawns `/bin/bash -xeu -o pipefail <script>` in its own process
 * group with exactly the environment given, streams its output line by line, and kills the
 * whole group when aborted.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";

/** Options of {@link CommandRunner.run}. */
export interface RunScriptOptions {
  /** The complete environment of the script (nothing is inherited). */
  env: Record<string, string>;
  cwd: string;
  signal: AbortSignal;
  /** Receives each output line (without the newline). */
  onLine: (line: string, stream: "stdout" | "stderr") => void;
}

/** How a script ended: its exit code, or the signal that killed it (then `code` is 128+n). */
export interface RunScriptResult {
  code: number;
  signal: string | null;
}

/** Runs one script file. */
export interface CommandRunner {
  run(script: string, opts: RunScriptOptions): Promise<RunScriptResult>;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** Options of {@link BashRunner}. */
export interface BashRunnerOptions {
  /** Shell binary. Default `/bin/bash`, or `/bin/sh` when there is no bash (busybox images). */
  shell?: string;
  /** Grace period between SIGTERM and SIGKILL of the process group on abort. Default 2000 ms. */
  killGraceMs?: number;
}

/** Splits a byte stream into lines, calling `emit` for each complete one (and the tail). */
function lineSplitter(emit: (line: string) => void) {
  const dec = new TextDecoder();
  let buf = "";
  return {
    push(chunk: Uint8Array) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        emit(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    },
    end() {
      buf += dec.decode();
      if (buf !== "") emit(buf);
      buf = "";
    },
  };
}

/**
 * The real runner: `<shell> -xeu -o pipefail <script>`, in a new session/process group
 * (`detached`), stdout/stderr piped and split into lines. On abort the group gets SIGTERM, then
 * SIGKILL after the grace period; the promise resolves once the process is gone.
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
      const child = spawn(this.shell, ["-xeu", "-o", "pipefail", script], {
        cwd: opts.cwd,
        env: opts.env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const out = lineSplitter((l) => opts.onLine(l, "stdout"));
      const err = lineSplitter((l) => opts.onLine(l, "stderr"));
      child.stdout!.on("data", (c: Uint8Array) => out.push(c));
      child.stderr!.on("data", (c: Uint8Array) => err.push(c));
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      const killGroup = (sig: "SIGTERM" | "SIGKILL") => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          try {
            child.kill(sig);
          } catch { /* already gone */ }
        }
      };
      const onAbort = () => {
        killGroup("SIGTERM");
        killTimer = setTimeout(() => killGroup("SIGKILL"), this.killGraceMs);
      };
      opts.signal.addEventListener("abort", onAbort, { once: true });
      let spawnError: Error | undefined;
      child.on("error", (e) => {
        spawnError = e;
      });
      let exitCode: number | null = null;
      let exitSignal: string | null = null;
      child.on("exit", (code, sig) => {
        exitCode = code;
        exitSignal = sig;
        // Whatever the script left running in its group goes with it (and releases the pipes).
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch { /* group already empty */ }
        }
      });
      child.on("close", (code, sig) => {
        opts.signal.removeEventListener("abort", onAbort);
        if (killTimer) clearTimeout(killTimer);
        out.end();
        err.end();
        const c = exitCode ?? code;
        const s = exitSignal ?? sig;
        if (spawnError && c === null && s === null) {
          reject(spawnError);
          return;
        }
        if (s) resolve({ code: 128 + (SIGNALS[s] ?? 0), signal: s });
        else resolve({ code: c ?? 1, signal: null });
      });
    });
  }
}
