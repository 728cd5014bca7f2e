/**
 * Downloads: artifacts fetched atomically to a file (temp file, fsync, rename), verified
 * against meta.json's sha256 while they stream to disk (one pass), skipped when
 * the file already holds that content; an object's sha256; bytes, text and JSON.
 *
 * @module
 */
import type * as http from "node:http";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import { posix } from "node:path";
import type * as Minio from "minio";
import type { ProgressFactory } from "../../progress/mod.ts";
import { IntegrityError, StoreError } from "../store_errors.ts";
import { errMessage, networkError, raceAbort, type Transport, unlessMissing } from "./transport.ts";
import { type ExpectedContent, PRESIGN_EXPIRY_S } from "./types.ts";
import type { FileHashJob } from "../file_hasher.ts";
import { DIGEST_HEADER, DIGEST_REQUEST } from "../server_digest.ts";

/**
 * Downloads an object to `dest` atomically: into a temp file next to it (parents created
 * 0755), fsync'ed, checked against `expect` (an {@link IntegrityError} naming the artifact on
 * mismatch, nothing left behind), its mtime set to the object's LastModified, then renamed
 * over `dest`. When `expect.sha256` is given and `dest` already holds that content (and
 * size), nothing is transferred: `{ bytes: 0, skipped: true }`.
 */
