/**
 * Request routing: which S3 operation a verified request is, whether its credential's grant
 * allows it (see `server_access.ts`), and which handler answers it.
 *
 * @module
 */

import { receiveSmallBody } from "./server_body.ts";
import { S3Error } from "./s3_error.ts";
import {
  type Ctx,
  isConditional,
  isCreate,
  notImplemented,
  type RelayCore,
  sendEmpty,
  sendXml,
} from "./server_core.ts";
import type { listingHandlers } from "./server_listing.ts";
import type { objectHandlers } from "./server_objects.ts";
import type { multipartHandlers } from "./server_multipart.ts";
import {
  accessDenied,
  requireRead,
  requireRoot,
  requireWrite,
  touchesBucket,
} from "./server_access.ts";
import { xmlDocument } from "./xml.ts";

/**
 * S3 sub-resources the relay does not offer: a request naming one is answered 501
 * NotImplemented, never as the plain operation on the bucket or object.
 */
const UNSUPPORTED_SUBRESOURCES = [
  "accelerate",
  "acl",
  "analytics",
  "cors",
  "encryption",
  "intelligent-tiering",
  "inventory",
  "legal-hold",
  "lifecycle",
  "logging",
  "metadataTable",
  "metrics",
  "notification",
  "object-lock",
  "ownershipControls",
  "policy",
  "policyStatus",
  "publicAccessBlock",
  "replication",
  "requestPayment",
  "restore",
  "retention",
  "select",
  "session",
  "torrent",
  "website",
];

/** True if the query names anything but the operation id newer SDKs add (`x-id`). */
function hasSubresource(query: Map<string, string>): boolean {
  for (const k of query.keys()) if (k !== "x-id") return true;
  return false;
}

function refuseSubresources(query: Map<string, string>): void {
  for (const sub of UNSUPPORTED_SUBRESOURCES) {
    if (query.has(sub)) {
      throw new S3Error(501, "NotImplemented", `the relay does not implement ?${sub}`);
    }
  }
}

/** An upload must say how long it is: Content-Length or chunked framing (411 otherwise). */
function requireLength(req: Ctx["req"]): void {
  if (
    req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined
  ) {
    throw new S3Error(
      411,
      "MissingContentLength",
      "You must provide the Content-Length HTTP header.",
    );
  }
}

/** Every handler the router dispatches to. */
export type Handlers =
  & ReturnType<typeof listingHandlers>
  & ReturnType<typeof objectHandlers>
  & ReturnType<typeof multipartHandlers>;

/** What a route addresses: the service (no bucket), a bucket, or an object. */
export type RouteTarget = "service" | "bucket" | "object";

/**
 * How a route reads the request body before its handler runs:
 * `none` (no body), `empty` (must be empty, e.g. a copy), `small` (read whole and verified,
 * passed to the handler as text), `completion` (like `small`, but its checksum headers
 * describe the object, not this body), `stream` (the handler streams it; a length is required).
 */
export type RouteBody = "none" | "empty" | "small" | "completion" | "stream";

/** A request the router matched: bucket and key as the route's target has them. */
export type RouteCtx = Ctx & { bucket: string; key: string };

/** One S3 operation: which requests it answers, the grant it needs, and its handler. */
export interface Route {
  /** What it addresses. */
  target: RouteTarget;
  /** HTTP method, or `*` for any. */
  method: string;
  /** Further condition (a sub-resource in the query, a header); absent: always. */
  when?: (ctx: Ctx) => boolean;
  /** The grant check, run before anything is read or written; throws to refuse. */
  access: (ctx: RouteCtx) => void;
  /** Refuse sub-resources the relay does not implement (501) before the handler runs. */
  plain?: boolean;
  /** How the body is read (default `none`). */
  body?: RouteBody;
  /** Answers the request; `body` is the request body for `small`/`completion` routes. */
  handle: (ctx: RouteCtx, body: string) => unknown;
}

