/**
 * Compare-and-swap merges of shared JSON documents (`builds.json`, a shared build's
 * `meta.json`): read the document with its ETag, merge ours into it, write it back only if it
 * is still at that ETag (`If-Match`, or `If-None-Match: *` when it did not exist), and on a lost
 * race (HTTP 412) read again and merge again, with bounded attempts and jittered backoff. A
 * write is never dropped silently: after the last attempt {@link ConcurrentUpdateError} names
 * the key.
 *
 * @module
 */

import { pause } from "../toolkit/delay.ts";
import { backoffDelay } from "../toolkit/retry.ts";
import { GangplankError } from "../errors/mod.ts";
import type { ArtifactStoreLike, WriteCondition } from "./views.ts";

/** Attempts of {@link casMergeJSON} before it gives up (default). */
export const CAS_MAX_ATTEMPTS = 16;

/** A shared document kept changing (or kept losing our merge) through every attempt. */
export class ConcurrentUpdateError extends GangplankError {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly attempts: number,
    readonly detail: string,
  ) {
    super(`${bucket}/${key}: ${detail} (gave up after ${attempts} attempts)`);
  }
}

/** Options of {@link casMergeJSON}. */
export interface CasMergeOptions {
  store: Pick<ArtifactStoreLike, "getJSONVersioned" | "putJSONIf">;
  bucket: string;
  key: string;
  /**
   * The document to write given the current one (`undefined` when absent), or `undefined`
   * when the current one already holds everything (nothing to write).
   */
  merge(current: unknown): unknown | undefined;
  /**
   * Checked against a fresh read after a write that succeeded: false when the document lost
   * our contribution anyway (an endpoint that ignores conditional writes and a concurrent
   * writer); the merge is then done again. Default: always true.
   */
  verify?(after: unknown): boolean;
  signal: AbortSignal;
  /** Default {@link CAS_MAX_ATTEMPTS}. */
  maxAttempts?: number;
  /** Seams for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** What {@link casMergeJSON} did. */
export interface CasMergeResult {
  /** The document now in the store (ours, merged). */
  value: unknown;
  /** False when the store already held everything (nothing was written). */
  written: boolean;
  attempts: number;
  /** Lost races (412) and failed verifications along the way. */
  conflicts: number;
  /** Bytes written (the last successful write). */
  bytes: number;
}

/**
 * Merges into a shared JSON document with compare-and-swap writes.
 * @throws {ConcurrentUpdateError} after `maxAttempts` lost races or failed verifications.
 *
 * @example
 * ```ts
 * await casMergeJSON({
 *   store, bucket: "builder", key: "builds.json", signal,
 *   merge: (cur) => mergeBuilds(cur ? parseBuilds(cur) : undefined, local),
 * });
 * ```
 */
export async function casMergeJSON(o: CasMergeOptions): Promise<CasMergeResult> {
  const max = o.maxAttempts ?? CAS_MAX_ATTEMPTS;
  const sleep = o.sleep ?? pause;
  const random = o.random ?? Math.random;
  let conflicts = 0;
  let detail = "";
  for (let attempt = 1; attempt <= max; attempt++) {
    o.signal.throwIfAborted();
    const cur = await o.store.getJSONVersioned(o.bucket, o.key, { signal: o.signal });
    const next = o.merge(cur?.value);
    if (next === undefined) {
      return { value: cur?.value, written: false, attempts: attempt, conflicts, bytes: 0 };
    }
    const cond: WriteCondition = cur ? { etag: cur.etag } : { absent: true };
    if (await o.store.putJSONIf(o.bucket, o.key, next, cond, { signal: o.signal })) {
      const after = o.verify
        ? (await o.store.getJSONVersioned(o.bucket, o.key, { signal: o.signal }))?.value
        : next;
      if (!o.verify || o.verify(after)) {
        const bytes = JSON.stringify(next).length;
        return { value: next, written: true, attempts: attempt, conflicts, bytes };
      }
      detail = "the endpoint accepted our write but a concurrent writer replaced it " +
        "(it ignores conditional writes)";
    } else {
      detail = "concurrent writers kept changing it";
    }
    conflicts++;
    // Jittered exponential backoff (10 ms doubling, capped at 1 s): parallel writers spread out.
    await sleep(backoffDelay(attempt, { baseDelayMs: 10, maxDelayMs: 1000, random }), o.signal);
  }
  throw new ConcurrentUpdateError(o.bucket, o.key, max, detail);
}
