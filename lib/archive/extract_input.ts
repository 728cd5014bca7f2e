/**
 * The input side of an extraction: any archive source as a Node.js stream, fed to the tar
 * parser through gunzip (or as a plain tar), refusing other compressions and streams that
 * decompress past the limit.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { ReadableStream as NodeWebReadableStream } from "node:stream/web";
import type { createGunzip } from "node:zlib";
import type tarStream from "tar-stream";
import { ArchiveError, ArchiveTooLargeError } from "./errors.ts";
import type { ArchiveSource } from "./extract.ts";

/** Magic numbers of compressions node:zlib cannot undo here. */
const UNSUPPORTED: [string, number[]][] = [
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["zip", [0x50, 0x4b, 0x03, 0x04]],
];

/**
 * Copies the input into the tar parser, honouring backpressure: through gunzip when it starts
 * with the gzip magic, as is when it is a plain tar.
 */
export async function feed(
  input: Readable,
  gunzip: ReturnType<typeof createGunzip>,
  extract: tarStream.Extract,
  label: string,
  maxStreamBytes: () => number,
): Promise<void> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  let head = new Uint8Array(0);
  let ended = false;
  while (head.length < 6) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, r.value]);
  }
  async function* all(): AsyncGenerator<Uint8Array> {
    if (head.length) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  for (const [name, magic] of UNSUPPORTED) {
    if (magic.every((b, i) => head[i] === b)) {
      throw new ArchiveError(label, `${name}-compressed archives are not supported (gzip or tar)`);
    }
  }
  let source: AsyncIterable<Uint8Array> = all();
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const raw = Readable.from(all());
    raw.on("error", (e) => gunzip.destroy(e));
    raw.pipe(gunzip);
    source = gunzip;
  }
  let total = 0;
  for await (const chunk of source) {
    if (extract.destroyed) return;
    total += chunk.length;
    // Past the content limit plus generous room for headers: a stream of padding after the
    // archive's end (zeros compress a million to one) is refused too, not decompressed.
    if (total > maxStreamBytes()) {
      throw new ArchiveTooLargeError(
        label,
        `it decompresses to more than ${total} bytes`,
        "maxBytes",
      );
    }
    if (!extract.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          extract.off("drain", done);
          extract.off("close", done);
          resolve();
        };
        extract.on("drain", done);
        extract.on("close", done);
      });
    }
  }
  extract.end(undefined);
}

/** Any {@link ArchiveSource} as a Node.js readable. */
export function toNodeReadable(source: ArchiveSource): Readable {
  if (typeof source === "string") return createReadStream(source, { highWaterMark: 1 << 20 });
  if (source instanceof ReadableStream) {
    return Readable.fromWeb(source as unknown as NodeWebReadableStream<Uint8Array>);
  }
  if (source instanceof Readable) return source;
  return Readable.from(source as AsyncIterable<Uint8Array>);
}
