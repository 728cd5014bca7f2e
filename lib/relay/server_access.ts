/**
 * Scoped credentials: key pairs the relay accepts besides its root credentials, each limited
 * to an {@link AccessGrant} and valid until revoked. Requests are checked against the grant
 * after their signature was verified; grants are additive (a request is allowed when one
 * entry allows it).
 *
 * @module
 */

import { GangplankError } from "../errors/mod.ts";
import { S3Error } from "./s3_error.ts";
import { isValidBucketName } from "../names/bucket.ts";
import type { Credentials } from "./sigv4.ts";

/** What a scoped credential may do. Bucket names are S3 bucket names (e.g. "builder"). */
export interface AccessGrant {
  /** GET/HEAD objects and list, within these buckets and key prefixes ("" = whole bucket). */
  read: ReadonlyArray<{ bucket: string; prefix: string }>;
  /**
   * PUT/multipart/COPY-destination/DELETE of keys under these prefixes (or exactly `key` when
   * `exact: true`). A path segment that is exactly `*` matches any one segment (as in
   * `*\/x86_64/`: a build dir whose id is not known yet).
   * `conditional: true` → every write must carry If-Match or If-None-Match (used for
   * builds.json), otherwise 403. `createOnly: true` → only new objects: every write must carry
   * `If-None-Match: *` (no overwrite, no delete).
   */
  write: ReadonlyArray<{
    bucket: string;
    prefix: string;
    exact?: boolean;
    conditional?: boolean;
    createOnly?: boolean;
  }>;
}

/** A key pair limited to a grant; revoking it (or disposing it) ends its validity at once. */
export interface ScopedCredential extends Disposable {
  /** A fresh random access/secret key pair. */
  readonly credentials: Credentials;
  /** Idempotent; same as `[Symbol.dispose]`. */
  revoke(): void;
}

/** Who signed a request: the root credentials (no grant) or a scoped credential. */
export interface Principal {
  readonly accessKey: string;
  /** Undefined for the root credentials (full access). */
  readonly grant?: AccessGrant;
  /** False once the credential was revoked. */
  live(): boolean;
}

/** The error for a request outside its credential's grant. */
export function accessDenied(what: string): S3Error {
  return new S3Error(403, "AccessDenied", `Access Denied: ${what}`);
}

/** The error for a revoked (or unknown) access key. */
export function invalidAccessKey(): S3Error {
  return new S3Error(
    403,
    "InvalidAccessKeyId",
    "The Access Key Id you provided does not exist in our records.",
  );
}

/** Throws InvalidAccessKeyId when the principal was revoked (checked again right before writes). */
export function assertLive(p: Principal): void {
  if (!p.live()) throw invalidAccessKey();
}

/** Throws AccessDenied unless `p` is the root credential. */
export function requireRoot(p: Principal, what: string): void {
  if (p.grant) throw accessDenied(`${what} needs the relay's root credentials`);
}

/** True if `p` may read `key` (or list it) in `bucket`. */
export function canRead(p: Principal, bucket: string, key: string): boolean {
  if (!p.grant) return true;
  return p.grant.read.some((r) => r.bucket === bucket && key.startsWith(r.prefix));
}

/** Throws AccessDenied unless `p` may read `key` in `bucket`. */
export function requireRead(p: Principal, bucket: string, key: string): void {
  if (!canRead(p, bucket, key)) throw accessDenied(`no read access to ${bucket}/${key}`);
}

/** True if `p` has any grant (read or write) on `bucket` (HEAD bucket, location). */
export function touchesBucket(p: Principal, bucket: string): boolean {
  if (!p.grant) return true;
  return p.grant.read.some((r) => r.bucket === bucket) ||
    p.grant.write.some((w) => w.bucket === bucket);
}

/**
 * True if `key` starts with `prefix`, where a path segment of `prefix` that is exactly `*`
 * matches one segment of `key` (`[^/]+`); a `*` inside a segment is an ordinary character.
 */
export function prefixMatches(prefix: string, key: string): boolean {
  const parts = prefix.split("/");
  if (!parts.includes("*")) return key.startsWith(prefix);
  const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = parts.map((t) => (t === "*" ? "[^/]+" : esc(t))).join("/");
  return new RegExp(`^${re}`).test(key);
}

/**
 * Why `p` may not write `key` in `bucket`, or undefined when it may. `conditional` says whether
 * the write carries If-Match / If-None-Match; `create` whether it only creates (carries
 * `If-None-Match: *`, or is a step of a multipart upload whose completion is checked).
 */
