/**
 * A process that takes a work dir's lock (`lockWorkDir`, as a run does), says `locked <pid>`
 * and holds it until killed; and {@link startLockHolder}, which starts one for a test. The lock
 * tests kill it with SIGKILL.
 *
 * @module
 */
import { lockWorkDir } from "../../lib/cli/work_lock.ts";

/** A running lock holder: its pid; `kill9()` ends it (SIGKILL) and waits for it. */
export interface LockHolderProcess extends AsyncDisposable {
  readonly pid: number;
  kill9(): Promise<void>;
}

/**
 * Starts this file as a process holding `dir`'s lock (run id `gp-holder`) and returns once it
 * says it holds it (within 60 s, else it is killed and the test fails). Disposing kills it.
 */
export async function startLockHolder(dir: string): Promise<LockHolderProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, dir],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let ended: Promise<void> | undefined;
  const kill9 = () =>
    ended ??= (async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    })();
  try {
    const reader = child.stdout.getReader();
    let out = "";
    const deadline = Date.now() + 60_000;
    const timer = setTimeout(() => reader.cancel().catch(() => {}), 60_000);
    try {
      while (!/locked \d+\n/.test(out) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
    } finally {
      clearTimeout(timer);
      reader.releaseLock();
    }
    if (out !== `locked ${child.pid}\n`) {
      throw new Error(`the lock holder did not take ${dir}'s lock: ${JSON.stringify(out)}`);
    }
  } catch (e) {
    await kill9();
    throw e;
  }
  return { pid: child.pid, kill9, [Symbol.asyncDispose]: kill9 };
}

if (import.meta.main) {
  const [dir] = Deno.args;
  const lock = await lockWorkDir(dir, { runId: "gp-holder", pid: Deno.pid }, {
    flag: `-w ${dir}`,
    warn: (l) => console.error(l),
    signal: new AbortController().signal,
  });
  console.log(`locked ${Deno.pid}`);
  // Held until this process is killed (the interval keeps the event loop alive).
  setInterval(() => void lock, 60_000);
}
