/**
 * The store's transport: the endpoint, npm:minio clients bound to a call's signal, error
 * classification (S3 error codes, transient statuses) and retries, the HTTP client downloads
 * use. Everything else in this folder is
 * functions over a {@link Transport}.
 *
 * @module
 */
import * as http from "node:http";
import * as https from "node:https";
import type * as Minio from "minio";
import type { RelayConfig } from "../config.ts";
import type { ProgressFactory } from "../../progress/mod.ts";
import { isTransientError, type RetryOptions, withRetry } from "../retry.ts";
import { isTransientStatus, StoreError } from "../store_errors.ts";
import { FileHasher } from "../file_hasher.ts";
import { type ArtifactStoreOptions, DEFAULT_FILE_PART_SIZE, DEFAULT_PART_SIZE } from "./types.ts";

let minioModule: Promise<typeof import("minio")> | undefined;

/**
 * npm:minio, loaded on first use: it is most of a worker's start-up time, and a stage that
 * moves nothing never needs it. A pre-started worker calls this while it waits for its launch.
 */
export function loadS3Client(): Promise<typeof import("minio")> {
  return (minioModule ??= import("minio"));
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
export interface CallState {
  status?: number;
  transient?: { status: number; code: string; message: string; body: Promise<void> };
}

export const NOT_FOUND = new Set(["NoSuchKey", "NotFound", "NoSuchBucket"]);

/** A local file problem (stat, read) while working on `bucket/key`: never transient. */
export function localFileError(op: string, bucket: string, key: string, e: unknown): StoreError {
  const code = (e as { code?: string }).code ?? "ENOENT";
  return new StoreError({
    op,
    bucket,
    key,
    code,
    message: errMessage(e),
    transient: false,
    cause: e,
  });
}

/** Resolves `undefined` instead of rejecting when the object (or its bucket) does not exist. */
export async function unlessMissing<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof StoreError && NOT_FOUND.has(e.code)) return undefined;
    throw e;
  }
}

export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Connection, signing, retries and hashing shared by the store's operations. */
export class Transport {
  /** Payload bytes downloaded and uploaded, and transfers skipped as already present. */
  readonly stats = { bytesIn: 0, bytesOut: 0, skipped: 0 };
  /** Where the store is. */
  readonly endpoint: Endpoint;
  readonly #accessKey: string;
  readonly #secretKey: string;
  readonly #agent: http.Agent;
  readonly log: (m: string) => void;
  readonly progress?: ProgressFactory;
  readonly retry: Omit<RetryOptions, "signal">;
  readonly partSize: number;
  readonly filePartSize: number;
  fetchClient?: Deno.HttpClient;
  readonly buckets = new Set<string>();
  /** Hashes downloads as they land on disk (worker threads, started on first use). */
  readonly fileHasher = new FileHasher({ nice: 19 });

  constructor(cfg: RelayConfig, opts: ArtifactStoreOptions) {
    this.endpoint = resolveEndpoint(cfg);
    this.#accessKey = cfg.accesskey;
    this.#secretKey = cfg.secretkey;
    this.#agent = this.endpoint.useSSL
      // No keep-alive: Deno's node:http silently re-sends a request whose pooled connection
      // fails, which defeats aborts (and must never happen to a streamed PUT).
      ? new https.Agent({ keepAlive: false, maxSockets: 16, ca: opts.ca })
      : new http.Agent({ keepAlive: false, maxSockets: 16 });
    this.log = opts.log ?? (() => {});
    this.progress = opts.progress;
    this.retry = opts.retry ?? {};
    this.partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    this.filePartSize = opts.partSize ?? DEFAULT_FILE_PART_SIZE;
  }

  /** Closes pooled connections and hashing threads. Idempotent. */
  close(): Promise<void> {
    this.#agent.destroy();
    this.fetchClient?.close();
    this.fetchClient = undefined;
    this.fileHasher.close();
    return Promise.resolve();
  }

  /** A transport that binds `signal` to each request and notes retryable statuses. */
  transport(signal: AbortSignal | undefined, state: CallState): Minio.ClientOptions["transport"] {
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

  /** A client whose requests are bound to `signal` (npm:minio is loaded on the first). */
  async client(signal: AbortSignal | undefined, state: CallState): Promise<Minio.Client> {
    const { Client } = await loadS3Client();
    const e = this.endpoint;
    return new Client({
      endPoint: e.endPoint,
      port: e.port,
      useSSL: e.useSSL,
      region: e.region,
      pathStyle: e.pathStyle,
      accessKey: this.#accessKey,
      secretKey: this.#secretKey,
      partSize: this.partSize,
      transport: this.transport(signal, state),
      transportAgent: this.#agent,
      retryOptions: { disableRetry: true },
    });
  }

  async wrap(
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
      return new StoreError({
        op,
        bucket,
        key,
        code: t.code,
        message: t.message,
        status: t.status,
        transient: true,
        cause: err,
      });
    }
    const code = (err as { code?: unknown })?.code;
    if (typeof code === "string" && code !== "") {
      return new StoreError({
        op,
        bucket,
        key,
        code,
        message: errMessage(err),
        status: state.status,
        cause: err,
      });
    }
    const transient = isTransientError(err);
    const name = err instanceof Error ? err.name : "Error";
    return new StoreError({
      op,
      bucket,
      key,
      code: name,
      message: errMessage(err),
      status: state.status,
      transient,
      cause: err,
    });
  }

  /** Runs `fn` with a fresh signal-bound client, wrapping errors and retrying transient ones. */
  call<T>(
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
        const p = this.client(signal, state).then(fn);
        return await (race ? raceAbort(p, signal) : p);
      } catch (e) {
        throw await this.wrap(op, bucket, key, e, state, signal);
      }
    };
    if (!retry) return once();
    const where = `${bucket}${key !== undefined ? `/${key}` : ""}`;
    return withRetry(once, {
      ...this.retry,
      signal,
      onRetry: ({ attempt, attempts, delayMs, error }) => {
        const what = error instanceof StoreError
          ? error.message
          : `${op} ${where}: ${errMessage(error)}`;
        this.log(`${what}; retrying in ${delayMs} ms (attempt ${attempt}/${attempts})`);
        this.retry.onRetry?.({ attempt, attempts, delayMs, error });
      },
    });
  }
}

export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
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

export function networkError(
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
  return new StoreError({ op, bucket, key, code: "NetworkError", message: msg, transient: true });
}
