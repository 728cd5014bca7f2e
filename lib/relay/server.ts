/**
 * The relay: an S3-compatible HTTP server over a directory (bucket = top-level folder,
 * object = plain file), verifying AWS Signature V4 against per-run credentials.
 *
 * Built on `node:http` (not `Deno.serve`) so uploads stream at disk speed: request bodies are
 * written synchronously as chunks arrive (gathered into 1 MiB writes) while a worker thread
 * computes SHA-256 (when the client declared one) and MD5 (when asked for, or cheap; see
 * `server_body.ts` for ETags); objects are sent from a few reused buffers. This module holds
 * the lifecycle and authentication; routing and grant checks are in `server_route.ts`, the
 * handlers in `server_listing.ts`, `server_objects.ts` and `server_multipart*.ts`.
 *
 * @module
 */

import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createHash, randomInt } from "node:crypto";
import { GangplankError } from "../errors/mod.ts";
import { FsStore } from "./fs_store.ts";
import { S3Error } from "./s3_error.ts";
import { randomId } from "./fs_paths.ts";
import { type Credentials, parseQuery, safeDecode, verifyRequest } from "./sigv4.ts";
import { isSigV2, verifyRequestV2 } from "./sigv2.ts";
import { errorDocument } from "./xml.ts";
import {
  ClientAbortedError,
  deferContinue,
  UNVERIFIED_BODY_LIMITS,
  UnverifiedBodies,
  type UnverifiedBodyLimits,
} from "./server_body.ts";
import type { RelayConfig } from "./config.ts";
import { HashPool } from "./server_hash.ts";
import { FileHasher } from "./file_hasher.ts";
import type { Ctx, RelayCore } from "./server_core.ts";
import { listingHandlers } from "./server_listing.ts";
import { router } from "./server_route.ts";
import { abortStaleUploads, STALE_UPLOAD_MS } from "./server_uploads.ts";
import { objectHandlers } from "./server_objects.ts";
import { multipartHandlers } from "./server_multipart.ts";
import { type AccessGrant, AccessRegistry, type ScopedCredential } from "./server_access.ts";
import { bucketNameProblem } from "../names/bucket.ts";

export type { Credentials } from "./sigv4.ts";

/** The query parameters of a SigV2 presigned URL (authentication, not sub-resources). */
const V2_QUERY_AUTH = new Set(["AWSAccessKeyId", "Signature", "Expires"]);
export type { AccessGrant, ScopedCredential } from "./server_access.ts";

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
  /**
   * For tests of clients' fallbacks: accept `If-Match` / `If-None-Match` on writes and ignore
   * them, like an S3 endpoint without conditional writes. Default false.
   */
  ignoreConditionalWrites?: boolean;
  /**
   * Bounds on bodies read before their signature can be checked (requests signed over the
   * body's hash without an `x-amz-content-sha256` header). Default 1 MiB, 10 s, 32 at once.
   */
  unverifiedBodies?: Partial<UnverifiedBodyLimits>;
  /**
   * Multipart uploads initiated longer ago than this are aborted (their parts removed) when
   * the relay starts. Default 24 h; `Infinity` keeps them.
   */
  abortUploadsAfterMs?: number;
  /** Receives one line per notable event (never secrets). */
  log?: (msg: string) => void;
  /** Aborting closes the relay. */
  signal?: AbortSignal;
}

