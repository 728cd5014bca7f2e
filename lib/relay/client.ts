/**
 * The artifact store client: every transfer between workers, the coordinator and the relay
 * (or any external S3 named by a minio config file) goes through {@link ArtifactStore}, built
 * on npm:minio.
 *
 * - Uploads always have a known size (a file is stat'ed and streamed with it), so npm:minio
 *   never buffers its ~525 MiB "unknown size" parts; parts are 16 MiB by default.
 * - Downloads are atomic (temp file next to the destination, fsync, rename), verified against
 *   the sha256/size the build metadata gives before the rename, and skipped entirely when the
 *   destination already holds that content.
 * - Transient failures (connection reset/refused, timeouts, 5xx, SlowDown, 429) are retried
 *   with backoff; nothing else is. Every call takes `{ signal }`.
 * - Gangplank's file stamps: upload time in UTC unix nanoseconds, in user metadata.
 *
 * @module
 */
import * as http from "node:http";
import * as https from "node:https";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import { posix } from "node:path";
import { Readable, Transform } from "node:stream";
import type { ReadableStream as NodeWebReadableStream } from "node:stream/web";
import * as Minio from "minio";
import type { RelayConfig } from "./config.ts";
import type { ProgressFactory } from "../progress/mod.ts";
import { isTransientError, type RetryOptions, withRetry } from "./retry.ts";
import { IntegrityError, isTransientStatus, StoreError } from "./store_errors.ts";
import { HashPool, type HashSession } from "./server_hash.ts";

export { isTransientError, type RetryOptions, withRetry } from "./retry.ts";
export {
  IntegrityError,
  isTransientCode,
  isTransientStatus,
  StoreError,
  TransientHttpError,
} from "./store_errors.ts";

/**
 * User-metadata name of the upload stamp (`x-amz-meta-gangplank.coreos.com-cosa-stamp`).
 * Gangplank kept the stamp in an object *tag* named `gangplank.coreos.com/cosa/stamp`; a `/`
 * cannot appear in an HTTP header name, so as metadata the slashes become dashes.
 */
export const STAMP_METADATA_KEY = "gangplank.coreos.com-cosa-stamp";
/** Gangplank's tag name for the stamp (read as a fallback for objects Gangplank wrote). */
export const STAMP_TAG_KEY = "gangplank.coreos.com/cosa/stamp";

/**
 * Default part size of {@link ArtifactStore.putStream}: 16 MiB (npm:minio buffers each part of
 * a stream in memory, so this bounds client memory per upload).
 */
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;

/**
 * Default part size of {@link ArtifactStore.putFile}: 128 MiB. Parts of a file are streamed
 * from the file, never buffered, so this only sets what a retry re-sends; files up to this
 * size go up in one PUT (S3 allows 5 GiB).
 */
export const DEFAULT_FILE_PART_SIZE = 128 * 1024 * 1024;

/** Lifetime of the URLs npm:minio presigns for downloads (checked when a request starts). */
const PRESIGN_EXPIRY_S = 300;

/** Options of {@link ArtifactStore.fromConfig}. */
export interface ArtifactStoreOptions {
  /** One line per retry and skipped transfer (never secrets). */
  log?: (message: string) => void;
  /** Creates a progress report per file transfer. */
  progress?: ProgressFactory;
  /** Retry policy (attempts, delays); `signal` comes from each call. */
  retry?: Omit<RetryOptions, "signal">;
  /**
   * Multipart part size in bytes (>= 5 MiB). Default {@link DEFAULT_FILE_PART_SIZE} for
   * {@link ArtifactStore.putFile}, {@link DEFAULT_PART_SIZE} for {@link ArtifactStore.putStream}.
   */
  partSize?: number;
  /** PEM CA certificate(s) to trust for a `secure` endpoint with a private CA. */
  ca?: string | string[];
}

/** What {@link ArtifactStore.stat} reports. */
export interface ObjectStat {
  /** Size in bytes. */
  size: number;
  /** ETag without quotes. */
  etag: string;
  /** Last modification time. */
  lastModified: Date;
  /** User metadata (names lower-cased, without `x-amz-meta-`) and stored standard headers. */
  metadata: Record<string, string>;
}

/** One listed object (or, when not recursive, one common prefix with `isPrefix`). */
export interface ListEntry {
  /** Object key (or common prefix). */
  key: string;
  /** Size in bytes (0 for a prefix). */
  size: number;
  /** Last modification time. */
  lastModified: Date;
  /** ETag without quotes. */
  etag?: string;
  /** True for a common prefix (a folder) in a non-recursive listing. */
  isPrefix?: boolean;
}

/** What a fetched artifact must be, from meta.json. */
export interface ExpectedContent {
  /** Hex sha256 of the content. */
  sha256?: string;
  /** Size in bytes. */
  size?: number;
  /** Name used in errors and logs (meta.json's artifact name); default the key. */
  name?: string;
}

/** Where and how to reach the S3 endpoint, derived from a {@link RelayConfig}. */
export interface Endpoint {
  /** Host name or address. */
  endPoint: string;
  /** TCP port. */
  port: number;
  /** HTTPS. */
  useSSL: boolean;
  /** S3 region. */
  region: string;
  /** Path-style addressing (`host/bucket/key`). */
  pathStyle: boolean;
}

/**
 * Turns a minio config into connection settings: `secure` selects TLS; a host given with a
 * scheme (`https://s3.example.com:8443`) is accepted, its scheme and port used when the config
 * does not say otherwise; Amazon S3 hosts always use TLS and virtual-host style (as Gangplank
 * did); the region defaults to `us-east-1`.
 */
