/**
 * The relay: an S3-compatible HTTP server over a directory (bucket = top-level folder,
 * object = plain file), verifying AWS Signature V4 against per-run credentials.
 *
 * Built on `node:http` (not `Deno.serve`) so uploads stream at disk speed: request bodies are
 * written synchronously as chunks arrive (gathered into 1 MiB writes) while a worker thread
 * computes SHA-256 (when the client declared one) and MD5 (when asked for, or cheap; see
 * `server_body.ts` for ETags); objects are sent from a few reused buffers. This module holds the lifecycle, authentication and routing; the
 * handlers are in `server_listing.ts`, `server_objects.ts` and `server_multipart.ts`.
 *
 * @module
 */

import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createHash, randomInt } from "node:crypto";
import { GangplankError } from "../errors/mod.ts";
import { FsStore, randomId, S3Error } from "./fs_store.ts";
import { type Credentials, parseQuery, safeDecode, verifyRequest } from "./sigv4.ts";
import { errorDocument, xmlDocument } from "./xml.ts";
import { ClientAbortedError, readRawBody, receiveSmallBody } from "./server_body.ts";
import type { RelayConfig } from "./config.ts";
import { HashPool } from "./server_hash.ts";
import {
  type Ctx,
  isConditional,
  isCreate,
  notImplemented,
  type RelayCore,
  sendEmpty,
  sendXml,
} from "./server_core.ts";
import { listingHandlers } from "./server_listing.ts";
import { objectHandlers } from "./server_objects.ts";
import { multipartHandlers } from "./server_multipart.ts";
import {
  accessDenied,
  type AccessGrant,
  AccessRegistry,
  requireRead,
  requireRoot,
  requireWrite,
  type ScopedCredential,
  touchesBucket,
} from "./server_access.ts";
import { bucketNameProblem } from "../names/bucket.ts";

export type { Credentials } from "./sigv4.ts";
export type { AccessGrant, ScopedCredential } from "./server_access.ts";

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

/** Options of {@link startRelay}. */
export interface RelayOptions {
  /** Directory served: each top-level folder is a bucket. Must exist. */
  root: string;
  /** Bind address. Default `127.0.0.1`; `0.0.0.0` or a pod IP only when asked for. */
  hostname?: string;
  /** Port; default 0 = a free port chosen by the OS at bind time. */
  port?: number;
  /** Credentials to accept; default {@link generateCredentials}. */
  credentials?: Credentials;
  /** Region reported to clients. Default `us-east-1`. */
  region?: string;
  /** Buckets stored in another folder below root, e.g. `{ builder: "builds" }`. */
  bucketDirs?: Record<string, string>;
  /** Where metadata and in-flight uploads live. Default `<root>/.gangplank-relay`. */
  stateDir?: string;
  /** Receives one line per notable event (never secrets). */
  log?: (msg: string) => void;
  /** Aborting closes the relay. */
  signal?: AbortSignal;
}

/** A running relay. */
export interface Relay extends AsyncDisposable {
  readonly hostname: string;
  readonly port: number;
  readonly region: string;
  readonly credentials: Credentials;
  /** Gangplank's minio config for this relay (`external_server: true`). */
  config(): RelayConfig;
  /** Payload bytes received and sent so far. */
  readonly stats: { bytesIn: number; bytesOut: number };
  /**
   * Mints a fresh key pair limited to `access`, valid until revoked (the root credentials keep
   * full access). Requests signed with it outside the grant get 403 AccessDenied; after
   * `revoke()` they get 403 InvalidAccessKeyId, and the multipart uploads it began are aborted.
   *
   * @example
   * ```ts
   * using stage = relay.grant({
   *   read: [{ bucket: "builder", prefix: "" }],
   *   write: [{ bucket: "builder", prefix: "builds.json", exact: true, conditional: true }],
   * });
   * ```
   */
  grant(access: AccessGrant): ScopedCredential;
  /** Stops listening, drops open connections. Idempotent. */
  close(): Promise<void>;
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomString(n: number, alphabet: string): string {
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)]; // unbiased
  return s;
}

