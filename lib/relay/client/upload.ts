/**
 * Uploads: files (streamed with a known size, multipart above the part size, each part
 * retried), streams, bytes, text and JSON, and conditional JSON writes (`If-None-Match` /
 * `If-Match`), stamped with the upload time.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import type { ReadableStream as NodeWebReadableStream } from "node:stream/web";
import type * as Minio from "minio";
import { StoreError } from "../store_errors.ts";
import { localFileError, raceAbort, type Transport } from "./transport.ts";
import { ensureBucket } from "./objects.ts";
import { nowNanos, STAMP_METADATA_KEY } from "./stamps.ts";
import type { PutFileOptions, PutOptions } from "./types.ts";

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
export async function putFile(
  t: Transport,
  bucket: string,
  key: string,
  path: string,
  opts: PutFileOptions = {},
): Promise<{ bytes: number }> {
  const { signal } = opts;
  let st: Awaited<ReturnType<typeof fsp.stat>>;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    throw localFileError("put", bucket, key, e);
  }
  if (!st.isFile()) {
    throw new StoreError({
      op: "put",
      bucket,
      key,
      code: "NotAFile",
      message: `${path} is not a regular file`,
      transient: false,
    });
  }
  const size = Number(st.size);
  await ensureBucket(t, bucket, { signal });
  const headers = metaHeaders(uploadMeta(opts));
  const progress = t.progress?.(`${bucket}/${key}`, size);
  // Progress counts file positions, so a retried range is not counted twice.
  let reported = 0;
  const seen = (pos: number) => {
    if (pos > reported) {
      progress?.update(pos - reported);
      reported = pos;
    }
  };
  const part = t.filePartSize;
  // Every request of this upload, retried; a range is not raced against `signal` (putRange takes
  // it itself).
  const put = <T>(fn: (c: Minio.Client) => Promise<T>, o?: { race?: boolean }) =>
    t.call("put", bucket, key, signal, fn, o);
  try {
    if (size <= part) {
      await put((c) =>
        putRange(t, c, bucket, key, path, 0, size, {
          headers: opts.ifNoneMatch ? { ...headers, "If-None-Match": "*" } : headers,
          signal,
          seen,
        }), { race: false });
    } else {
      const uploadId = await put((c) => c.initiateNewMultipartUpload(bucket, key, headers));
      try {
        const etags: { part: number; etag: string }[] = [];
        for (let n = 1, off = 0; off < size; n++, off += part) {
          const len = Math.min(part, size - off);
          const query = `partNumber=${n}&uploadId=${encodeURIComponent(uploadId)}`;
          const etag = await put(
            (c) => putRange(t, c, bucket, key, path, off, len, { query, signal, seen }),
            { race: false },
          );
          etags.push({ part: n, etag });
        }
        await put((c) =>
          opts.ifNoneMatch
            ? completeIfAbsent(c, bucket, key, uploadId, etags)
            : c.completeMultipartUpload(bucket, key, uploadId, etags).then(() => {})
        );
      } catch (e) {
        // Not bound to `signal`: an aborted upload is cleaned up too (bounded by the agent).
        await t.client(undefined, {}).then((c) => c.abortMultipartUpload(bucket, key, uploadId))
          .catch(() => {});
        throw e;
      }
    }
  } finally {
    progress?.done();
  }
  t.stats.bytesOut += size;
  return { bytes: size };
}

/**
 * PUTs bytes `[start, start + len)` of the file at `path` (an object, or a part when `query`
 * names one), signed by npm:minio with `UNSIGNED-PAYLOAD`; resolves the response ETag.
 */