/** A condition: any of these sub-resources is in the query. */
const sub = (...names: string[]) => (ctx: Ctx) => names.some((n) => ctx.query.has(n));
/** A condition: the request has this header. */
const header = (name: string) => (ctx: Ctx) => ctx.req.headers[name] !== undefined;
/** Both conditions. */
const both = (a: (c: Ctx) => boolean, b: (c: Ctx) => boolean) => (c: Ctx) => a(c) && b(c);

/**
 * The relay's routes, first match wins. A new S3 operation is a handler and one entry here.
 */
export function routes(core: RelayCore, h: Handlers): Route[] {
  const { store, region } = core;
  const bucketAccess = (c: RouteCtx) => {
    if (!touchesBucket(c.principal, c.bucket)) {
      throw accessDenied(`no access to bucket ${c.bucket}`);
    }
  };
  const read = (c: RouteCtx) => requireRead(c.principal, c.bucket, c.key);
  const listRead = (c: RouteCtx) => requireRead(c.principal, c.bucket, c.query.get("prefix") ?? "");
  /** A part, an upload's listing or its abort: the condition is checked at completion. */
  const uploadWrite = (c: RouteCtx) => requireWrite(c.principal, c.bucket, c.key, true);
  /** The object itself is replaced (or created): the request's conditions count. */
  const objectWrite = (c: RouteCtx) =>
    requireWrite(c.principal, c.bucket, c.key, isConditional(c.req), isCreate(c.req));
  /** The object changes but is not created (tags, delete). */
  const objectChange = (c: RouteCtx) =>
    requireWrite(c.principal, c.bucket, c.key, isConditional(c.req), false);
  const root = (what: string) => (c: RouteCtx) => requireRoot(c.principal, what);
  const noSubresource = (c: RouteCtx) => {
    if (hasSubresource(c.query)) throw notImplemented();
  };
  const unimplemented = () => {
    throw notImplemented();
  };
  return [
    // The service.
    { target: "service", method: "GET", access: root("listing buckets"), handle: h.listBuckets },
    { target: "service", method: "*", access: root("listing buckets"), handle: unimplemented },
    // Buckets.
    {
      target: "bucket",
      method: "GET",
      when: sub("location"),
      access: bucketAccess,
      handle: h.getLocation,
    },
    {
      target: "bucket",
      method: "GET",
      when: sub("uploads"),
      access: bucketAccess,
      handle: h.listUploads,
    },
    {
      target: "bucket",
      method: "GET",
      when: sub("versioning"),
      access: bucketAccess,
      handle: (c) => {
        store.existingBucket(c.bucket);
        return sendXml(c, 200, xmlDocument("VersioningConfiguration", {}));
      },
    },
    {
      target: "bucket",
      method: "GET",
      when: sub("versions"),
      access: listRead,
      handle: h.listVersions,
    },
    { target: "bucket", method: "GET", access: listRead, plain: true, handle: h.listObjects },
    {
      target: "bucket",
      method: "HEAD",
      access: bucketAccess,
      handle: (c) => {
        store.existingBucket(c.bucket);
        return sendEmpty(c, 200, { "x-amz-bucket-region": region });
      },
    },
    {
      target: "bucket",
      method: "PUT",
      access: (c) => {
        root("creating buckets")(c);
        noSubresource(c);
      },
      body: "small",
      handle: (c) => {
        try {
          store.createBucket(c.bucket);
        } catch (e) {
          // us-east-1 answers a re-creation by its owner with 200 (other regions: 409).
          const owned = e instanceof S3Error && e.code === "BucketAlreadyOwnedByYou";
          if (!owned || region !== "us-east-1") throw e;
        }
        return sendEmpty(c, 200, { location: `/${c.bucket}` });
      },
    },
    {
      target: "bucket",
      method: "DELETE",
      access: (c) => {
        root("deleting buckets")(c);
        noSubresource(c);
      },
      handle: (c) => {
        store.deleteBucket(c.bucket);
        return sendEmpty(c, 204);
      },
    },
    // Each key is checked against the grant (see deleteObjects).
    {
      target: "bucket",
      method: "POST",
      when: sub("delete"),
      access: () => {},
      body: "small",
      handle: h.deleteObjects,
    },
    // Objects.
    {
      target: "object",
      method: "GET",
      when: sub("uploadId"),
      access: uploadWrite,
      handle: h.listParts,
    },
    { target: "object", method: "GET", when: sub("tagging"), access: read, handle: h.getTagging },
    {
      target: "object",
      method: "GET",
      when: sub("attributes"),
      access: read,
      handle: h.getAttributes,
    },
    {
      target: "object",
      method: "GET",
      access: read,
      plain: true,
      handle: (c) => h.getObject(c, false),
    },
    {
      target: "object",
      method: "HEAD",
      access: read,
      plain: true,
      handle: (c) => h.getObject(c, true),
    },
    {
      target: "object",
      method: "PUT",
      when: sub("tagging"),
      access: objectChange,
      body: "small",
      handle: h.putTagging,
    },
    {
      target: "object",
      method: "PUT",
      when: both(sub("uploadId", "partNumber"), header("x-amz-copy-source")),
      access: uploadWrite,
      body: "empty",
      handle: h.uploadPartCopy,
    },
    {
      target: "object",
      method: "PUT",
      when: sub("uploadId", "partNumber"),
      access: uploadWrite,
      body: "stream",
      handle: h.uploadPart,
    },
    {
      target: "object",
      method: "PUT",
      when: header("x-amz-copy-source"),
      access: objectWrite,
      body: "empty",
      handle: h.copyObject,
    },
    {
      target: "object",
      method: "PUT",
      access: objectWrite,
      plain: true,
      body: "stream",
      handle: h.putObject,
    },
    {
      target: "object",
      method: "DELETE",
      when: sub("uploadId"),
      access: uploadWrite,
      handle: h.abortUpload,
    },
    {
      target: "object",
      method: "DELETE",
      when: sub("tagging"),
      access: objectChange,
      handle: (c) => h.putTaggingValues(c, {}, 204),
    },
    { target: "object", method: "DELETE", access: objectChange, handle: h.deleteObject },
    {
      target: "object",
      method: "POST",
      when: sub("uploads"),
      access: uploadWrite,
      handle: h.initiateUpload,
    },
    {
      target: "object",
      method: "POST",
      when: sub("uploadId"),
      access: objectWrite,
      body: "completion",
      handle: h.completeUpload,
    },
  ];
}

