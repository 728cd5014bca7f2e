/**
 * Zip archives (`oc start-build --from-archive=job.zip`), extracted through the project's one
 * safe extractor: npm:yauzl reads the zip from its central directory (entry data streamed,
 * inflated bytes checked against the declared sizes, encrypted entries and unknown compression
 * methods refused), and each entry is handed on as a tar entry to {@link extractTarGz}. Names,
 * symlink targets, sizes, entry counts and the all-or-nothing commit are therefore checked
 * exactly as for tarballs: nothing outside the root, nothing at all when one entry is refused.
 *
 * Not re-exported from `mod.ts`: only the BuildConfig role reads zips, and yauzl (CommonJS)
 * would otherwise travel in every bundle that extracts tarballs.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import yauzlModule from "yauzl";
import { ArchiveError, ArchiveTooLargeError, UnsafeArchiveError } from "./errors.ts";
import { type ExtractOptions, type ExtractResult, extractTarGz } from "./extract.ts";

/** True when `head` (the first bytes of a file) is a zip archive (or an empty one). */
export function isZip(head: Uint8Array): boolean {
  return head[0] === 0x50 && head[1] === 0x4b &&
    ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}

/** Longest symlink target read from a zip entry. */
const MAX_LINK_TARGET = 4096;
const S_IFMT = 0o170000;
const TYPES: Record<number, tarStream.Header["type"]> = {
  0o100000: "file",
  0o040000: "directory",
  0o120000: "symlink",
  0o010000: "fifo",
  0o020000: "character-device",
  0o060000: "block-device",
};

/** The part of npm:yauzl's API used here (yauzl ships no typings of its own). */
interface Entry {
  fileName: Uint8Array;
  extraFields: { id: number; data: Uint8Array }[];
  generalPurposeBitFlag: number;
  versionMadeBy: number;
  externalFileAttributes: number;
  compressionMethod: number;
  uncompressedSize: number;
  getLastModDate(): Date;
  isEncrypted(): boolean;
  canDecodeFileData(): boolean;
}
interface ZipFile {
  readEntry(): void;
  openReadStream(e: Entry, cb: (err: Error | null, s?: Readable) => void): void;
  on(ev: string, fn: (...a: never[]) => void): ZipFile;
  off(ev: string, fn: (...a: never[]) => void): ZipFile;
  close(): void;
}
const yauzl = yauzlModule as unknown as {
  open(
    path: string,
    opts: Record<string, boolean>,
    cb: (err: Error | null, zf?: ZipFile) => void,
  ): void;
  getFileNameLowLevel(flag: number, raw: Uint8Array, extra: unknown[], strict: boolean): string;
};

function openZip(path: string): Promise<ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(path, {
      lazyEntries: true,
      autoClose: false,
      // Names are decoded below without yauzl's own checks: the tar extractor checks them.
      decodeStrings: false,
      validateEntrySizes: true,
    }, (err, zf) => err ? reject(err) : resolve(zf!))
  );
}

function nextEntry(zf: ZipFile): Promise<Entry | undefined> {
  return new Promise((resolve, reject) => {
    const done = () => {
      zf.off("entry", onEntry).off("end", onEnd).off("error", onError);
    };
    const onEntry = (e: Entry) => (done(), resolve(e));
    const onEnd = () => (done(), resolve(undefined));
    const onError = (e: Error) => (done(), reject(e));
    zf.on("entry", onEntry).on("end", onEnd).on("error", onError);
    zf.readEntry();
  });
}

function readStream(zf: ZipFile, e: Entry): Promise<Readable> {
  return new Promise((resolve, reject) =>
    zf.openReadStream(e, (err, s) => err ? reject(err) : resolve(s!))
  );
}

/** The entry's name, as unzip decodes it (UTF-8 flag, Info-ZIP unicode path, `\` as `/`). */
function entryName(e: Entry): string {
  return yauzl.getFileNameLowLevel(e.generalPurposeBitFlag, e.fileName, e.extraFields, false);
}