/** Fresh crypto-strong credentials (20-char access key, 40-char secret key). */
export function generateCredentials(): Credentials {
  return {
    accessKey: randomString(20, ALNUM.slice(0, 26) + ALNUM.slice(52)),
    secretKey: randomString(40, ALNUM),
  };
}

/** Starts a relay; resolves once it listens. */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const hostname = opts.hostname ?? "127.0.0.1";
  const region = opts.region ?? "us-east-1";
  const credentials = opts.credentials ?? generateCredentials();
  const log = opts.log ?? (() => {});
  opts.signal?.throwIfAborted();
  const store = new FsStore({
    root: opts.root,
    stateDir: opts.stateDir,
    bucketDirs: opts.bucketDirs,
  });
  const stats = { bytesIn: 0, bytesOut: 0 };
  const sockets = new Set<Socket>();
  const hashPool = new HashPool();
  const core: RelayCore = {
    store,
    stats,
    hashPool,
    appending: new Set<string>(),
    region,
    log,
  };
  const { listBuckets, getLocation, listObjects, listVersions } = listingHandlers(core);
  const {
    putObject,
    getObject,
    copyObject,
    getTagging,
    putTagging,
    putTaggingValues,
    deleteObjects,
    deleteObject,
  } = objectHandlers(core);
  const {
    abortUploadsOf,
    initiateUpload,
    uploadPart,
    completeUpload,
    abortUpload,
    listParts,
    listUploads,
  } = multipartHandlers(core);
  const access = new AccessRegistry(credentials, generateCredentials);

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      log(`relay: internal error: ${e instanceof Error ? e.message : String(e)}`);
      try {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        } else res.destroy();
      } catch { /* socket gone */ }
    });
  });
  server.keepAliveTimeout = 30_000;
  // Multi-GiB bodies may take long: no whole-request deadline, only one for the headers.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  function sendError(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    requestId: string,
    resource: string,
    err: S3Error,
    closeConnection: boolean,
  ) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = Buffer.from(errorDocument(err.code, err.message, resource, requestId));
    const headers: Record<string, string> = {
      "content-type": "application/xml",
      "x-amz-request-id": requestId,
      ...err.headers,
    };
    if (req.method !== "HEAD") headers["content-length"] = String(body.length);
    if (closeConnection) headers["connection"] = "close";
    res.writeHead(err.status, headers);
    res.end(req.method === "HEAD" ? undefined : body);
    if (closeConnection) res.on("finish", () => req.socket.destroy());
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomId(8).toUpperCase();
    const rawUrl = req.url ?? "/";
    const qi = rawUrl.indexOf("?");
    const rawPath = qi < 0 ? rawUrl : rawUrl.slice(0, qi);
    const decodedPath = safeDecode(rawPath) ?? rawPath;
    const resource = decodedPath;
    let bodyConsumed = false;
    try {
      if (!rawPath.startsWith("/")) throw new S3Error(400, "InvalidURI", "invalid request path");
      let auth = verifyRequest(
        { method: req.method ?? "GET", rawUrl, rawHeaders: req.rawHeaders },
        access.lookup,
      );
      let pre: Buffer | undefined;
      if (auth.ok === "deferred") {
        // Signed over the body's hash without saying so (curl < 8 with --data): read the body
        // (small requests only: at most 1 MiB is buffered before the signature is known) and
        // check the signature against its SHA-256.
        pre = await readRawBody(req, 1 << 20);
        bodyConsumed = pre !== undefined;
        auth = pre === undefined
          ? {
            ok: false,
            status: 403,
            code: "SignatureDoesNotMatch",
            message: "the signature does not match; a body over 1 MiB must come with an " +
              "x-amz-content-sha256 header (its SHA-256 or UNSIGNED-PAYLOAD)",
          }
          : auth.verifyBody(createHash("sha256").update(pre).digest("hex"));
      }
      if (auth.ok !== true) throw new S3Error(auth.status, auth.code, auth.message);
      const pairs = parseQuery(qi < 0 ? "" : rawUrl.slice(qi + 1)) ?? [];
      // Presigned-URL parameters are authentication, not sub-resources.
      const query = new Map(pairs.filter(([k]) => !/^x-amz-/i.test(k)));
      // Path: /bucket[/key...]; decode the bucket and the key separately.
      const rest = rawPath.slice(1);
      const slash = rest.indexOf("/");
      const rawBucket = slash < 0 ? rest : rest.slice(0, slash);
      const rawKey = slash < 0 ? "" : rest.slice(slash + 1);
      const bucket = safeDecode(rawBucket);
      const key = safeDecode(rawKey);
      if (bucket === undefined || key === undefined) {
        throw new S3Error(400, "InvalidURI", "malformed percent-encoding in path");
      }
      const problem = bucket === "" ? undefined : bucketNameProblem(bucket);
      if (problem) {
        throw new S3Error(400, "InvalidBucketName", `invalid bucket name '${bucket}': ${problem}`);
      }
      const principal = access.principal(auth.accessKey);
      const ctx: Ctx = { req, res, requestId, resource, query, auth, principal, pre };
      if (bucket !== "") ctx.bucket = bucket;
      if (key !== "") ctx.key = key;
      await route(ctx, () => (bodyConsumed = true));
    } catch (e) {
      let err: S3Error;
      if (e instanceof S3Error) err = e;
      else if (e instanceof GangplankError) err = new S3Error(500, "InternalError", e.message);
      else {
        const code = (e as NodeJS.ErrnoException)?.code;
        if (code === "ENOSPC" || code === "EDQUOT") {
          err = new S3Error(507, "XMinioStorageFull", "no space left on the relay's disk");
        } else err = new S3Error(500, "InternalError", "We encountered an internal error.");
        log(`relay: ${req.method} ${rawPath}: ${e instanceof Error ? e.message : String(e)}`);
      }
      // 404/409/412/416 are ordinary answers (bucketExists, stat of a missing key); log the rest.
      if (!(e instanceof ClientAbortedError) && ![404, 409, 412, 416].includes(err.status)) {
        log(`relay: ${req.method} ${rawPath} -> ${err.status} ${err.code}`);
      }
      // A request whose body was not (fully) read cannot keep the connection.
      const hasBody = req.headers["content-length"] !== undefined &&
          req.headers["content-length"] !== "0" ||
        req.headers["transfer-encoding"] !== undefined;
      sendError(req, res, requestId, resource, err, hasBody && !bodyConsumed);
    }
  }

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
          if (req.headers["x-amz-copy-source"]) throw notImplemented();
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
          const body = await receiveSmallBody(req, ctx.auth, undefined, ctx.pre);
          markConsumed();
          return completeUpload(ctx, body.toString("utf8"));
        }
        throw notImplemented();
    }
    throw notImplemented();
  }

  // ---- lifecycle -------------------------------------------------------------------------

  await hashPool.start();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      hashPool.close();
      reject(
        new GangplankError(
          `relay cannot listen on ${hostname}:${opts.port ?? 0}: ${e.code ?? e.message}`,
          { cause: e },
        ),
      );
    });
    server.listen(opts.port ?? 0, hostname, () => {
      server.removeAllListeners("error");
      server.on("error", (e: Error) => log(`relay: server error: ${e.message}`));
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log(
    `relay: serving ${store.root} on http://${
      hostname.includes(":") ? `[${hostname}]` : hostname
    }:${port}`,
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      opts.signal?.removeEventListener("abort", onAbort);
      server.close(() => resolve());
      hashPool.close();
      for (const s of sockets) s.destroy();
    });
    return closing;
  };
  const onAbort = () => void close();
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  const clientHost = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  return {
    hostname,
    port,
    region,
    credentials,
    stats,
    config: () => ({
      accesskey: credentials.accessKey,
      secretkey: credentials.secretKey,
      host: clientHost,
      port,
      region,
      external_server: true,
      secure: false,
    }),
    grant: (a: AccessGrant) => access.grant(a, abortUploadsOf),
    close,
    [Symbol.asyncDispose]: close,
  };
}
