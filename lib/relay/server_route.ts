/**
 * Request routing: which S3 operation a verified request is, whether its credential's grant
 * allows it (see `server_access.ts`), and which handler answers it.
 *
 * @module
 */

import { receiveSmallBody } from "./server_body.ts";
import { S3Error } from "./fs_store.ts";
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

/**
 * The relay's router: `route(ctx, markConsumed)` checks the grant and runs the handler;
 * `markConsumed` is called once the request body was read.
 */
export function router(core: RelayCore, h: Handlers) {
  const { store, region } = core;
  const {
    listBuckets,
    getLocation,
    listObjects,
    listVersions,
    putObject,
    getObject,
    copyObject,
    getTagging,
    putTagging,
    putTaggingValues,
    deleteObjects,
    deleteObject,
    initiateUpload,
    uploadPart,
    uploadPartCopy,
    getAttributes,
    completeUpload,
    abortUpload,
    listParts,
    listUploads,
  } = h;

  async function route(ctx: Ctx, markConsumed: () => void): Promise<void> {
    const { req, query, principal: who } = ctx;
    const m = req.method;
    if (!ctx.bucket) {
      requireRoot(who, "listing buckets");
      if (m === "GET") return listBuckets(ctx);
      throw notImplemented();
    }
    const bucket = ctx.bucket;
    if (!ctx.key) {
      switch (m) {
        case "GET":
          if (query.has("location") || query.has("uploads") || query.has("versioning")) {
            if (!touchesBucket(who, bucket)) throw accessDenied(`no access to bucket ${bucket}`);
          }
          if (query.has("location")) return getLocation(ctx);
          if (query.has("uploads")) return listUploads(ctx);
          if (query.has("versioning")) {
            store.existingBucket(bucket);
            return sendXml(ctx, 200, xmlDocument("VersioningConfiguration", {}));
          }
          requireRead(who, bucket, query.get("prefix") ?? "");
          if (query.has("versions")) return listVersions(ctx);
          refuseSubresources(query);
          return listObjects(ctx);
        case "HEAD":
          if (!touchesBucket(who, bucket)) throw accessDenied(`no access to bucket ${bucket}`);
          store.existingBucket(bucket);
          return sendEmpty(ctx, 200, { "x-amz-bucket-region": region });
        case "PUT":
          requireRoot(who, "creating buckets");
          if (hasSubresource(query)) throw notImplemented();
          await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
          markConsumed();
          try {
            store.createBucket(bucket);
          } catch (e) {
            // us-east-1 answers a re-creation by its owner with 200 (other regions: 409).
            const owned = e instanceof S3Error && e.code === "BucketAlreadyOwnedByYou";
            if (!owned || region !== "us-east-1") throw e;
          }
          return sendEmpty(ctx, 200, { location: `/${bucket}` });
        case "DELETE":
          requireRoot(who, "deleting buckets");
          if (hasSubresource(query)) throw notImplemented();
          store.deleteBucket(bucket);
          return sendEmpty(ctx, 204);
        case "POST":
          if (query.has("delete")) {
            // Each key is checked against the grant (see deleteObjects).
            const body = await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
            markConsumed();
            return deleteObjects(ctx, body.toString("utf8"));
          }
          throw notImplemented();
      }
      throw notImplemented();
    }
    const key = ctx.key;
    const conditional = isConditional(req);
    const create = isCreate(req);
    switch (m) {
      case "GET":
        if (query.has("uploadId")) {
          requireWrite(who, bucket, key, true);
          return listParts(ctx);
        }
        requireRead(who, bucket, key);
        if (query.has("tagging")) return getTagging(ctx);
        if (query.has("attributes")) return getAttributes(ctx);
        refuseSubresources(query);
        return getObject(ctx, false);
      case "HEAD":
        requireRead(who, bucket, key);
        refuseSubresources(query);
        return getObject(ctx, true);
      case "PUT":
        if (query.has("tagging")) {
          requireWrite(who, bucket, key, conditional, false);
          const body = await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
          markConsumed();
          return putTagging(ctx, body.toString("utf8"));
        }
        if (query.has("uploadId") || query.has("partNumber")) {
          // Parts are not the object: the condition is checked when the upload completes.
          requireWrite(who, bucket, key, true);
          if (req.headers["x-amz-copy-source"] !== undefined) {
            await receiveSmallBody(req, ctx.auth, 0, ctx.pre);
            markConsumed();
            return uploadPartCopy(ctx);
          }
          requireLength(req);
          await uploadPart(ctx);
          markConsumed();
          return;
        }
        requireWrite(who, bucket, key, conditional, create);
        if (req.headers["x-amz-copy-source"] !== undefined) {
          await receiveSmallBody(req, ctx.auth, 0, ctx.pre);
          markConsumed();
          return copyObject(ctx);
        }
        refuseSubresources(query);
        requireLength(req);
        await putObject(ctx);
        markConsumed();
        return;
      case "DELETE":
        if (query.has("uploadId")) {
          requireWrite(who, bucket, key, true);
          return abortUpload(ctx);
        }
        requireWrite(who, bucket, key, conditional, false);
        if (query.has("tagging")) return putTaggingValues(ctx, {}, 204);
        return deleteObject(ctx);
      case "POST":
        if (query.has("uploads")) {
          requireWrite(who, bucket, key, true);
          return initiateUpload(ctx);
        }
        if (query.has("uploadId")) {
          requireWrite(who, bucket, key, conditional, create);
          // Its x-amz-checksum-* headers describe the object, not this body.
          const body = await receiveSmallBody(req, ctx.auth, undefined, ctx.pre, {
            bodyChecksum: false,
          });
          markConsumed();
          return completeUpload(ctx, body.toString("utf8"));
        }
        throw notImplemented();
    }
    throw notImplemented();
  }

  return route;
}
