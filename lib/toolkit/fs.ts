/**
 * File-system primitives: an atomic write (temp file + rename, so a reader never sees a
 * partial file) and a temp dir released with `await using`.
 *
 * @module
 */

import * as fs from "node:fs";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of the new file (default 0o644; use 0o600 for anything private). */
  mode?: number;
  /**
   * Where to write the temp file (default next to `path`); must be on the same file system
   * as `path`.
   */
  tempPath?: string;
}

function tempFor(path: string, opts: AtomicWriteOptions): string {
  return opts.tempPath ?? `${path}.tmp-${crypto.randomUUID()}`;
}

/**
 * Writes `data` to `path` atomically: a reader sees the old file or the complete new one,
 * never a partial one; a failed write leaves no temp file behind.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./fs.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.json`, "{}\n", { mode: 0o600 });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tempFor(path, opts);
  try {
    await writeFile(tmp, data, { mode: opts.mode ?? 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

/** The synchronous {@link writeFileAtomic}, for code that must not yield (the relay). */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): void {
  const tmp = tempFor(path, opts);
  try {
    fs.writeFileSync(tmp, data, { mode: opts.mode ?? 0o644 });
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** A temp dir, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  /** Its absolute path. */
  readonly path: string;
}

/** Options of {@link makeTempDir}. */
export interface TempDirOptions {
  /** Parent directory (default the system's temp dir). */
  dir?: string;
  /** Name prefix (default `gangplank-`). */
  prefix?: string;
}

/**
 * Creates a private (0700) temp dir that `await using` removes.
 *
 * @example
 * ```ts
 * import { makeTempDir } from "./fs.ts";
 * let path: string;
 * {
 *   await using tmp = await makeTempDir({ prefix: "example-" });
 *   path = tmp.path;
 * }
 * await Deno.stat(path).then(() => { throw new Error("still there"); }, () => {});
 * ```
 */
export async function makeTempDir(opts: TempDirOptions = {}): Promise<TempDir> {
  const path = await mkdtemp(join(opts.dir ?? tmpdir(), opts.prefix ?? "gangplank-"));
  return {
    path,
    async [Symbol.asyncDispose]() {
      await rm(path, { recursive: true, force: true }).catch(() => {});
    },
  };
}