export function writeRefusal(
  p: Principal,
  bucket: string,
  key: string,
  conditional: boolean,
  create: boolean = conditional,
): string | undefined {
  if (!p.grant) return undefined;
  const matching = p.grant.write.filter((w) =>
    w.bucket === bucket && (w.exact ? key === w.prefix : prefixMatches(w.prefix, key))
  );
  if (matching.length === 0) return `no write access to ${bucket}/${key}`;
  const allows = (w: (typeof matching)[number]) =>
    w.createOnly ? create : !w.conditional || conditional;
  if (matching.some(allows)) return undefined;
  return matching.every((w) => w.createOnly)
    ? `${bucket}/${key} may only be created (If-None-Match: *), not replaced or deleted`
    : `writes to ${bucket}/${key} must carry If-Match or If-None-Match`;
}

/** Throws AccessDenied unless `p` may write `key` in `bucket` (see {@link writeRefusal}). */
export function requireWrite(
  p: Principal,
  bucket: string,
  key: string,
  conditional: boolean,
  create: boolean = conditional,
): void {
  const why = writeRefusal(p, bucket, key, conditional, create);
  if (why !== undefined) throw accessDenied(why);
}

/** A deep, frozen copy of a grant, validated. Throws {@link GangplankError} on bad input. */
function freezeGrant(access: AccessGrant): AccessGrant {
  const where = (kind: string, i: number) => `grant: ${kind}[${i}]`;
  const check = (kind: string, i: number, e: { bucket: unknown; prefix: unknown }) => {
    if (typeof e?.bucket !== "string" || !isValidBucketName(e.bucket)) {
      throw new GangplankError(
        `${where(kind, i)}.bucket: invalid bucket name ${String(e?.bucket)}`,
      );
    }
    if (typeof e.prefix !== "string") {
      throw new GangplankError(`${where(kind, i)}.prefix: must be a string`);
    }
  };
  if (!Array.isArray(access?.read) || !Array.isArray(access?.write)) {
    throw new GangplankError("grant: 'read' and 'write' must be arrays");
  }
  const read = access.read.map((r, i) => {
    check("read", i, r);
    return Object.freeze({ bucket: r.bucket, prefix: r.prefix });
  });
  const write = access.write.map((w, i) => {
    check("write", i, w);
    if (w.exact && w.prefix === "") {
      throw new GangplankError(`${where("write", i)}: exact needs a key in 'prefix'`);
    }
    return Object.freeze({
      bucket: w.bucket,
      prefix: w.prefix,
      exact: w.exact === true,
      conditional: w.conditional === true,
      createOnly: w.createOnly === true,
    });
  });
  return Object.freeze({ read: Object.freeze(read), write: Object.freeze(write) });
}

/** The relay's credentials: the root pair and the live scoped ones. */
export class AccessRegistry {
  readonly #root: Credentials;
  readonly #rootPrincipal: Principal;
  readonly #scoped = new Map<string, { creds: Credentials; principal: Principal }>();

  constructor(root: Credentials, private readonly generate: () => Credentials) {
    this.#root = root;
    this.#rootPrincipal = { accessKey: root.accessKey, live: () => true };
  }

  /** The credentials of an access key, for signature verification; undefined when unknown. */
  lookup = (accessKey: string): Credentials | undefined => {
    if (accessKey === this.#root.accessKey) return this.#root;
    return this.#scoped.get(accessKey)?.creds;
  };

  /** The principal of a verified access key. */
  principal(accessKey: string): Principal {
    if (accessKey === this.#root.accessKey) return this.#rootPrincipal;
    const e = this.#scoped.get(accessKey);
    if (!e) throw invalidAccessKey();
    return e.principal;
  }

  /**
   * Mints a scoped credential; `onRevoke(accessKey)` runs once when it is revoked (the relay
   * aborts the multipart uploads it began).
   */
  grant(access: AccessGrant, onRevoke: (accessKey: string) => void): ScopedCredential {
    const grant = freezeGrant(access);
    let creds = this.generate();
    while (creds.accessKey === this.#root.accessKey || this.#scoped.has(creds.accessKey)) {
      creds = this.generate();
    }
    let revoked = false;
    const principal: Principal = { accessKey: creds.accessKey, grant, live: () => !revoked };
    this.#scoped.set(creds.accessKey, { creds, principal });
    const revoke = () => {
      if (revoked) return;
      revoked = true;
      this.#scoped.delete(creds.accessKey);
      onRevoke(creds.accessKey);
    };
    return {
      credentials: Object.freeze({ ...creds }),
      revoke,
      [Symbol.dispose]: revoke,
    };
  }
}