/** The tar header of a zip entry: its type and mode from the Unix attributes, when present. */
function headerOf(e: Entry, name: string): Partial<tarStream.Header> & { name: string } {
  const unix = e.versionMadeBy >> 8 === 3 ? (e.externalFileAttributes >>> 16) & 0xffff : 0;
  const dir = name.endsWith("/");
  let type: tarStream.Header["type"] = dir ? "directory" : "file";
  if (unix & S_IFMT) {
    type = TYPES[unix & S_IFMT];
    if (!type) {
      throw new UnsafeArchiveError(name, `unknown file type ${(unix & S_IFMT).toString(8)}`);
    }
  }
  const mode = unix & 0o7777 || (type === "directory" ? 0o755 : 0o644);
  return { name, type, mode, mtime: e.getLastModDate() };
}

/**
 * Writes the zip's entries as a tar stream into `pack`, ending it. Errors are the zip's
 * (corrupt, truncated, sizes that lie, encrypted, unknown compression).
 */
async function zipToTar(zf: ZipFile, pack: tarStream.Pack, label: string): Promise<void> {
  // A directory entry first: the extractor sniffs compression from the first bytes, which a
  // first file name could otherwise imitate.
  pack.entry({ name: "./", type: "directory", mode: 0o755 });
  for (let e = await nextEntry(zf); e; e = await nextEntry(zf)) {
    const name = entryName(e);
    if (e.isEncrypted()) {
      throw new ArchiveError(label, `entry ${JSON.stringify(name)} is encrypted`);
    }
    if (!e.canDecodeFileData()) {
      throw new ArchiveError(
        label,
        `entry ${JSON.stringify(name)}: compression method ${e.compressionMethod} is not supported`,
      );
    }
    const h = headerOf(e, name);
    if (h.type === "file") {
      const sink = pack.entry({ ...h, size: e.uncompressedSize });
      await pipeline(await readStream(zf, e), sink as unknown as NodeJS.WritableStream);
      continue;
    }
    if (h.type === "symlink") {
      if (e.uncompressedSize > MAX_LINK_TARGET) {
        throw new UnsafeArchiveError(name, `symlink target longer than ${MAX_LINK_TARGET} bytes`);
      }
      const chunks: Uint8Array[] = [];
      for await (const c of await readStream(zf, e)) chunks.push(c as Uint8Array);
      h.linkname = new TextDecoder().decode(Buffer.concat(chunks));
    }
    pack.entry(h);
  }
  pack.finalize();
}

/**
 * Extracts the zip file at `path` below `root`, with {@link extractTarGz}'s checks and options
 * (`maxBytes` counts the declared uncompressed sizes, checked before an entry is inflated).
 *
 * @throws {UnsafeArchiveError} for an entry that would escape `root` (see {@link extractTarGz}).
 * @throws {ArchiveTooLargeError} past `maxBytes` or `maxEntries`.
 * @throws {ArchiveError} for a corrupt, encrypted or otherwise unreadable zip.
 *
 * @example
 * ```ts
 * await extractZip("/srv/source/source.bin", "/srv/source", { maxBytes: 2 ** 31, signal });
 * ```
 */
export async function extractZip(
  path: string,
  root: string,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  opts.signal?.throwIfAborted();
  let zf: ZipFile;
  try {
    zf = await openZip(path);
  } catch (e) {
    throw new ArchiveError(path, `not a readable zip: ${(e as Error).message}`);
  }
  const pack = tarStream.pack();
  // Its errors are the producer's (kept in zipError) or the extractor's own.
  pack.on("error", () => {});
  let zipError: unknown;
  const producer = zipToTar(zf, pack, path).catch((e) => {
    zipError = e;
    pack.destroy(e);
  });
  try {
    const r = await extractTarGz(pack as unknown as Readable, root, opts);
    await producer;
    return r;
  } catch (e) {
    pack.destroy();
    await producer;
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (e instanceof UnsafeArchiveError || e instanceof ArchiveTooLargeError) throw e;
    if (zipError instanceof UnsafeArchiveError || zipError instanceof ArchiveError) throw zipError;
    if (zipError) throw new ArchiveError(path, `zip: ${(zipError as Error).message}`);
    throw e;
  } finally {
    zf.close();
  }
}
