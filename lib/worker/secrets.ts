/**
 * How the worker takes its secrets (the stage's relay key, registry secrets) so that the
 * stage's commands, which run as the same user, cannot read them afterwards:
 *
 * - {@link consumeSecretFile} reads a secret file, then removes it, or, where it cannot be
 *   removed (a podman secret is a bind-mounted 0400 file), makes it writable and empties it.
 *   Run before any stage command starts.
 * - {@link makeUndumpable} marks the worker process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`
 *   through Deno's FFI): `/proc/<worker pid>/environ`, `mem`, `fd/` and ptrace are then closed
 *   to every process without `CAP_SYS_PTRACE`, `CAP_SYS_ADMIN` or `CAP_PERFMON` — the stage's
 *   commands among them, unless they run as root with those capabilities.
 *
 * @module
 */

import {
  chmodSync,
  closeSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { UsageError } from "../errors/mod.ts";

/** How a consumed secret file was made unreadable. */
export type SecretFileFate = "removed" | "emptied" | "left";

/**
 * Reads a secret from `file` (named by env var `fileVar`, for messages), refusing a file other
 * users could read, then removes it or empties it. Never puts the value in an error. The file
 * operations are synchronous: a few bytes on a local disk, on every worker's start-up path,
 * where each asynchronous one waits for a thread of a busy machine.
 * @throws {UsageError} for a missing, unreadable, group/other-readable or empty file.
 */
export function consumeSecretFile(
  fileVar: string,
  file: string,
): Promise<{ secret: string; fate: SecretFileFate }> {
  try {
    return Promise.resolve(consumeSync(fileVar, file));
  } catch (e) {
    return Promise.reject(e);
  }
}

function consumeSync(fileVar: string, file: string): { secret: string; fate: SecretFileFate } {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new UsageError(`${fileVar}: ${file}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new UsageError(`${fileVar}: ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new UsageError(
      `${fileVar}: ${file} is readable by others (mode ${
        (st.mode & 0o777).toString(8)
      }); it must be 0600`,
    );
  }
  const secret = readFileSync(file, "utf8").trim();
  if (!secret) throw new UsageError(`${fileVar}: ${file} is empty`);
  return { secret, fate: hide(file) };
}

function hide(file: string): SecretFileFate {
  try {
    rmSync(file);
    return "removed";
  } catch { /* a bind mount (podman secret) or a read-only dir */ }
  try {
    // A podman secret is mounted 0400: its owner may make it writable to empty it.
    try {
      chmodSync(file, 0o600);
    } catch { /* not ours to change: opening it for writing says */ }
    const fd = openSync(file, "r+");
    try {
      ftruncateSync(fd, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return "emptied";
  } catch {
    return "left";
  }
}

/**
 * Makes this process non-dumpable (Linux, through Deno's FFI and the C library). Resolves
 * false where that is not possible (no FFI permission, not Linux, no `libc.so.6`).
 */
export function makeUndumpable(): boolean {
  if (Deno.build.os !== "linux") return false;
  for (const name of ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"]) {
    let lib;
    try {
      lib = Deno.dlopen(name, {
        prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      });
    } catch {
      continue;
    }
    try {
      const PR_SET_DUMPABLE = 4;
      const PR_GET_DUMPABLE = 3;
      if (lib.symbols.prctl(PR_SET_DUMPABLE, 0n, 0n, 0n, 0n) !== 0) return false;
      return lib.symbols.prctl(PR_GET_DUMPABLE, 0n, 0n, 0n, 0n) === 0;
    } finally {
      lib.close();
    }
  }
  return false;
}