/**
 * The relay's router over {@link routes}: `route(ctx, markConsumed)` finds the first route
 * for the request, checks the grant, reads the body as the route says, and runs the handler;
 * `markConsumed` is called once the request body was read. No route: 501 NotImplemented.
 */
export function router(core: RelayCore, h: Handlers) {
  const table = routes(core, h);
  return async function route(ctx: Ctx, markConsumed: () => void): Promise<void> {
    const target: RouteTarget = !ctx.bucket ? "service" : !ctx.key ? "bucket" : "object";
    const r = table.find((r) =>
      r.target === target && (r.method === "*" || r.method === ctx.req.method) &&
      (r.when?.(ctx) ?? true)
    );
    if (!r) throw notImplemented();
    const c = ctx as RouteCtx;
    r.access(c);
    if (r.plain) refuseSubresources(ctx.query);
    let body = "";
    switch (r.body ?? "none") {
      case "empty":
        await receiveSmallBody(ctx.req, ctx.auth, 0, ctx.pre);
        markConsumed();
        break;
      case "small":
        body = (await receiveSmallBody(ctx.req, ctx.auth, undefined, ctx.pre)).toString("utf8");
        markConsumed();
        break;
      case "completion":
        // Its x-amz-checksum-* headers describe the object, not this body.
        body = (await receiveSmallBody(ctx.req, ctx.auth, undefined, ctx.pre, {
          bodyChecksum: false,
        })).toString("utf8");
        markConsumed();
        break;
      case "stream":
        requireLength(ctx.req);
        await r.handle(c, body);
        markConsumed();
        return;
    }
    await r.handle(c, body);
  };
}