export function resolveEndpoint(cfg: RelayConfig): Endpoint {
  let host = cfg.host.trim();
  let useSSL = cfg.secure === true;
  let port = cfg.port;
  const m = /^(https?):\/\/([^/]+?)(?::(\d+))?\/?$/i.exec(host);
  if (m) {
    if (m[1].toLowerCase() === "https") useSSL = true;
    host = m[2];
    if (!port && m[3]) port = Number(m[3]);
  } else {
    const hp = /^([^/:]+|\[[^\]]+\]):(\d+)$/.exec(host);
    if (hp) {
      host = hp[1];
      if (!port) port = Number(hp[2]);
    }
  }
  host = host.replace(/^\[(.*)\]$/, "$1");
  const amazon = /(^|\.)amazonaws\.com(\.cn)?$/i.test(host);
  if (amazon) useSSL = true;
  if (!port) port = useSSL ? 443 : 80;
  return { endPoint: host, port, useSSL, region: cfg.region || "us-east-1", pathStyle: !amazon };
}

/** Per-call transport state: the statuses seen, to classify npm:minio's plain errors. */
interface CallState {
  status?: number;
  transient?: { status: number; code: string; message: string; body: Promise<void> };
}

const NOT_FOUND = new Set(["NoSuchKey", "NotFound", "NoSuchBucket"]);

/** A local file problem (stat, read) while working on `bucket/key`: never transient. */
function localFileError(op: string, bucket: string, key: string, e: unknown): StoreError {
  const code = (e as { code?: string }).code ?? "ENOENT";
  return new StoreError(op, bucket, key, code, errMessage(e), undefined, false, { cause: e });
}

/** Resolves `undefined` instead of rejecting when the object (or its bucket) does not exist. */
async function unlessMissing<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof StoreError && NOT_FOUND.has(e.code)) return undefined;
    throw e;
  }
}

function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * An S3 bucket store over npm:minio with integrity checks, stamps, retries and progress.
 * Dispose it (or call {@link ArtifactStore.close}) to close pooled connections.
 *
 * @example
 * ```ts
 * await using store = ArtifactStore.fromConfig(await readRelayConfig(file), { log });
 * await store.putFile("builder", "builds/36.1/x86_64/meta.json", "/srv/builds/.../meta.json", {
 *   signal,
 * });
 * const r = await store.fetchFile("builder", key, dest, {
 *   signal,
 *   expect: { sha256: art.sha256, size: art.size, name: "qemu" },
 * });
 * ```
 */
export class ArtifactStore implements AsyncDisposable {
  /** Payload bytes downloaded and uploaded, and transfers skipped as already present. */
  readonly stats = { bytesIn: 0, bytesOut: 0, skipped: 0 };
  /** Where the store is. */
  readonly endpoint: Endpoint;
  readonly #accessKey: string;
  readonly #secretKey: string;
  readonly #agent: http.Agent;
  readonly #log: (m: string) => void;
  readonly #progress?: ProgressFactory;
  readonly #retry: Omit<RetryOptions, "signal">;
  readonly #partSize: number;
  readonly #filePartSize: number;
  #fetchClient?: Deno.HttpClient;
  /** Hashes verified fetches on a worker thread (started on first use). */
  #hashPool?: Promise<HashPool>;
  readonly #buckets = new Set<string>();

  private constructor(cfg: RelayConfig, opts: ArtifactStoreOptions) {
    this.endpoint = resolveEndpoint(cfg);
    this.#accessKey = cfg.accesskey;
    this.#secretKey = cfg.secretkey;
    this.#agent = this.endpoint.useSSL
      // No keep-alive: Deno's node:http silently re-sends a request whose pooled connection
      // fails, which defeats aborts (and must never happen to a streamed PUT).
      ? new https.Agent({ keepAlive: false, maxSockets: 16, ca: opts.ca })
      : new http.Agent({ keepAlive: false, maxSockets: 16 });
    this.#log = opts.log ?? (() => {});
    this.#progress = opts.progress;
    this.#retry = opts.retry ?? {};
    this.#partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    this.#filePartSize = opts.partSize ?? DEFAULT_FILE_PART_SIZE;
  }

  /** A store for the endpoint a minio config describes (the relay's or an external S3). */
  static fromConfig(cfg: RelayConfig, opts: ArtifactStoreOptions = {}): ArtifactStore {
    return new ArtifactStore(cfg, opts);
  }

