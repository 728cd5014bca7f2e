/**
 * AWS Signature Version 4, server side: verification of header-signed and presigned S3
 * requests, and the chunk signatures of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads.
 *
 * Pure functions over a small request description; no I/O.
 *
 * @module
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** S3 access key and secret key. */
export interface Credentials {
  /** Access key id. */
  accessKey: string;
  /** Secret key (never logged). */
  secretKey: string;
}

/** What signature verification needs to know about a request. */
export interface SignedRequest {
  method: string;
  /** The raw request target as sent (path and query, still percent-encoded). */
  rawUrl: string;
  /** Raw header list as `[name, value, name, value, ...]` (node's `req.rawHeaders`). */
  rawHeaders: string[];
}

/** The outcome of a verification that did not pass: an S3 error code with a message. */
export interface AuthFailure {
  ok: false;
  status: number;
  code: string;
  message: string;
}

/** A verified request. */
export interface AuthSuccess {
  ok: true;
  /** The access key the request was signed with. */
  accessKey: string;
  /** The payload hash the client declared (hex, `UNSIGNED-PAYLOAD`, or `STREAMING-...`). */
  payloadHash: string;
  /** Present for streaming uploads: what chunk signatures chain from. */
  streaming?: ChunkSigner;
}

/** Everything needed to check `aws-chunked` chunk signatures. */
export interface ChunkSigner {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  seedSignature: string;
}

/**
 * A request without `x-amz-content-sha256` whose signature may cover its body's hash: the
 * caller must read the (small) body, then call `verifyBody` with its SHA-256 (hex).
 */
export interface AuthDeferred {
  ok: "deferred";
  verifyBody(bodySha256: string): AuthSuccess | AuthFailure;
}

/** Result of {@link verifyRequest}. */
export type AuthResult = AuthFailure | AuthSuccess | AuthDeferred;

/** Payload hash of an empty body. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Maximum presigned URL lifetime S3 accepts (7 days). */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
/** Allowed clock skew for header-signed requests. */
const MAX_SKEW_MS = 15 * 60 * 1000;

/** Percent-encodes like S3's canonical form: everything but `A-Za-z0-9-._~` (and `/` if asked). */
export function uriEncode(s: string, keepSlash: boolean): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    if (
      (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
      c === "-" || c === "." || c === "_" || c === "~" || (keepSlash && c === "/")
    ) out += c;
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Decodes percent-escapes; returns undefined when the input is malformed. */
export function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Splits a raw query string into decoded `[name, value]` pairs (`+` is kept literal). */
export function parseQuery(raw: string): [string, string][] | undefined {
  const out: [string, string][] = [];
  if (raw === "") return out;
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = safeDecode(eq < 0 ? part : part.slice(0, eq));
    const v = safeDecode(eq < 0 ? "" : part.slice(eq + 1));
    if (k === undefined || v === undefined) return undefined;
    out.push([k, v]);
  }
  return out;
}

/**
 * The bytes a string to sign stands for. node:http hands header values over decoded as latin1
 * (one char per byte), so a string built from them is hashed as latin1 to get the bytes the
 * client signed (non-ASCII metadata, a UTF-8 `Content-Disposition` filename). A string with
 * characters beyond U+00FF cannot have come from the wire that way and is hashed as UTF-8.
 */
export function signedBytes(s: string): Buffer {
  // deno-lint-ignore no-control-regex
  return Buffer.from(s, /[^\x00-\xff]/.test(s) ? "utf8" : "latin1");
}

/**
 * The byte strings a client may have signed for a string built from the request: the bytes as
 * received ({@link signedBytes}) and, when it has non-ASCII characters, their UTF-8 encoding
 * (npm:minio, and Node clients generally, send `ü` as the latin1 byte but sign its UTF-8 form).
 */
export function signedVariants(s: string): Buffer[] {
  const raw = signedBytes(s);
  // deno-lint-ignore no-control-regex
  if (!/[^\x00-\x7f]/.test(s)) return [raw];
  const utf8 = Buffer.from(s, "utf8");
  return raw.equals(utf8) ? [raw] : [raw, utf8];
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** Derives the SigV4 signing key for a date (YYYYMMDD), region and service. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac("AWS4" + secret, date), region), service), "aws4_request");
}

function fail(status: number, code: string, message: string): AuthFailure {
  return { ok: false, status, code, message };
}

/**
 * A signed request's path, query (raw and parsed) and headers, as both signature versions
 * read them; a malformed query string is a 400.
 */
export function splitRequest(req: { rawUrl: string; rawHeaders: string[] }):
  | AuthFailure
  | {
    ok: true;
    rawPath: string;
    rawQuery: string;
    pairs: [string, string][];
    headers: Map<string, string[]>;
  } {
  const q = req.rawUrl.indexOf("?");
  const rawPath = q < 0 ? req.rawUrl : req.rawUrl.slice(0, q);
  const rawQuery = q < 0 ? "" : req.rawUrl.slice(q + 1);
  const pairs = parseQuery(rawQuery);
  if (!pairs) return fail(400, "InvalidArgument", "malformed query string");
  return { ok: true, rawPath, rawQuery, pairs, headers: headerMap(req.rawHeaders) };
}