export async function putRange(
  t: Transport,
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
        t.endpoint.region,
      ),
      o.signal,
    );
    res.resume();
    const etag = String(res.headers.etag ?? "").replace(/^"|"$/g, "");
    if (pos !== start + len) {
      throw new StoreError({
        op: "put",
        bucket,
        key,
        code: "FileChanged",
        message: `${path} changed while it was uploaded (read ${pos - start} of ${len} bytes)`,
        transient: false,
      });
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
export async function putStream(
  t: Transport,
  bucket: string,
  key: string,
  stream: Readable | ReadableStream<Uint8Array>,
  size: number,
  opts: PutOptions = {},
): Promise<{ bytes: number }> {
  const { signal } = opts;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new StoreError({
      op: "put",
      bucket,
      key,
      code: "InvalidSize",
      message: `size must be known, got ${size}`,
      transient: false,
    });
  }
  await ensureBucket(t, bucket, { signal });
  const src = stream instanceof Readable
    ? stream
    : Readable.fromWeb(stream as unknown as NodeWebReadableStream<Uint8Array>);
  let seen = 0;
  await t.call("put", bucket, key, signal, async (c) => {
    const progress = t.progress?.(`${bucket}/${key}`, size);
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
      await c.putObject(bucket, key, src.pipe(limiter), size, uploadMeta(opts));
    } catch (e) {
      if (size > t.partSize) await c.removeIncompleteUpload(bucket, key).catch(() => {});
      throw e;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      progress?.done();
    }
    if (seen !== size) throw new Error(`stream held ${seen} bytes, declared ${size}`);
  }, { retry: false });
  t.stats.bytesOut += size;
  return { bytes: size };
}

/** Uploads bytes (stamped unless `stamp: false`). */
export async function putBytes(
  t: Transport,
  bucket: string,
  key: string,
  value: Uint8Array,
  opts: PutOptions = {},
): Promise<{ bytes: number }> {
  const { signal } = opts;
  await ensureBucket(t, bucket, { signal });
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  await t.call("put", bucket, key, signal, async (c) => {
    await c.putObject(bucket, key, buf, buf.length, uploadMeta(opts));
  });
  t.stats.bytesOut += buf.length;
  return { bytes: buf.length };
}

/** Uploads a UTF-8 string. */
export function putText(
  t: Transport,
  bucket: string,
  key: string,
  value: string,
  opts: PutOptions = {},
): Promise<{ bytes: number }> {
  return putBytes(t, bucket, key, new TextEncoder().encode(value), {
    contentType: "text/plain; charset=utf-8",
    ...opts,
  });
}

/** Uploads a value as indented JSON. */
export function putJSON(
  t: Transport,
  bucket: string,
  key: string,
  value: unknown,
  opts: Omit<PutOptions, "contentType"> = {},
): Promise<{ bytes: number }> {
  return putBytes(t, bucket, key, new TextEncoder().encode(JSON.stringify(value, null, 2)), {
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
export async function putJSONIf(
  t: Transport,
  bucket: string,
  key: string,
  value: unknown,
  cond: { etag: string } | { absent: true },
  { signal }: { signal?: AbortSignal } = {},
): Promise<boolean> {
  await ensureBucket(t, bucket, { signal });
  const buf = Buffer.from(JSON.stringify(value, null, 2), "utf8");
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    [`x-amz-meta-${STAMP_METADATA_KEY}`]: nowNanos().toString(),
  };
  if ("absent" in cond) headers["If-None-Match"] = "*";
  else if (cond.etag) headers["If-Match"] = cond.etag;
  try {
    await t.call("put", bucket, key, signal, async (c) => {
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
  t.stats.bytesOut += buf.length;
  return true;
}

/** The metadata headers of an upload: its Content-Type and (unless `stamp: false`) its stamp. */
export function uploadMeta(opts: Omit<PutOptions, "signal">): Record<string, string> {
  const meta: Record<string, string> = {
    "Content-Type": opts.contentType ?? "application/octet-stream",
  };
  if (opts.stamp !== false) meta[STAMP_METADATA_KEY] = nowNanos().toString();
  return meta;
}

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
    throw new StoreError({ op: "put", bucket, key, code, message: msg, status: 200 });
  }
}

function metaHeaders(meta: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (k.toLowerCase() === "content-type") h["content-type"] = v;
    else h[`x-amz-meta-${k.toLowerCase()}`] = v;
  }
  return h;
}