  /** Closes pooled connections. Idempotent. */
  async close(): Promise<void> {
    this.#agent.destroy();
    this.#fetchClient?.close();
    this.#fetchClient = undefined;
    const pool = this.#hashPool;
    this.#hashPool = undefined;
    if (pool) (await pool).close();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /** A transport that binds `signal` to each request and notes retryable statuses. */
  #transport(signal: AbortSignal | undefined, state: CallState): Minio.ClientOptions["transport"] {
    const base = this.endpoint.useSSL ? https : http;
    const request = (opt: http.RequestOptions, cb?: (res: http.IncomingMessage) => void) => {
      const req = base.request({ ...opt, agent: this.#agent }, (res) => {
        const status = res.statusCode ?? 0;
        state.status = status;
        if (isTransientStatus(status)) {
          // npm:minio turns these into a plain Error without reading the body: read it here
          // (for the S3 error code) so the connection is freed.
          let text = "";
          const t: NonNullable<CallState["transient"]> = {
            status,
            code: status === 503
              ? "SlowDown"
              : status === 429
              ? "TooManyRequests"
              : `HTTP${status}`,
            message: http.STATUS_CODES[status] ?? "error",
            body: new Promise<void>((resolve) => {
              res.on("data", (c: Uint8Array) => {
                if (text.length < 65536) text += new TextDecoder().decode(c);
              });
              res.on("end", () => {
                const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
                const msg = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
                if (code) t.code = code;
                if (msg) t.message = msg;
                resolve();
              });
              res.on("error", () => resolve());
              res.on("close", () => resolve());
            }),
          };
          state.transient = t;
        }
        cb?.(res);
      });
      if (signal) {
        // Destroy the request (and its response) on abort; Deno's node:http does not act on
        // a `signal` request option.
        const onAbort = () => req.destroy(signal.reason);
        if (signal.aborted) onAbort();
        else {
          signal.addEventListener("abort", onAbort, { once: true });
          req.on("close", () => signal.removeEventListener("abort", onAbort));
        }
      }
      return req;
    };
    return { request } as unknown as Minio.ClientOptions["transport"];
  }