/** Constant-time comparison of two signatures (hex or base64 text). */
export function safeEqualText(a: string, b: string): boolean {
  return safeEqualHex(a, b);
}

function safeEqualHex(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Parses `YYYYMMDDTHHMMSSZ` into epoch ms. */
function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isNaN(t) ? undefined : t;
}

/** Lower-cased header name → values in order, from node's rawHeaders. */
export function headerMap(raw: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    const list = m.get(k);
    if (list) list.push(raw[i + 1]);
    else m.set(k, [raw[i + 1]]);
  }
  return m;
}

function canonicalQuery(pairs: [string, string][]): string {
  const enc = pairs.map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)]);
  enc.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return enc.map(([k, v]) => `${k}=${v}`).join("&");
}

/** The canonical URI candidates: as sent, and re-encoded in the canonical S3 form. */
function canonicalPaths(rawPath: string): string[] {
  const decoded = safeDecode(rawPath);
  const out = [rawPath];
  if (decoded !== undefined) {
    const re = uriEncode(decoded, true);
    if (re !== rawPath) out.push(re);
  }
  return out;
}

interface ParsedAuth {
  accessKey: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseCredential(cred: string): Omit<ParsedAuth, "signedHeaders" | "signature"> | null {
  const parts = cred.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request") return null;
  const [accessKey, date, region, service] = parts;
  if (!/^\d{8}$/.test(date)) return null;
  return { accessKey, date, region, service };
}

function parseAuthorization(h: string): ParsedAuth | null {
  const prefix = "AWS4-HMAC-SHA256 ";
  if (!h.startsWith(prefix)) return null;
  const fields = new Map<string, string>();
  for (const p of h.slice(prefix.length).split(",")) {
    const t = p.trim();
    const eq = t.indexOf("=");
    if (eq > 0) fields.set(t.slice(0, eq), t.slice(eq + 1));
  }
  const cred = parseCredential(fields.get("Credential") ?? "");
  const sh = fields.get("SignedHeaders");
  const sig = fields.get("Signature");
  if (!cred || !sh || !sig) return null;
  return { ...cred, signedHeaders: sh.split(";"), signature: sig.toLowerCase() };
}

/** Finds the secret of an access key; undefined for unknown (or revoked) keys. */
export type CredentialLookup = (accessKey: string) => Credentials | undefined;

/**
 * Verifies an S3 request signed with AWS Signature V4, either in the `Authorization` header or
 * as a presigned URL (`X-Amz-*` query parameters). `creds` is one key pair or a lookup by
 * access key. `now` is injectable for tests.
 */
export function verifyRequest(
  req: SignedRequest,
  creds: Credentials | CredentialLookup,
  now: number = Date.now(),
): AuthResult {
  const parts = splitRequest(req);
  if (!parts.ok) return parts;
  const { rawPath, rawQuery, pairs, headers } = parts;
  const authHeader = headers.get("authorization")?.[0];
  const presigned = pairs.some(([k]) => k === "X-Amz-Signature");

  let auth: ParsedAuth;
  let amzDate: string;
  let payloadHash: string;
  let queryForSigning = pairs;
  let payloadCandidates: string[] | undefined;
  let declaredHash: string | undefined;
  if (authHeader !== undefined) {
    if (presigned) {
      return fail(400, "InvalidArgument", "both Authorization header and X-Amz-Signature given");
    }
    if (!authHeader.startsWith("AWS4-HMAC-SHA256 ")) {
      return fail(400, "InvalidArgument", "unsupported authorization type (only AWS4-HMAC-SHA256)");
    }
    const p = parseAuthorization(authHeader);
    if (!p) return fail(400, "AuthorizationHeaderMalformed", "malformed Authorization header");
    auth = p;
    amzDate = headers.get("x-amz-date")?.[0] ?? "";
    const t = parseAmzDate(amzDate);
    if (t === undefined) {
      return fail(403, "AccessDenied", "missing or malformed X-Amz-Date header");
    }
    if (Math.abs(now - t) > MAX_SKEW_MS) {
      return fail(
        403,
        "RequestTimeTooSkewed",
        "the difference between the request time and the server's time is too large",
      );
    }
    // Without x-amz-content-sha256 (curl before 8.x) the client signed the hash of an empty
    // payload; the body is then treated like UNSIGNED-PAYLOAD (not covered by the signature).
    payloadHash = headers.get("x-amz-content-sha256")?.[0] ?? "";
    if (payloadHash === "") {
      payloadCandidates = [EMPTY_SHA256, "UNSIGNED-PAYLOAD"];
      declaredHash = "UNSIGNED-PAYLOAD";
    }
  } else if (presigned) {
    const get = (k: string) => pairs.find(([n]) => n === k)?.[1];
    if (get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256") {
      return fail(
        400,
        "AuthorizationQueryParametersError",
        "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
      );
    }
    const cred = parseCredential(get("X-Amz-Credential") ?? "");
    const sh = get("X-Amz-SignedHeaders");
    const sig = get("X-Amz-Signature");
    amzDate = get("X-Amz-Date") ?? "";
    const expires = Number(get("X-Amz-Expires") ?? "NaN");
    const t = parseAmzDate(amzDate);
    if (!cred || !sh || !sig || t === undefined || !Number.isInteger(expires)) {
      return fail(400, "AuthorizationQueryParametersError", "malformed presigned URL parameters");
    }
    if (expires > MAX_PRESIGN_SECONDS) {
      return fail(
        400,
        "AuthorizationQueryParametersError",
        "X-Amz-Expires must be less than a week (604800 seconds)",
      );
    }
    if (t - now > MAX_SKEW_MS) return fail(403, "AccessDenied", "request is not valid yet");
    if (now > t + expires * 1000) return fail(403, "AccessDenied", "Request has expired");
    auth = { ...cred, signedHeaders: sh.split(";"), signature: sig.toLowerCase() };
    payloadHash = get("X-Amz-Content-Sha256") ?? headers.get("x-amz-content-sha256")?.[0] ??
      "UNSIGNED-PAYLOAD";
    queryForSigning = pairs.filter(([k]) => k !== "X-Amz-Signature");
  } else {
    return fail(403, "AccessDenied", "Access Denied (anonymous requests are not allowed)");
  }

  const found = typeof creds === "function"
    ? creds(auth.accessKey)
    : creds.accessKey === auth.accessKey
    ? creds
    : undefined;
  if (found === undefined || found.accessKey !== auth.accessKey) {
    return fail(
      403,
      "InvalidAccessKeyId",
      "The Access Key Id you provided does not exist in our records.",
    );
  }
  if (auth.service !== "s3") {
    return fail(400, "AuthorizationHeaderMalformed", `unexpected service '${auth.service}'`);
  }
  if (amzDate.slice(0, 8) !== auth.date) {
    return fail(400, "AuthorizationHeaderMalformed", "credential date does not match X-Amz-Date");
  }
  if (!auth.signedHeaders.includes("host")) {
    return fail(400, "AuthorizationHeaderMalformed", "the host header must be signed");
  }

  const canonHeaders: string[] = [];
  for (const name of auth.signedHeaders) {
    const values = headers.get(name);
    if (!values) {
      return fail(403, "SignatureDoesNotMatch", `signed header '${name}' is missing`);
    }
    canonHeaders.push(`${name}:${values.map((v) => v.trim().replace(/ +/g, " ")).join(",")}`);
  }
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const key = signingKey(found.secretKey, auth.date, auth.region, auth.service);
  // The standard canonical query, plus the query exactly as sent: curl before 8.x signs that.
  const queries = [canonicalQuery(queryForSigning)];
  if (authHeader !== undefined && rawQuery !== queries[0]) queries.push(rawQuery);
  const check = (payloadOptions: string[]): AuthSuccess | undefined => {
    for (const path of canonicalPaths(rawPath)) {
      for (const [ph, cq] of cross(payloadOptions, queries)) {
        const canonical = [
          req.method,
          path,
          cq,
          canonHeaders.join("\n") + "\n",
          auth.signedHeaders.join(";"),
          ph,
        ].join("\n");
        const matches = signedVariants(canonical).some((bytes) => {
          const hash = createHash("sha256").update(bytes).digest("hex");
          const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, hash].join("\n");
          return safeEqualHex(
            createHmac("sha256", key).update(toSign).digest("hex"),
            auth.signature,
          );
        });
        if (matches) {
          const result: AuthSuccess = {
            ok: true,
            accessKey: auth.accessKey,
            payloadHash: declaredHash ?? payloadHash,
          };
          if (/^STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER)?$/.test(payloadHash)) {
            result.streaming = { signingKey: key, amzDate, scope, seedSignature: auth.signature };
          }
          return result;
        }
      }
    }
    return undefined;
  };
  const mismatch = fail(
    403,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. " +
      "Check your key and signing method.",
  );
  const ok = check(payloadCandidates ?? [payloadHash]);
  if (ok) return ok;
  if (payloadCandidates) {
    // No x-amz-content-sha256 header: the client may have signed the hash of its body.
    return {
      ok: "deferred",
      verifyBody: (bodySha256: string) => {
        const r = check([bodySha256]);
        return r ? { ...r, payloadHash: bodySha256 } : mismatch;
      },
    };
  }
  return mismatch;
}

function cross<A, B>(as: A[], bs: B[]): [A, B][] {
  return as.flatMap((a) => bs.map((b) => [a, b] as [A, B]));
}

/** Computes the expected signature of one `aws-chunked` chunk given its sha256 (hex). */
export function chunkSignature(
  signer: ChunkSigner,
  previousSignature: string,
  chunkSha256: string,
): string {
  const toSign = [
    "AWS4-HMAC-SHA256-PAYLOAD",
    signer.amzDate,
    signer.scope,
    previousSignature,
    EMPTY_SHA256,
    chunkSha256,
  ].join("\n");
  return createHmac("sha256", signer.signingKey).update(toSign).digest("hex");
}

/** Constant-time comparison of two hex signatures. */
export function signaturesEqual(a: string, b: string): boolean {
  return safeEqualHex(a, b.toLowerCase());
}