export async function fetchFile(
  t: Transport,
  bucket: string,
  key: string,
  dest: string,
  opts: { signal?: AbortSignal; expect?: ExpectedContent } = {},
): Promise<{ bytes: number; skipped: boolean }> {
  const { signal, expect } = opts;
  const name = expect?.name ?? key;
  const want = expect?.sha256?.toLowerCase();
  if (want !== undefined && await hasContent(dest, want, expect?.size, signal)) {
    t.stats.skipped++;
    t.log(`fetch ${bucket}/${key}: ${dest} already holds sha256 ${want}; skipped`);
    return { bytes: 0, skipped: true };
  }
  const dir = posix.dirname(posix.resolve(dest));
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  const bytes = await t.call("fetch", bucket, key, signal, async (c) => {
    const tmp = posix.join(
      dir,
      `.${posix.basename(dest)}.gp-tmp-${crypto.randomUUID().slice(0, 8)}`,
    );
    let progress: ReturnType<ProgressFactory> | undefined;
    let hash: FileHashJob | undefined;
    if (want !== undefined) t.fileHasher.warm(); // starts beside the request
    try {
      const res = await getObject(t, c, bucket, key, signal);
      if (want !== undefined && res.sha256 !== undefined && res.sha256 !== want) {
        // The relay knows this object's digest already: a wrong artifact fails before any
        // of it is transferred.
        await cancelBody(res.body);
        throw new IntegrityError(name, bucket, key, "sha256", want, res.sha256);
      }
      const total = res.total;
      const lastModified = res.lastModified;
      progress = t.progress?.(`${bucket}/${key}`, Number.isFinite(total) ? total : undefined);
      let n = 0;
      let writeError: unknown;
      const out = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      // Straight to the temp file. When verifying, a worker thread hashes the file as it
      // grows (and while it is fsynced): the sha256 costs no second pass after the download,
      // and receiving and writing never wait for it.
      hash = want === undefined
        ? undefined
        : await t.fileHasher.follow(tmp, Number.isFinite(total) ? total : undefined);
      try {
        for await (const chunk of chunksOf(res.body)) {
          try {
            // Synchronous: a page-cache write is short, and an await per chunk halves speed.
            let off = 0;
            while (off < chunk.length) off += out.writeSync(chunk.subarray(off));
          } catch (e) {
            writeError = e;
            throw e;
          }
          hash?.grew(chunk);
          n += chunk.length;
          progress?.update(chunk.length);
        }
      } catch (e) {
        throw e === writeError ? e : networkError("fetch", bucket, key, e, signal);
      } finally {
        out.close();
      }
      if (Number.isFinite(total) && n !== total) {
        throw new StoreError({
          op: "fetch",
          bucket,
          key,
          code: "IncompleteBody",
          message: `received ${n} of ${total} bytes`,
          transient: true,
        });
      }
      if (expect?.size !== undefined && n !== expect.size) {
        throw new IntegrityError(name, bucket, key, "size", expect.size, n);
      }
      const hashed = hash?.end();
      hashed?.catch(() => {}); // awaited below, after the fsync it runs beside
      const fh = await fsp.open(tmp, "r+");
      try {
        await fh.chmod(0o644);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (want !== undefined) {
        const got = await hashed!;
        if (got.size !== n) {
          throw new IntegrityError(name, bucket, key, "size", n, got.size);
        }
        if (got.sha256 !== want) {
          throw new IntegrityError(name, bucket, key, "sha256", want, got.sha256);
        }
      }
      if (lastModified && !Number.isNaN(lastModified.getTime())) {
        await fsp.utimes(tmp, lastModified, lastModified);
      }
      await fsp.rename(tmp, dest);
      await syncDir(dir);
      return n;
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      throw e;
    } finally {
      hash?.[Symbol.dispose]();
      progress?.done();
    }
  }, { race: false });
  t.stats.bytesIn += bytes;
  return { bytes, skipped: false };
}

/**
 * Starts a GET of an object. Over plain HTTP (the relay) with Deno's `fetch` at a URL
 * npm:minio presigned: node:http responses in Deno are read at about half the speed, with
 * twice the memory. Over TLS with npm:minio's own `getObject` (node:https): it honours a
 * private CA the way the rest of the store does (rustls refuses some certificates node's TLS
 * accepts, such as a self-signed CA certificate used as the server's). Non-2xx statuses
 * become a {@link StoreError} with the S3 error code; network failures are transient.
 */
export async function getObject(
  t: Transport,
  c: Minio.Client,
  bucket: string,
  key: string,
  signal: AbortSignal | undefined,
): Promise<
  {
    total: number;
    lastModified?: Date;
    /** The sha256 (hex) the relay recorded for the object, when it has one. */
    sha256?: string;
    body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  }
> {
  const recorded = (v: unknown) =>
    typeof v === "string" && /^[0-9a-f]{64}$/.test(v) ? v : undefined;
  const date = (v: string | null | undefined) => (v ? new Date(v) : undefined);
  if (t.endpoint.useSSL) {
    const res = await raceAbort(c.getObject(bucket, key), signal) as http.IncomingMessage;
    const onAbort = () => res.destroy(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    res.on("close", () => signal?.removeEventListener("abort", onAbort));
    const cl = res.headers?.["content-length"];
    return {
      total: cl === undefined ? NaN : Number(cl),
      lastModified: date(res.headers?.["last-modified"]),
      sha256: recorded(res.headers?.[DIGEST_HEADER]),
      body: res,
    };
  }
  const url = await c.presignedUrl("GET", bucket, key, PRESIGN_EXPIRY_S);
  t.fetchClient ??= Deno.createHttpClient({});
  let res: Response;
  try {
    res = await fetch(url, { signal, client: t.fetchClient });
  } catch (e) {
    throw networkError("fetch", bucket, key, e, signal);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => "");
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `HTTP${res.status}`;
    const msg = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? res.statusText;
    throw new StoreError({ op: "fetch", bucket, key, code, message: msg, status: res.status });
  }
  const cl = res.headers.get("content-length");
  return {
    total: cl === null ? NaN : Number(cl),
    lastModified: date(res.headers.get("last-modified")),
    sha256: recorded(res.headers.get(DIGEST_HEADER)),
    body: res.body ?? new Blob([]).stream(),
  };
}

/**
 * The sha256 (hex) and size of an object's content, or `undefined` when it (or its bucket)
 * does not exist. The relay hashes the object where it lies when asked (a HEAD with
 * `x-gangplank-checksum: sha256`, answered in `x-gangplank-sha256`, and remembered): nothing
 * is transferred. Another S3 server ignores the ask, and the object is then streamed and
 * hashed here (never buffered whole).
 */
export async function sha256(
  t: Transport,
  bucket: string,
  key: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<{ sha256: string; size: number } | undefined> {
  const r = await unlessMissing(t.call("sha256", bucket, key, signal, async (c) => {
    const head = await c.makeRequestAsync(
      {
        method: "HEAD",
        bucketName: bucket,
        objectName: key,
        headers: { [DIGEST_REQUEST]: "sha256" },
      },
      "",
      [200],
    );
    head.resume();
    const recorded = String(head.headers[DIGEST_HEADER] ?? "");
    const length = Number(head.headers["content-length"]);
    if (/^[0-9a-f]{64}$/.test(recorded) && Number.isSafeInteger(length)) {
      return { sha256: recorded, size: length, transferred: false };
    }
    const res = await getObject(t, c, bucket, key, signal);
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
      throw new StoreError({
        op: "sha256",
        bucket,
        key,
        code: "IncompleteBody",
        message: `received ${size} of ${res.total} bytes`,
        transient: true,
      });
    }
    return { sha256: hash.digest("hex"), size, transferred: true };
  }, { race: false }));
  if (r === undefined) return undefined;
  if (r.transferred) t.stats.bytesIn += r.size;
  return { sha256: r.sha256, size: r.size };
}

/** An object's bytes, or `undefined` when it (or its bucket) does not exist. */
export async function getBytes(
  t: Transport,
  bucket: string,
  key: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<Uint8Array | undefined> {
  const buf = await unlessMissing(t.call("get", bucket, key, signal, async (c) => {
    const res = await c.getObject(bucket, key);
    const chunks: Uint8Array[] = [];
    for await (const chunk of res) chunks.push(chunk as Uint8Array);
    return Buffer.concat(chunks);
  }));
  if (buf === undefined) return undefined;
  t.stats.bytesIn += buf.length;
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** An object as UTF-8 text, or `undefined` when missing. */
export async function getText(
  t: Transport,
  bucket: string,
  key: string,
  opts: { signal?: AbortSignal } = {},
): Promise<string | undefined> {
  const b = await getBytes(t, bucket, key, opts);
  return b === undefined ? undefined : new TextDecoder().decode(b);
}

/** An object parsed as JSON, or `undefined` when missing (`InvalidJSON` StoreError if bad). */
export async function getJSON<T = unknown>(
  t: Transport,
  bucket: string,
  key: string,
  opts: { signal?: AbortSignal } = {},
): Promise<T | undefined> {
  const text = await getText(t, bucket, key, opts);
  if (text === undefined) return undefined;
  return parseJSON(text, bucket, key) as T;
}

/** `text` parsed as JSON; an `InvalidJSON` {@link StoreError} naming the object if it is not. */
function parseJSON(text: string, bucket: string, key: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new StoreError({
      op: "get",
      bucket,
      key,
      code: "InvalidJSON",
      message: errMessage(e),
      transient: false,
      cause: e,
    });
  }
}

/**
 * An object parsed as JSON with its ETag (for {@link ArtifactStore.putJSONIf}), or
 * `undefined` when it (or its bucket) does not exist.
 */
export async function getJSONVersioned(
  t: Transport,
  bucket: string,
  key: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<{ value: unknown; etag: string } | undefined> {
  const got = await unlessMissing(t.call("get", bucket, key, signal, async (c) => {
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
  t.stats.bytesIn += got.body.length;
  return { value: parseJSON(got.body.toString("utf8"), bucket, key), etag: got.etag };
}

/** Stops a response body that will not be read. */
async function cancelBody(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>) {
  if (body instanceof ReadableStream) await body.cancel().catch(() => {});
  else (body as { destroy?: () => void }).destroy?.();
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
