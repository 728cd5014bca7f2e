/**
 * Conditional reads, as S3 evaluates them: `If-Match` / `If-Unmodified-Since` (412 when they
 * fail) and `If-None-Match` / `If-Modified-Since` (304 on GET/HEAD) against an object's ETag
 * and Last-Modified, and the same four as `x-amz-copy-source-if-*` on a copy's source (412
 * for all). An ETag condition that holds overrides its date companion, as in RFC 7232.
 *
 * @module
 */

import type { IncomingMessage } from "node:http";
import { S3Error } from "./s3_error.ts";
import { etagListMatches } from "./server_core.ts";

/** What a condition is checked against. */
export interface Validators {
  /** ETag without quotes. */
  etag: string;
  mtime: Date;
}

/** The outcome of the read conditions: go on, or answer 304 Not Modified. */
export type ReadCondition = "ok" | "not-modified";

function preconditionFailed(): S3Error {
  return new S3Error(
    412,
    "PreconditionFailed",
    "At least one of the preconditions you specified did not hold",
  );
}

/** An HTTP date, or undefined for a missing or unparsable one (which S3 ignores). */
function httpDate(v: string | string[] | undefined): number | undefined {
  if (typeof v !== "string") return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** Last-Modified as sent (whole seconds), in ms. */
function lastModified(v: Validators): number {
  return Math.floor(v.mtime.getTime() / 1000) * 1000;
}

function evaluate(
  v: Validators,
  h: { match?: string; noneMatch?: string; unmodified?: number; modified?: number },
): "ok" | "failed" | "not-modified" {
  const lm = lastModified(v);
  if (h.match !== undefined) {
    if (!etagListMatches(h.match, v.etag)) return "failed";
  } else if (h.unmodified !== undefined && lm > h.unmodified) return "failed";
  if (h.noneMatch !== undefined) {
    if (etagListMatches(h.noneMatch, v.etag)) return "not-modified";
  } else if (h.modified !== undefined && lm <= h.modified) return "not-modified";
  return "ok";
}

/** GET/HEAD conditions: throws 412, or says to answer 304. */
export function readCondition(req: IncomingMessage, v: Validators): ReadCondition {
  const h = req.headers;
  const r = evaluate(v, {
    match: typeof h["if-match"] === "string" ? h["if-match"] : undefined,
    noneMatch: typeof h["if-none-match"] === "string" ? h["if-none-match"] : undefined,
    unmodified: httpDate(h["if-unmodified-since"]),
    modified: httpDate(h["if-modified-since"]),
  });
  if (r === "failed") throw preconditionFailed();
  return r;
}

/** `x-amz-copy-source-if-*` on a copy (CopyObject, UploadPartCopy): throws 412 if one fails. */
export function copySourceCondition(req: IncomingMessage, v: Validators): void {
  const h = req.headers;
  const s = (name: string) => {
    const x = h[`x-amz-copy-source-${name}`];
    return typeof x === "string" ? x : undefined;
  };
  const r = evaluate(v, {
    match: s("if-match"),
    noneMatch: s("if-none-match"),
    unmodified: httpDate(s("if-unmodified-since")),
    modified: httpDate(s("if-modified-since")),
  });
  if (r !== "ok") throw preconditionFailed();
}
