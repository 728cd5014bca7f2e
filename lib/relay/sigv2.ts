/**
 * AWS Signature Version 2 for S3, server side: `Authorization: AWS <key>:<signature>` headers
 * and presigned URLs (`AWSAccessKeyId`, `Expires`, `Signature`), as S3 and MinIO accept them.
 * `aws s3 presign` (default configuration), `s3cmd signurl` and boto's `signature_version='s3'`
 * produce them.
 *
 * SigV2 signs no payload hash: the body is covered only by `Content-MD5` when the client sent
 * one (the relay checks it). Pure functions; no I/O.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import {
  type AuthResult,
  type CredentialLookup,
  type Credentials,
  safeDecode,
  safeEqualText,
  signedVariants,
  splitRequest,
  uriEncode,
} from "./sigv4.ts";

/** Allowed clock skew for header-signed requests (as S3: 15 minutes). */
const MAX_SKEW_MS = 15 * 60 * 1000;

/**
 * Query parameters that are part of the string to sign (S3's sub-resources and response
 * overrides); every other parameter is not signed.
 */
const SIGNED_SUBRESOURCES = new Set([
  "accelerate",
  "acl",
  "attributes",
  "cors",
  "delete",
  "encryption",
  "legal-hold",
  "lifecycle",
  "location",
  "logging",
  "notification",
  "object-lock",
  "partNumber",
  "policy",
  "replication",
  "requestPayment",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-content-type",
  "response-expires",
  "restore",
  "retention",
  "select",
  "select-type",
  "tagging",
  "torrent",
  "uploadId",
  "uploads",
  "versionId",
  "versioning",
  "versions",
  "website",
]);

function fail(status: number, code: string, message: string): AuthResult {
  return { ok: false, status, code, message };
}

/** True if the request carries SigV2 credentials (header or query). */
export function isSigV2(rawHeaders: string[], pairs: [string, string][]): boolean {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === "authorization") {
      return rawHeaders[i + 1].startsWith("AWS ");
    }
  }
  return pairs.some(([k]) => k === "AWSAccessKeyId") && pairs.some(([k]) => k === "Signature");
}

/**
 * The canonical resource: the path as sent (and, if different, re-encoded the canonical way)
 * plus the signed sub-resources, sorted, with their decoded values.
 */
function canonicalResources(rawPath: string, rawQuery: string): string[] {
  const subs: string[] = [];
  for (const part of rawQuery === "" ? [] : rawQuery.split("&")) {
    const eq = part.indexOf("=");
    const k = safeDecode(eq < 0 ? part : part.slice(0, eq)) ?? "";
    if (!SIGNED_SUBRESOURCES.has(k)) continue;
    // Decoded values enter as their UTF-8 bytes, like the header values (see signedBytes).
    const v = Buffer.from(safeDecode(part.slice(eq + 1)) ?? "", "utf8").toString("latin1");
    subs.push(eq < 0 ? k : `${k}=${v}`);
  }
  subs.sort((a, b) => {
    const ka = a.split("=")[0], kb = b.split("=")[0];
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  const suffix = subs.length > 0 ? "?" + subs.join("&") : "";
  // botocore signs bucket-level requests over `/<bucket>/`, with the trailing slash.
  const paths = /^\/[^/]+$/.test(rawPath) ? [rawPath, rawPath + "/"] : [rawPath];
  const decoded = safeDecode(rawPath);
  if (decoded !== undefined) {
    const re = uriEncode(decoded, true);
    if (re !== rawPath) paths.push(re);
  }
  return paths.map((p) => p + suffix);
}

/** Parses an HTTP date (RFC 1123 and the other forms `Date.parse` reads); undefined if bad. */
function parseHttpDate(s: string): number | undefined {
  if (s.trim() === "") return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) || t < 0 ? undefined : t;
}

/**
 * Verifies a SigV2-signed S3 request (call only when {@link isSigV2} is true). `now` is
 * injectable for tests.
 */
export function verifyRequestV2(
  req: { method: string; rawUrl: string; rawHeaders: string[] },
  creds: Credentials | CredentialLookup,
  now: number = Date.now(),
): AuthResult {
  const parts = splitRequest(req);
  if (!parts.ok) return parts;
  const { rawPath, rawQuery, pairs, headers } = parts;
  const one = (name: string) => headers.get(name)?.[0];
  const authHeader = one("authorization");

  let accessKey: string;
  let signature: string;
  let dateLine: string;
  if (authHeader !== undefined) {
    const m = /^AWS ([^:\s]+):(\S+)$/.exec(authHeader.trim());
    if (!m) return fail(400, "InvalidArgument", "malformed SigV2 Authorization header");
    if (pairs.some(([k]) => k === "Signature" || k === "X-Amz-Signature")) {
      return fail(400, "InvalidArgument", "both Authorization header and a signed URL given");
    }
    [, accessKey, signature] = m;
    const amzDate = one("x-amz-date");
    const date = amzDate ?? one("date");
    const t = date === undefined ? undefined : parseHttpDate(date);
    if (t === undefined) {
      return fail(
        403,
        "AccessDenied",
        "AWS authentication requires a valid Date or x-amz-date header",
      );
    }
    if (Math.abs(now - t) > MAX_SKEW_MS) {
      return fail(
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
      );
    }
    // With x-amz-date the Date line is empty: x-amz-date is signed among the x-amz- headers.
    dateLine = amzDate !== undefined ? "" : date!;
  } else {
    const get = (k: string) => pairs.find(([n]) => n === k)?.[1];
    accessKey = get("AWSAccessKeyId") ?? "";
    signature = get("Signature") ?? "";
    const expires = get("Expires") ?? "";
    if (!/^\d+$/.test(expires)) {
      return fail(403, "AccessDenied", "Query-string authentication requires a valid Expires");
    }
    if (now > Number(expires) * 1000) return fail(403, "AccessDenied", "Request has expired");
    dateLine = expires;
  }

  const found = typeof creds === "function"
    ? creds(accessKey)
    : creds.accessKey === accessKey
    ? creds
    : undefined;
  if (found === undefined || found.accessKey !== accessKey) {
    return fail(
      403,
      "InvalidAccessKeyId",
      "The AWS Access Key Id you provided does not exist in our records.",
    );
  }

  const amzLines = [...headers.entries()]
    .filter(([k]) => k.startsWith("x-amz-"))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, vs]) => `${k}:${vs.map((v) => v.trim()).join(",")}\n`)
    .join("");
  for (const resource of canonicalResources(rawPath, rawQuery)) {
    const toSign = [
      req.method,
      one("content-md5") ?? "",
      one("content-type") ?? "",
      dateLine,
      amzLines + resource,
    ].join("\n");
    const matches = signedVariants(toSign).some((bytes) =>
      safeEqualText(createHmac("sha1", found.secretKey).update(bytes).digest("base64"), signature)
    );
    if (matches) {
      return { ok: true, accessKey, payloadHash: "UNSIGNED-PAYLOAD" };
    }
  }
  return fail(
    403,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. " +
      "Check your key and signing method.",
  );
}