  #client(signal: AbortSignal | undefined, state: CallState): Minio.Client {
    const e = this.endpoint;
    return new Minio.Client({
      endPoint: e.endPoint,
      port: e.port,
      useSSL: e.useSSL,
      region: e.region,
      pathStyle: e.pathStyle,
      accessKey: this.#accessKey,
      secretKey: this.#secretKey,
      partSize: this.#partSize,
      transport: this.#transport(signal, state),
      transportAgent: this.#agent,
      retryOptions: { disableRetry: true },
    });
  }

  async #wrap(
    op: string,
    bucket: string,
    key: string | undefined,
    err: unknown,
    state: CallState,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (signal?.aborted) return signal.reason;
    if (err instanceof StoreError) return err;
    if (state.transient) {
      const t = state.transient;
      await Promise.race([t.body, new Promise((r) => setTimeout(r, 1000))]);
      return new StoreError(op, bucket, key, t.code, t.message, t.status, true, { cause: err });
    }
    const code = (err as { code?: unknown })?.code;
    if (typeof code === "string" && code !== "") {
      return new StoreError(op, bucket, key, code, errMessage(err), state.status, undefined, {
        cause: err,
      });
    }
    const transient = isTransientError(err);
    const name = err instanceof Error ? err.name : "Error";
    return new StoreError(op, bucket, key, name, errMessage(err), state.status, transient, {
      cause: err,
    });
  }

  /** Runs `fn` with a fresh signal-bound client, wrapping errors and retrying transient ones. */
  #call<T>(
    op: string,
    bucket: string,
    key: string | undefined,
    signal: AbortSignal | undefined,
    fn: (client: Minio.Client) => Promise<T>,
    { retry = true, race = true }: { retry?: boolean; race?: boolean } = {},
  ): Promise<T> {
    const once = async () => {
      signal?.throwIfAborted();
      const state: CallState = {};
      try {
        const p = fn(this.#client(signal, state));
        return await (race ? raceAbort(p, signal) : p);
      } catch (e) {
        throw await this.#wrap(op, bucket, key, e, state, signal);
      }
    };
    if (!retry) return once();
    const where = `${bucket}${key !== undefined ? `/${key}` : ""}`;
    return withRetry(once, {
      ...this.#retry,
      signal,
      onRetry: ({ attempt, attempts, delayMs, error }) => {
        const what = error instanceof StoreError
          ? error.message
          : `${op} ${where}: ${errMessage(error)}`;
        this.#log(`${what}; retrying in ${delayMs} ms (attempt ${attempt}/${attempts})`);
        this.#retry.onRetry?.({ attempt, attempts, delayMs, error });
      },
    });
  }

  // ---- buckets ----------------------------------------------------------------------------

  /** Creates `bucket` (in the configured region) unless it exists. Cached per store. */
  async ensureBucket(bucket: string, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#buckets.has(bucket)) return;
    await this.#call("ensureBucket", bucket, undefined, signal, async (c) => {
      if (await c.bucketExists(bucket)) return;
      try {
        await c.makeBucket(bucket, this.endpoint.region);
      } catch (e) {
        const code = (e as { code?: string })?.code;
        if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw e;
      }
    });
    this.#buckets.add(bucket);
  }

  // ---- uploads ----------------------------------------------------------------------------

  /**
   * Uploads the file at `path`, stamped with the upload time unless `stamp: false`. Creates the
   * bucket if needed.
   *
   * npm:minio signs each request (`UNSIGNED-PAYLOAD`: no hashing pass over the data) and the
   * body is streamed from the file with its known length, never buffered; npm:minio's own
   * `putObject` would hash every part (SHA-256 and MD5, in JS) over plain HTTP, which bounds it
   * near 70 MiB/s. Files above the part size go up as a multipart upload, one streamed part
   * at a time. Transient failures retry the single PUT, or the failed part only (re-read from
   * the file); an upload that fails for good is aborted.
   */
  async putFile(
    bucket: string,
    key: string,
    path: string,
    opts: {
      signal?: AbortSignal;
      stamp?: boolean;
      contentType?: string;
      /**
       * Create only (`If-None-Match: *`, on the PUT or the multipart completion): an object
       * already at `key` makes this fail with a `PreconditionFailed` {@link StoreError}.
       */
      ifNoneMatch?: boolean;
    } = {},
  ): Promise<{ bytes: number }> {
    const { signal } = opts;
    let st: Awaited<ReturnType<typeof fsp.stat>>;
    try {
      st = await fsp.stat(path);
    } catch (e) {
      throw localFileError("put", bucket, key, e);
    }
    if (!st.isFile()) {
      throw new StoreError(
        "put",
        bucket,
        key,
        "NotAFile",
        `${path} is not a regular file`,
        undefined,
        false,
      );
    }
    const size = Number(st.size);
    await this.ensureBucket(bucket, { signal });
    const headers = metaHeaders(this.#meta(opts));
    const progress = this.#progress?.(`${bucket}/${key}`, size);
    // Progress counts file positions, so a retried range is not counted twice.
    let reported = 0;
    const seen = (pos: number) => {
      if (pos > reported) {
        progress?.update(pos - reported);
        reported = pos;
      }
    };
    const part = this.#filePartSize;
    try {
      if (size <= part) {
        await this.#call(
          "put",
          bucket,
          key,
          signal,
          (c) =>
            this.#putRange(c, bucket, key, path, 0, size, {
              headers: opts.ifNoneMatch ? { ...headers, "If-None-Match": "*" } : headers,
              signal,
              seen,
            }),
          {
            race: false,
          },
        );
      } else {
        const uploadId = await this.#call(
          "put",
          bucket,
          key,
          signal,
          (c) => c.initiateNewMultipartUpload(bucket, key, headers),
        );
        try {
          const etags: { part: number; etag: string }[] = [];
          for (let n = 1, off = 0; off < size; n++, off += part) {
            const len = Math.min(part, size - off);
            const query = `partNumber=${n}&uploadId=${encodeURIComponent(uploadId)}`;
            const etag = await this.#call(
              "put",
              bucket,
              key,
              signal,
              (c) => this.#putRange(c, bucket, key, path, off, len, { query, signal, seen }),
              {
                race: false,
              },
            );
            etags.push({ part: n, etag });
          }
          await this.#call(
            "put",
            bucket,
            key,
            signal,
            (c) =>
              opts.ifNoneMatch
                ? completeIfAbsent(c, bucket, key, uploadId, etags)
                : c.completeMultipartUpload(bucket, key, uploadId, etags).then(() => {}),
          );
        } catch (e) {
          // Not bound to `signal`: an aborted upload is cleaned up too (bounded by the agent).
          await this.#client(undefined, {}).abortMultipartUpload(bucket, key, uploadId)
            .catch(() => {});
          throw e;
        }
      }
    } finally {
      progress?.done();
    }
    this.stats.bytesOut += size;
    return { bytes: size };
  }

  /**
   * PUTs bytes `[start, start + len)` of the file at `path` (an object, or a part when `query`
   * names one), signed by npm:minio with `UNSIGNED-PAYLOAD`; resolves the response ETag.
   */
  async #putRange(
    c: Minio.Client,
    bucket: string,
    key: string,
    path: string,
    start: number,
    len: number,
    o: {
      headers?: Record<string, string>;
      query?: string;
      signal?: AbortSignal;
      seen: (pos: number) => void;
    },
  ): Promise<string> {
    const rs = len > 0
      ? createReadStream(path, { start, end: start + len - 1, highWaterMark: 1 << 20 })
      : undefined;
    let pos = start;
    // Observed beside the pipe: no extra stream stage.
    rs?.on("data", (chunk: Uint8Array | string) => o.seen(pos += chunk.length));
    const onAbort = () => rs?.destroy(o.signal?.reason);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      // No SHA-256 pass over the body (the transport may still be TLS); see putFile.
      (c as unknown as { enableSHA256: boolean }).enableSHA256 = false;
      const res = await raceAbort(
        c.makeRequestStreamAsync(
          {
            method: "PUT",
            bucketName: bucket,
            objectName: key,
            query: o.query,
            headers: { ...o.headers, "content-length": String(len) },
          },
          rs ?? Buffer.alloc(0),
          "",
          [200],
          this.endpoint.region,
        ),
        o.signal,
      );
      res.resume();
      const etag = String(res.headers.etag ?? "").replace(/^"|"$/g, "");
      if (pos !== start + len) {
        throw new StoreError(
          "put",
          bucket,
          key,
          "FileChanged",
          `${path} changed while it was uploaded (read ${pos - start} of ${len} bytes)`,
          undefined,
          false,
        );
      }
      return etag;
    } finally {
      o.signal?.removeEventListener("abort", onAbort);
      rs?.destroy();
    }
  }

  /**
   * Uploads a stream of known `size` bytes (never an unknown-size stream). Not retried: a
   * stream cannot be replayed. Fails if the stream does not hold exactly `size` bytes.
   */
  async putStream(
    bucket: string,
    key: string,
    stream: Readable | ReadableStream<Uint8Array>,
    size: number,
    opts: { signal?: AbortSignal; stamp?: boolean; contentType?: string } = {},
  ): Promise<{ bytes: number }> {
    const { signal } = opts;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new StoreError(
        "put",
        bucket,
        key,
        "InvalidSize",
        `size must be known, got ${size}`,
        undefined,
        false,
      );
    }
    await this.ensureBucket(bucket, { signal });
    const src = stream instanceof Readable
      ? stream
      : Readable.fromWeb(stream as unknown as NodeWebReadableStream<Uint8Array>);
    let seen = 0;
    await this.#call("put", bucket, key, signal, async (c) => {
      const progress = this.#progress?.(`${bucket}/${key}`, size);
      const limiter = new Transform({
        transform(chunk: Uint8Array, _enc, cb) {
          seen += chunk.length;
          progress?.update(chunk.length);
          if (seen > size) cb(new Error(`stream is longer than the declared ${size} bytes`));
          else cb(null, chunk);
        },
        flush(cb) {
          cb(seen < size ? new Error(`stream ended after ${seen} of ${size} bytes`) : null);
        },
      });
      src.on("error", (e) => limiter.destroy(e));
      const onAbort = () => src.destroy(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await c.putObject(bucket, key, src.pipe(limiter), size, this.#meta(opts));
      } catch (e) {
        if (size > this.#partSize) await c.removeIncompleteUpload(bucket, key).catch(() => {});
        throw e;
      } finally {
        signal?.removeEventListener("abort", onAbort);
        progress?.done();
      }
      if (seen !== size) throw new Error(`stream held ${seen} bytes, declared ${size}`);
    }, { retry: false });
    this.stats.bytesOut += size;
    return { bytes: size };
  }

  /** Uploads bytes (stamped unless `stamp: false`). */
  async putBytes(
    bucket: string,
    key: string,
    value: Uint8Array,
    opts: { signal?: AbortSignal; stamp?: boolean; contentType?: string } = {},
  ): Promise<{ bytes: number }> {
    const { signal } = opts;
    await this.ensureBucket(bucket, { signal });
    const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    await this.#call("put", bucket, key, signal, async (c) => {
      await c.putObject(bucket, key, buf, buf.length, this.#meta(opts));
    });
    this.stats.bytesOut += buf.length;
    return { bytes: buf.length };
  }

  /** Uploads a UTF-8 string. */
  putText(
    bucket: string,
    key: string,
    value: string,
    opts: { signal?: AbortSignal; stamp?: boolean; contentType?: string } = {},
  ): Promise<{ bytes: number }> {
    return this.putBytes(bucket, key, new TextEncoder().encode(value), {
      contentType: "text/plain; charset=utf-8",
      ...opts,
    });
  }

  /** Uploads a value as indented JSON. */
  putJSON(
    bucket: string,
    key: string,
    value: unknown,
    opts: { signal?: AbortSignal; stamp?: boolean } = {},
  ): Promise<{ bytes: number }> {
    return this.putBytes(bucket, key, new TextEncoder().encode(JSON.stringify(value, null, 2)), {
      contentType: "application/json",
      ...opts,
    });
  }

  /**
   * Uploads a value as indented JSON only if the object is still at `cond.etag` (`If-Match`)
   * or does not exist (`{ absent: true }`, `If-None-Match: *`): the write half of a
   * compare-and-swap. Resolves `false` when the precondition failed (HTTP 412, or S3's 409
   * ConditionalRequestConflict for a race between two conditional writes). An empty
   * `cond.etag` (an endpoint that returned no ETag) sends no condition.
   */
  async putJSONIf(
    bucket: string,
    key: string,
    value: unknown,
    cond: { etag: string } | { absent: true },
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    await this.ensureBucket(bucket, { signal });
    const buf = Buffer.from(JSON.stringify(value, null, 2), "utf8");
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      [`x-amz-meta-${STAMP_METADATA_KEY}`]: nowNanos().toString(),
    };
    if ("absent" in cond) headers["If-None-Match"] = "*";
    else if (cond.etag) headers["If-Match"] = cond.etag;
    try {
      await this.#call("put", bucket, key, signal, async (c) => {
        const res = await c.makeRequestAsync(
          { method: "PUT", bucketName: bucket, objectName: key, headers },
          buf,
          [200],
        );
        res.resume();
      });
    } catch (e) {
      if (
        e instanceof StoreError &&
        (e.status === 412 || e.code === "PreconditionFailed" ||
          e.code === "ConditionalRequestConflict")
      ) return false;
      throw e;
    }
    this.stats.bytesOut += buf.length;
    return true;
  }

  #meta(opts: { stamp?: boolean; contentType?: string }): Record<string, string> {
    const meta: Record<string, string> = {
      "Content-Type": opts.contentType ?? "application/octet-stream",
    };
    if (opts.stamp !== false) meta[STAMP_METADATA_KEY] = nowNanos().toString();
    return meta;
  }

  // ---- downloads --------------------------------------------------------------------------

  /**
   * Downloads an object to `dest` atomically: into a temp file next to it (parents created
   * 0755), fsync'ed, checked against `expect` (an {@link IntegrityError} naming the artifact on
   * mismatch, nothing left behind), its mtime set to the object's LastModified, then renamed
   * over `dest`. When `expect.sha256` is given and `dest` already holds that content (and
   * size), nothing is transferred: `{ bytes: 0, skipped: true }`.
   */
  async fetchFile(
    bucket: string,
    key: string,
    dest: string,
    opts: { signal?: AbortSignal; expect?: ExpectedContent } = {},
  ): Promise<{ bytes: number; skipped: boolean }> {
    const { signal, expect } = opts;
    const name = expect?.name ?? key;
    const want = expect?.sha256?.toLowerCase();
    if (want !== undefined && await hasContent(dest, want, expect?.size, signal)) {
      this.stats.skipped++;
      this.#log(`fetch ${bucket}/${key}: ${dest} already holds sha256 ${want}; skipped`);
      return { bytes: 0, skipped: true };
    }
    const dir = posix.dirname(posix.resolve(dest));
    await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
    const bytes = await this.#call("fetch", bucket, key, signal, async (c) => {
      const tmp = posix.join(
        dir,
        `.${posix.basename(dest)}.gp-tmp-${crypto.randomUUID().slice(0, 8)}`,
      );
      let progress: ReturnType<ProgressFactory> | undefined;
      let hashSession: HashSession | undefined;
      try {
        const res = await this.#getObject(c, bucket, key, signal);
        const total = res.total;
        const lastModified = res.lastModified;
        progress = this.#progress?.(`${bucket}/${key}`, Number.isFinite(total) ? total : undefined);
        // Straight to the temp file; the sha256 (only when verifying) is computed on the way,
        // on a worker thread, so hashing overlaps receiving and writing instead of adding to
        // them. The response is read no faster than the worker hashes (bounded memory).
        const hash = hashSession = want !== undefined ? await this.#hashSession() : undefined;
        let n = 0;
        let writeError: unknown;
        const out = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
        try {
          for await (const chunk of chunksOf(res.body)) {
            hash?.update(chunk);
            if (hash?.congested) await new Promise<void>((r) => hash.onDrain(r));
            try {
              // Synchronous: a page-cache write is short, and an await per chunk halves speed.
              let off = 0;
              while (off < chunk.length) off += out.writeSync(chunk.subarray(off));
            } catch (e) {
              writeError = e;
              throw e;
            }
            n += chunk.length;
            progress?.update(chunk.length);
          }
        } catch (e) {
          throw e === writeError ? e : networkError("fetch", bucket, key, e, signal);
        } finally {
          out.close();
        }
        if (Number.isFinite(total) && n !== total) {
          throw new StoreError(
            "fetch",
            bucket,
            key,
            "IncompleteBody",
            `received ${n} of ${total} bytes`,
            undefined,
            true,
          );
        }
        if (expect?.size !== undefined && n !== expect.size) {
          throw new IntegrityError(name, bucket, key, "size", expect.size, n);
        }
        const got = hash ? (await hash.digest())[0] : undefined;
        if (want !== undefined && got !== want) {
          throw new IntegrityError(name, bucket, key, "sha256", want, got ?? "");
        }
        const fh = await fsp.open(tmp, "r+");
        try {
          await fh.chmod(0o644);
          await fh.sync();
        } finally {
          await fh.close();
        }
        if (lastModified && !Number.isNaN(lastModified.getTime())) {
          await fsp.utimes(tmp, lastModified, lastModified);
        }
        await fsp.rename(tmp, dest);
        await syncDir(dir);
        return n;
      } catch (e) {
        hashSession?.drop();
        await fsp.rm(tmp, { force: true }).catch(() => {});
        throw e;
      } finally {
        progress?.done();
      }
    }, { race: false });
    this.stats.bytesIn += bytes;
    return { bytes, skipped: false };
  }

  /** A SHA-256 session on the store's hash worker (inline if workers are unavailable). */
  async #hashSession(): Promise<HashSession> {
    this.#hashPool ??= (async () => {
      const pool = new HashPool();
      await pool.start();
      return pool;
    })();
    return (await this.#hashPool).session(["sha256"]);
  }

  /**
   * Starts a GET of an object. Over plain HTTP (the relay) with Deno's `fetch` at a URL
   * npm:minio presigned: node:http responses in Deno are read at about half the speed, with
   * twice the memory. Over TLS with npm:minio's own `getObject` (node:https): it honours a
   * private CA the way the rest of the store does (rustls refuses some certificates node's TLS
   * accepts, such as a self-signed CA certificate used as the server's). Non-2xx statuses
   * become a {@link StoreError} with the S3 error code; network failures are transient.
   */
  async #getObject(
    c: Minio.Client,
    bucket: string,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<
    {
      total: number;
      lastModified?: Date;
      body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
    }
  > {
    const date = (v: string | null | undefined) => (v ? new Date(v) : undefined);
    if (this.endpoint.useSSL) {
      const res = await raceAbort(c.getObject(bucket, key), signal) as http.IncomingMessage;
      const onAbort = () => res.destroy(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      res.on("close", () => signal?.removeEventListener("abort", onAbort));
      const cl = res.headers?.["content-length"];
      return {
        total: cl === undefined ? NaN : Number(cl),
        lastModified: date(res.headers?.["last-modified"]),
        body: res,
      };
    }
    const url = await c.presignedUrl("GET", bucket, key, PRESIGN_EXPIRY_S);
    this.#fetchClient ??= Deno.createHttpClient({});
    let res: Response;
    try {
      res = await fetch(url, { signal, client: this.#fetchClient });
    } catch (e) {
      throw networkError("fetch", bucket, key, e, signal);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `HTTP${res.status}`;
      const msg = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? res.statusText;
      throw new StoreError("fetch", bucket, key, code, msg, res.status);
    }
    const cl = res.headers.get("content-length");
    return {
      total: cl === null ? NaN : Number(cl),
      lastModified: date(res.headers.get("last-modified")),
      body: res.body ?? new Blob([]).stream(),
    };
  }

  /**
   * The sha256 (hex) and size of an object's content, streamed (never buffered whole), or
   * `undefined` when it (or its bucket) does not exist.
   */
  async sha256(
    bucket: string,
    key: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<{ sha256: string; size: number } | undefined> {
    const r = await unlessMissing(this.#call("sha256", bucket, key, signal, async (c) => {
      const res = await this.#getObject(c, bucket, key, signal);
      const hash = createHash("sha256");
      let size = 0;
      try {
        for await (const chunk of chunksOf(res.body)) {
          hash.update(chunk);
          size += chunk.length;
        }
      } catch (e) {
        throw networkError("sha256", bucket, key, e, signal);
      }
      if (Number.isFinite(res.total) && size !== res.total) {
        throw new StoreError(
          "sha256",
          bucket,
          key,
          "IncompleteBody",
          `received ${size} of ${res.total} bytes`,
          undefined,
          true,
        );
      }
      return { sha256: hash.digest("hex"), size };
    }, { race: false }));
    if (r) this.stats.bytesIn += r.size;
    return r;
  }

  /** An object's bytes, or `undefined` when it (or its bucket) does not exist. */
  async getBytes(
    bucket: string,
    key: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<Uint8Array | undefined> {
    const buf = await unlessMissing(this.#call("get", bucket, key, signal, async (c) => {
      const res = await c.getObject(bucket, key);
      const chunks: Uint8Array[] = [];
      for await (const chunk of res) chunks.push(chunk as Uint8Array);
      return Buffer.concat(chunks);
    }));
    if (buf === undefined) return undefined;
    this.stats.bytesIn += buf.length;
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** An object as UTF-8 text, or `undefined` when missing. */
  async getText(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<string | undefined> {
    const b = await this.getBytes(bucket, key, opts);
    return b === undefined ? undefined : new TextDecoder().decode(b);
  }

  /** An object parsed as JSON, or `undefined` when missing (`InvalidJSON` StoreError if bad). */
  async getJSON<T = unknown>(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<T | undefined> {
    const text = await this.getText(bucket, key, opts);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new StoreError("get", bucket, key, "InvalidJSON", errMessage(e), undefined, false, {
        cause: e,
      });
    }
  }

  /**
   * An object parsed as JSON with its ETag (for {@link ArtifactStore.putJSONIf}), or
   * `undefined` when it (or its bucket) does not exist.
   */
  async getJSONVersioned(
    bucket: string,
    key: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<{ value: unknown; etag: string } | undefined> {
    const got = await unlessMissing(this.#call("get", bucket, key, signal, async (c) => {
      const res = await c.makeRequestAsync(
        { method: "GET", bucketName: bucket, objectName: key },
        "",
        [200],
      );
      const chunks: Uint8Array[] = [];
      for await (const chunk of res) chunks.push(chunk as Uint8Array);
      return { body: Buffer.concat(chunks), etag: String(res.headers.etag ?? "") };
    }));
    if (got === undefined) return undefined;
    this.stats.bytesIn += got.body.length;
    try {
      return { value: JSON.parse(got.body.toString("utf8")), etag: got.etag };
    } catch (e) {
      throw new StoreError("get", bucket, key, "InvalidJSON", errMessage(e), undefined, false, {
        cause: e,
      });
    }
  }

  // ---- metadata, listing, removal ---------------------------------------------------------

  /** Size, ETag, LastModified and metadata of an object, or `undefined` when missing. */
  async stat(
    bucket: string,
    key: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<ObjectStat | undefined> {
    return await unlessMissing(this.#call("stat", bucket, key, signal, async (c) => {
      const s = await c.statObject(bucket, key);
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.metaData ?? {})) {
        metadata[k.toLowerCase()] = String(v);
      }
      return { size: s.size, etag: s.etag, lastModified: s.lastModified, metadata };
    }));
  }

  /** Whether an object exists. */
  async exists(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    return (await this.stat(bucket, key, opts)) !== undefined;
  }

  /**
   * Lists objects under `prefix` (all levels when `recursive`, else one level with common
   * prefixes marked `isPrefix`), page by page (each page retried). A missing bucket lists
   * nothing.
   */
  async *list(
    bucket: string,
    prefix = "",
    { recursive = true, signal }: { recursive?: boolean; signal?: AbortSignal } = {},
  ): AsyncIterable<ListEntry> {
    let token = "";
    for (;;) {
      let page: Awaited<ReturnType<Minio.Client["listObjectsV2Query"]>>;
      try {
        page = await this.#call(
          "list",
          bucket,
          prefix,
          signal,
          (c) => c.listObjectsV2Query(bucket, prefix, token, recursive ? "" : "/", 1000, ""),
        );
      } catch (e) {
        if (e instanceof StoreError && e.code === "NoSuchBucket") return;
        throw e;
      }
      for (const o of page.objects) {
        const item = o as {
          name?: string;
          prefix?: string;
          size?: number;
          lastModified?: Date;
          etag?: string;
        };
        if (item.prefix !== undefined && item.name === undefined) {
          yield { key: item.prefix, size: 0, lastModified: new Date(0), isPrefix: true };
        } else {
          yield {
            key: item.name ?? "",
            size: Number(item.size ?? 0),
            lastModified: item.lastModified ?? new Date(0),
            etag: item.etag,
          };
        }
      }
      if (!page.isTruncated || !page.nextContinuationToken) return;
      token = page.nextContinuationToken;
    }
  }

  /** Deletes an object (a missing one is not an error). */
  async remove(bucket: string, key: string, { signal }: { signal?: AbortSignal } = {}) {
    await unlessMissing(
      this.#call("remove", bucket, key, signal, (c) => c.removeObject(bucket, key)),
    );
  }

  // ---- stamps -----------------------------------------------------------------------------

  /**
   * The object's upload stamp in UTC unix nanoseconds: the stamp metadata, else Gangplank's
   * stamp tag, else its LastModified; `0n` when the object does not exist. A stamp that does
   * not parse is a `BadStamp` StoreError.
   */
  async getStamp(
    bucket: string,
    key: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<bigint> {
    const s = await this.stat(bucket, key, { signal });
    if (!s) return 0n;
    return await this.#stampOf(bucket, key, s, signal);
  }

  async #stampOf(bucket: string, key: string, s: ObjectStat, signal?: AbortSignal) {
    let raw: string | undefined = s.metadata[STAMP_METADATA_KEY];
    if (raw === undefined) {
      raw = await this.#call("stamp", bucket, key, signal, async (c) => {
        const tags = await c.getObjectTagging(bucket, key);
        const list = Array.isArray(tags) ? tags : [];
        return list.find((t) => t.Key === STAMP_TAG_KEY)?.Value;
      }, { retry: false }).catch(() => undefined);
    }
    if (raw === undefined) return BigInt(s.lastModified.getTime()) * 1_000_000n;
    if (!/^\d+$/.test(raw.trim())) {
      throw new StoreError(
        "stamp",
        bucket,
        key,
        "BadStamp",
        `stamp ${JSON.stringify(raw)} is not a number`,
        undefined,
        false,
      );
    }
    return BigInt(raw.trim());
  }

  /**
   * Whether the local file at `path` changed after the object was last uploaded (Gangplank's
   * "only upload if newer", which never worked there): true when the object is missing, or
   * when the file's mtime is later than both the object's stamp and its LastModified (a file
   * fetched from the store gets the object's LastModified as mtime, so it is not "newer").
   * A missing local file is an error (ENOENT StoreError).
   */
  async isLocalNewer(
    bucket: string,
    key: string,
    path: string,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    let localNs: bigint;
    try {
      localNs = (await fsp.stat(path, { bigint: true })).mtimeNs;
    } catch (e) {
      throw localFileError("isLocalNewer", bucket, key, e);
    }
    const s = await this.stat(bucket, key, { signal });
    if (!s) return true;
    const stamp = await this.#stampOf(bucket, key, s, signal);
    const lm = BigInt(s.lastModified.getTime()) * 1_000_000n;
    return localNs > (stamp > lm ? stamp : lm);
  }
}

