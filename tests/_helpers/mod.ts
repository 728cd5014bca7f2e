/**
 * Shared test helpers: temp dirs that clean themselves up, running the project's scripts as
 * subprocesses the way a user does, and polling with a deadline (tests never sleep to wait).
 *
 * @module
 */

import { makeTempDir, type TempDir } from "../../lib/toolkit/fs.ts";
/** Absolute path of the repository root. */
export const ROOT: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** A temporary directory removed (recursively) when disposed. */
export function tempDir(prefix = "gp-test-"): Promise<TempDir> {
  return makeTempDir({ prefix });
}

let stateHome: string | undefined;

/**
 * A private `XDG_STATE_HOME` for everything this test process runs: made on first use, removed
 * when the process ends. A run with `-e`/`--env-file` keeps its digest key under
 * `$XDG_STATE_HOME/gangplank/` (else under `$HOME/.local/state/`, see
 * lib/coordinator/env_digest.ts), so with this no test writes into the real home. Every helper
 * that starts a script ({@link runCommand}, {@link runScript}, tests/_helpers/cli.ts, the e2e
 * spawners) passes it through {@link withTestState}.
 */
export function testStateHome(): string {
  if (stateHome === undefined) {
    const dir = Deno.makeTempDirSync({ prefix: "gp-test-state-" });
    stateHome = dir;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* gone already */ }
    });
  }
  return stateHome;
}

/**
 * `env` with `XDG_STATE_HOME` set to {@link testStateHome} unless `env` names one itself (a test
 * that looks at the key file gives its own).
 */
export function withTestState<T extends Record<string, string | undefined>>(
  env: T,
): T & { XDG_STATE_HOME: string } {
  return { ...env, XDG_STATE_HOME: env.XDG_STATE_HOME ?? testStateHome() };
}

/** Result of a finished subprocess. */
export interface RunResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link runScript}. */
export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Kill the process (SIGKILL) and fail after this long. Default 120 s. */
  timeoutMs?: number;
  stdin?: string;
}

/**
 * Runs `scripts/<name>` with the current deno binary and collects its output. The process is
 * killed if it outlives `timeoutMs`, and the test fails with the output so far.
 */
export async function runScript(
  name: string,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  return await runCommand(Deno.execPath(), ["run", "-A", `${ROOT}/scripts/${name}`, ...args], opts);
}

/**
 * Runs any command with a deadline and collects its output. It inherits this process's
 * environment, with `opts.env` on top and {@link withTestState}'s `XDG_STATE_HOME`.
 */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: withTestState({ NO_COLOR: "1", ...opts.env }),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const timeoutMs = opts.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    const result = {
      code: out.code,
      signal: out.signal,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
    if (timedOut) {
      throw new Error(
        `${cmd} ${args.join(" ")} did not finish within ${timeoutMs} ms\n` +
          `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
      );
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws). */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, what = "condition" } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}` + (last ? `: ${last}` : ""),
  );
}

/** `n` random bytes (filled 64 KiB at a time, getRandomValues' limit). */
export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

/** sha256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const { createReadStream } = await import("node:fs");
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Uint8Array);
  return h.digest("hex");
}

/**
 * Every entry under `dir` (sorted): path, mode, size, mtime and inode, and the bytes of each
 * file. Two equal snapshots mean nothing under `dir` was created, removed, rewritten or touched.
 */
export function treeSnapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of [...Deno.readDirSync(d)].sort((a, b) => a.name.localeCompare(b.name))) {
      const p = `${d}/${e.name}`;
      const st = Deno.statSync(p);
      out.push(`${p} ${st.mode} ${st.size} ${st.mtime?.getTime()} ${st.ino}`);
      if (e.isDirectory) walk(p);
      else out.push(new TextDecoder().decode(Deno.readFileSync(p)));
    }
  };
  walk(dir);
  return out.join("\n");
}
