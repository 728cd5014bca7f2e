/**
 * The lifeline between a local coordinator and its workers: the coordinator holds the write
 * end of each worker's stdin open for as long as the stage runs and never writes to it after
 * the launch. When the coordinator dies — even by `kill -9` — the kernel closes that end, the
 * worker reads end-of-file, and stops its whole process group (the stage's commands too)
 * instead of running on unattended.
 *
 * @module
 */

export { ENV_LIFELINE } from "../workspec/env.ts";

/** Grace between SIGTERM and SIGKILL of the group once the coordinator is gone (ms). */
export const LIFELINE_GRACE_MS = 5000;

/**
 * Resolves when `reader` reaches end-of-file (or fails: a broken pipe means the same); data
 * read is discarded. Rejects with the signal's reason when `signal` aborts first (the reader is
 * left locked: the caller owns it).
 */
export async function untilEndOfFile(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const aborted = new Promise<never>((_, reject) => {
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
  aborted.catch(() => {});
  for (;;) {
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await Promise.race([reader.read(), aborted]);
    } catch (e) {
      if (signal?.aborted) throw e;
      return; // EPIPE / reset: the other end is gone
    }
    if (r.done) return;
  }
}

/** How {@link stopGroupWhenClosed} signals processes (`Deno.kill` in a script). */
export type KillFn = (pid: number, signal: "SIGTERM" | "SIGKILL") => void;

/**
 * Watches `reader` and, at end-of-file, sends SIGTERM to process group `pgid` (the worker's
 * own: the local executor starts each worker as a group leader), then SIGKILL after
 * `graceMs`. Falls back to the process itself when the group cannot be signalled. Resolves
 * once both signals are sent (or `signal` aborts: nothing is sent then).
 */
export async function stopGroupWhenClosed(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  opts: {
    pgid: number;
    kill: KillFn;
    onGone?: () => void;
    graceMs?: number;
    signal?: AbortSignal;
  },
): Promise<void> {
  try {
    await untilEndOfFile(reader, { signal: opts.signal });
  } catch {
    return; // aborted: the worker ended on its own
  }
  opts.onGone?.();
  const send = (sig: "SIGTERM" | "SIGKILL") => {
    try {
      opts.kill(-opts.pgid, sig);
    } catch {
      try {
        opts.kill(opts.pgid, sig);
      } catch { /* already gone */ }
    }
  };
  send("SIGTERM");
  await new Promise((r) => setTimeout(r, opts.graceMs ?? LIFELINE_GRACE_MS));
  send("SIGKILL");
}
