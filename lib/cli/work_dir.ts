/**
 * The run's work dir, one rule for every backend and for hop mode.
 *
 * @module
 */

import { resolve } from "node:path";
import { UsageError } from "../errors/mod.ts";

/**
 * The work dir: `-w` (created if missing), or a new `./gangplank-run-<yyyymmdd-hhmmss>[-n]`
 * in the current directory — one rule for every backend.
 */
export async function prepareWorkDir(given: string | undefined, cwd: string): Promise<string> {
  if (given) {
    const dir = resolve(cwd, given);
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (e) {
      throw new UsageError(`-w ${given}: ${(e as Error).message}`);
    }
    return dir;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  for (let i = 1; i < 100; i++) {
    const dir = resolve(cwd, `gangplank-run-${stamp}${i > 1 ? `-${i}` : ""}`);
    try {
      await Deno.mkdir(dir);
      return dir;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) {
        throw new UsageError(`cannot create a work dir in ${cwd}: ${(e as Error).message}`);
      }
    }
  }
  throw new UsageError(`cannot create a fresh work dir in ${cwd}`);
}
