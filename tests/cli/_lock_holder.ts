/**
 * A process that takes a work dir's lock (`lockWorkDir`, as a run does), says `locked <pid>`
 * and holds it until killed. The lock tests kill it with SIGKILL.
 *
 * @module
 */
import { lockWorkDir } from "../../lib/cli/work_lock.ts";

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