/** A running relay. */
export interface Relay extends AsyncDisposable {
  /** Address it listens on. */
  readonly hostname: string;
  /** Port it listens on. */
  readonly port: number;
  /** S3 region it answers for. */
  readonly region: string;
  /** The run's root credentials (never logged). */
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

/**
 * C0 and C1 control characters and DEL: not in object keys. (Unlike `names/mod.ts`'s
 * CONTROL_CHARS, U+2028/U+2029 stay allowed: S3 stores them and XML carries them.)
 */
// deno-lint-ignore no-control-regex
const C0_C1 = /[\u0000-\u001f\u007f-\u009f]/;

/** node's rawHeaders without `Authorization` headers whose value is empty. */
function withoutEmptyAuthorization(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].toLowerCase() === "authorization" && raw[i + 1].trim() === "") continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
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
  const maxUploadAge = opts.abortUploadsAfterMs ?? STALE_UPLOAD_MS;
  if (!(maxUploadAge >= 0)) {
    throw new GangplankError(`abortUploadsAfterMs: ${maxUploadAge} is not a duration`);
  }
  const stale = abortStaleUploads(store.uploadsDir, maxUploadAge);
  if (stale > 0) {
    log(`relay: aborted ${stale} multipart upload(s) older than ${maxUploadAge / 3.6e6} h`);
  }
  const stats = { bytesIn: 0, bytesOut: 0 };
  const sockets = new Set<Socket>();
  const hashPool = new HashPool();
  const fileHasher = new FileHasher({ keepIdle: 1 });
  const core: RelayCore = {
    store,
    stats,
    hashPool,
    fileHasher,
    hashing: new Map(),
    appending: new Set<string>(),
    region,
    log,
  };
  const multipart = multipartHandlers(core);
  const route = router(core, {
    ...listingHandlers(core),
    ...objectHandlers(core),
    ...multipart,
  });
  const access = new AccessRegistry(credentials, generateCredentials);

  const unverified = new UnverifiedBodies({
    ...UNVERIFIED_BODY_LIMITS,
    ...opts.unverifiedBodies,
  });
  // The request being answered on each connection (see the clientError handler below).
  const inFlight = new WeakMap<Socket, { req: http.IncomingMessage; res: http.ServerResponse }>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    inFlight.set(socket, { req, res });
    res.on("finish", () => {
      if (inFlight.get(socket)?.res === res) inFlight.delete(socket);
    });
    handle(req, res).catch((e) => {
      log(`relay: internal error: ${e instanceof Error ? e.message : String(e)}`);
      try {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        } else res.destroy();
      } catch { /* socket gone */ }
    });
  };
  const server = http.createServer(onRequest);
  // `Expect: 100-continue`: the 100 goes out only when the relay reads the body (after the
  // signature and the grant were checked), never to a client about to be refused.
  server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => {
    deferContinue(req, res);
    onRequest(req, res);
  });
  // Other `Expect` values (an empty one, say) are ignored, as S3 does (node would answer 417).
  server.on("checkExpectation", onRequest);
  // Bytes the HTTP parser cannot read (a body longer than its Content-Length, say). When they
  // follow a whole request still being answered, that answer (BadDigest, ...) goes out and then
  // the connection closes; otherwise the connection gets what node sends without a handler (a
  // bare 400, 408 or 431, unless a response is half sent) and is closed.
  server.on("clientError", (e: NodeJS.ErrnoException, socket: Socket) => {
    const current = inFlight.get(socket);
    const answering = current !== undefined && !current.res.writableFinished;
    if (answering && current.req.complete && socket.writable) {
      if (!current.res.headersSent) current.res.shouldKeepAlive = false;
      current.res.on("close", () => socket.destroy());
      return;
    }
    if (socket.writable && !(answering && current.res.headersSent)) {
      const status = e.code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : e.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? "408 Request Timeout"
        : "400 Bad Request";
      socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy();
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
      // An empty Authorization header carries no credentials: the request is anonymous.
      const rawHeaders = withoutEmptyAuthorization(req.rawHeaders);
      const signed = { method: req.method ?? "GET", rawUrl, rawHeaders };
      const pairs = parseQuery(qi < 0 ? "" : rawUrl.slice(qi + 1)) ?? [];
      const v2 = isSigV2(rawHeaders, pairs);
      let auth = v2 ? verifyRequestV2(signed, access.lookup) : verifyRequest(signed, access.lookup);
      let pre: Buffer | undefined;
      if (auth.ok === "deferred") {
        // Signed over the body's hash without saying so (curl < 8 with --data): read the body,
        // bounded in size, time and number (see UnverifiedBodies), and check the signature
        // against its SHA-256.
        pre = await unverified.read(req);
        bodyConsumed = true;
        auth = auth.verifyBody(createHash("sha256").update(pre).digest("hex"));
      }
      if (auth.ok !== true) throw new S3Error(auth.status, auth.code, auth.message);
      // Presigned-URL parameters are authentication, not sub-resources.
      const query = new Map(
        pairs.filter(([k]) => !/^x-amz-/i.test(k) && !(v2 && V2_QUERY_AUTH.has(k))),
      );
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
      // Keys with C0/C1 control characters (which S3's key guidelines say to avoid; XML 1.0
      // listings cannot carry most of them): refused as S3 refuses them.
      if (C0_C1.test(key)) {
        throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
      }
      const problem = bucket === "" ? undefined : bucketNameProblem(bucket);
      if (problem) {
        throw new S3Error(400, "InvalidBucketName", `invalid bucket name '${bucket}': ${problem}`);
      }
      const principal = access.principal(auth.accessKey);
      const ctx: Ctx = { req, res, requestId, resource, query, auth, principal, pre };
      if (opts.ignoreConditionalWrites) ctx.ignoreConditions = true;
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

  // ---- lifecycle -------------------------------------------------------------------------

  await hashPool.start();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      hashPool.close();
      fileHasher.close();
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
      fileHasher.close();
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
    grant: (a: AccessGrant) => access.grant(a, multipart.abortUploadsOf),
    close,
    [Symbol.asyncDispose]: close,
  };
}