/** `p`, or a rejection with the signal's reason as soon as it aborts. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      p.catch(() => {});
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The chunks of a response body. A web stream is read with a BYOB reader into one reused
 * 1 MiB buffer (3x faster than its default 64 KiB chunks, and less garbage); each chunk is
 * valid until the next one is requested.
 */
/**
 * CompleteMultipartUpload with `If-None-Match: *` (npm:minio's own sends no conditions). S3 can
 * answer 200 with an error document: that is an error too.
 */
async function completeIfAbsent(
  c: Minio.Client,
  bucket: string,
  key: string,
  uploadId: string,
  parts: { part: number; etag: string }[],
): Promise<void> {
  const xml = "<CompleteMultipartUpload>" +
    parts.map((p) => `<Part><PartNumber>${p.part}</PartNumber><ETag>${p.etag}</ETag></Part>`)
      .join("") +
    "</CompleteMultipartUpload>";
  const res = await c.makeRequestAsync(
    {
      method: "POST",
      bucketName: bucket,
      objectName: key,
      query: `uploadId=${encodeURIComponent(uploadId)}`,
      headers: { "If-None-Match": "*", "Content-Type": "application/xml" },
    },
    xml,
    [200],
  );
  const chunks: Uint8Array[] = [];
  for await (const chunk of res) chunks.push(chunk as Uint8Array);
  const body = Buffer.concat(chunks).toString("utf8");
  const code = /<Error>[\s\S]*?<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  if (code) {
    const msg = /<Message>([^<]*)<\/Message>/.exec(body)?.[1] ?? "";
    throw new StoreError("put", bucket, key, code, msg, 200);
  }
}

