/**
 * State shared by the worker's steps (fetch, run, return): the WorkSpec, the srv dir and the
 * result being filled in, plus the confinement rule every path below srv goes through.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { realpath } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { srvRelative, type WorkSpec } from "../workspec/workspec.ts";
import type { ArtifactStoreLike } from "../store/views.ts";
import type { WorkerResult } from "./result.ts";
import { objectKey } from "../workspec/layout.ts";

/** A path that would leave the srv dir. */
export class PathEscapeError extends Error {
  constructor(readonly path: string) {
    super(`${path}: escapes the srv dir`);
  }
}

/** What was known about a file right after it was fetched. */
export interface Fetched {
  sha256: string;
  size: number;
  mtimeMs: number;
  json?: unknown;
}

/** The worker's state while it runs. */
export interface WorkerContext {
  ws: WorkSpec;
  store: ArtifactStoreLike;
  signal: AbortSignal;
  srv: string;
  srvReal: string;
  arch: string;
  scratch: string;
  log: (line: string) => void;
  fetched: Map<string, Fetched>;
  result: WorkerResult;
  /** Limit of cache tarball extraction (see `WorkerDeps.extractMaxBytes`). */
  extractMaxBytes?: number;
}

/** The sha256 (hex) of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Uint8Array);
  return h.digest("hex");
}

/**
 * Resolves `rel` (relative to srv) to an absolute path, refusing anything that leaves srv,
 * including through a symlink of an existing ancestor.
 */
export async function confine(ctx: WorkerContext, rel: string): Promise<string> {
  const norm = srvRelative(rel);
  if (norm === undefined) throw new PathEscapeError(rel);
  const abs = join(ctx.srv, norm);
  // Find the deepest existing ancestor (or the path itself) and check where it really is.
  let probe = abs;
  for (;;) {
    try {
      const real = await realpath(probe);
      if (real !== ctx.srvReal && !real.startsWith(ctx.srvReal + sep)) {
        throw new PathEscapeError(rel);
      }
      break;
    } catch (e) {
      if (e instanceof PathEscapeError) throw e;
      if (probe === ctx.srv) break;
      probe = dirname(probe);
    }
  }
  return abs;
}

/** The object key of `k` below the WorkSpec's key prefix. */
export const keyOf = (ws: WorkSpec, k: string): string => objectKey(ws.return.key_prefix, k);

/**
 * Records a failure: the first one sets the result's exit code and message; every one is
 * logged.
 */
export function failWith(ctx: WorkerContext, code: number, message: string): void {
  if (ctx.result.exitCode === 0) {
    ctx.result.exitCode = code;
    ctx.result.message = message;
  }
  ctx.log(`gangway: ERROR: ${message}`);
}
