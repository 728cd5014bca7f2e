/**
 * Helpers of the local-backend end-to-end tests: running `submit.ts` as a subprocess while
 * tracking every process it starts (through /proc), so a test can assert that nothing it
 * started outlives it.
 *
 * @module
 */

import { ROOT, waitFor, withTestState } from "../_helpers/mod.ts";
import { descendants, type SeenProcess } from "../_helpers/procs.ts";

export { descendants, type SeenProcess, stillAlive } from "../_helpers/procs.ts";

/** Result of {@link runSubmit}. */
export interface SubmitRun {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Every descendant process seen while it ran. */
  seen: SeenProcess[];
}

/** Options of {@link runSubmit}. */
export interface SubmitOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** Called with the combined output so far; return a signal to send it to submit. */
  interruptWhen?: (output: string) => Deno.Signal | undefined;
}

/**
 * Runs `scripts/submit.ts` with the given args, polling /proc every 20 ms for its
 * descendants (and once more right before an `interruptWhen` signal). Killed (SIGKILL, test fails) after `timeoutMs`.
 */
export async function runSubmit(args: string[], opts: SubmitOptions = {}): Promise<SubmitRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/scripts/submit.ts`, ...args],
    cwd: opts.cwd,
    env: withTestState({ NO_COLOR: "1", ...opts.env }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const seen = new Map<string, SeenProcess>();
  let out = "";
  let err = "";
  let interrupted = false;
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>, which: "out" | "err") => {
    for await (const c of s) {
      const t = dec.decode(c, { stream: true });
      if (which === "out") out += t;
      else err += t;
      if (opts.interruptWhen && !interrupted) {
        const sig = opts.interruptWhen(out + err);
        if (sig) {
          interrupted = true;
          // One sample right before the signal: what runs at that moment is in `seen` even
          // when it started after the poller's last look (20 ms, far more under load).
          for (const p of descendants(child.pid)) seen.set(`${p.pid}:${p.start}`, p);
          try {
            child.kill(sig);
          } catch { /* gone */ }
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout, "out"), pump(child.stderr, "err")]);
  let finished = false;
  const poller = (async () => {
    while (!finished) {
      for (const p of descendants(child.pid)) seen.set(`${p.pid}:${p.start}`, p);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const status = await child.status;
  clearTimeout(timer);
  finished = true;
  await poller;
  await pumps;
  if (timedOut) {
    throw new Error(`submit ${args.join(" ")} timed out after ${timeoutMs} ms\n${out}\n${err}`);
  }
  return {
    code: status.code,
    signal: status.signal,
    stdout: out,
    stderr: err,
    seen: [...seen.values()],
  };
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export async function portOpen(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** Lists every file under `dir` (relative paths, sorted). */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of Deno.readDirSync(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) walk(`${d}/${e.name}`, r);
      else out.push(r);
    }
  };
  try {
    walk(dir, "");
  } catch { /* missing */ }
  return out.sort();
}

/** A standalone relay (`scripts/relay.ts`) serving `<dir>/srv`: an external S3 store for `-m`. */
export interface ExternalRelay extends AsyncDisposable {
  /** The directory it serves (bucket `builder` is `<srv>/builder`). */
  srv: string;
  /** Its config file, for `-m`. */
  cfg: string;
}

/** Starts a standalone relay under `dir` and waits for its config file. */
export async function startExternalRelay(dir: string): Promise<ExternalRelay> {
  const srv = `${dir}/srv`;
  const cfg = `${dir}/relay.json`;
  await Deno.mkdir(srv);
  const relay = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/scripts/relay.ts`, "-d", srv, "-m", cfg],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      relay.kill("SIGTERM");
    } catch { /* gone */ }
    await relay.status;
  };
  try {
    await waitFor(() => Deno.statSync(cfg).isFile, { timeoutMs: 30_000, what: "relay config" });
  } catch (e) {
    await stop();
    throw e;
  }
  return { srv, cfg, [Symbol.asyncDispose]: stop };
}