async function* chunksOf(
  body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  if (!(body instanceof ReadableStream)) {
    yield* body;
    return;
  }
  const reader = body.getReader({ mode: "byob" });
  let buf = new Uint8Array(1 << 20);
  try {
    for (;;) {
      const { value, done } = await reader.read(buf);
      if (done || !value) return;
      yield value;
      buf = new Uint8Array(value.buffer);
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * A failure of `fetch` or of reading its body: the signal's reason when aborted, else a
 * transient {@link StoreError} (fetch rejects only on network errors).
 */
function networkError(
  op: string,
  bucket: string,
  key: string,
  e: unknown,
  signal: AbortSignal | undefined,
): unknown {
  if (signal?.aborted) return signal.reason;
  if (e instanceof StoreError) return e;
  // Never log a presigned URL (it grants access until it expires).
  const msg = errMessage(e).replace(/\?X-Amz-[^\s)]*/g, "?<presigned>");
  return new StoreError(op, bucket, key, "NetworkError", msg, undefined, true);
}

/** npm:minio-style metadata (`Content-Type`, user keys) as request headers. */
function metaHeaders(meta: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (k.toLowerCase() === "content-type") h["content-type"] = v;
    else h[`x-amz-meta-${k.toLowerCase()}`] = v;
  }
  return h;
}

/** Whether `path` is a regular file with this sha256 (and size). */
async function hasContent(
  path: string,
  sha256: string,
  size: number | undefined,
  signal?: AbortSignal,
): Promise<boolean> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch {
    return false;
  }
  if (!st.isFile()) return false;
  if (size !== undefined && st.size !== size) return false;
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal })) {
    h.update(chunk as Uint8Array);
  }
  return h.digest("hex") === sha256;
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await fsp.open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch { /* not supported everywhere; the rename itself is atomic */ }
}
