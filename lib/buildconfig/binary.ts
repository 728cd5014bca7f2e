/**
 * Binary input (reference §0 item 16, §9): `oc start-build --from-file/--from-dir/--from-archive`
 * sends a payload on the build pod's stdin when the Build has `spec.source.binary`. It is
 * streamed to `<srv>/source/<asFile | source.bin>` (size-bounded, never held in memory); an
 * archive (`source.bin` — tar, tar.gz or zip, told apart by their first bytes as bsdtar did —
 * or an `asFile` named `*.tar`, `*.tar.gz`, `*.tgz`, `*.zip`) is extracted into
 * `<srv>/source/` with the project's safe extractor (never `bsdtar -C /`, §12.2.7) and removed.
 * The directory is 0755, not Gangplank's 0777 (§12.2.3).
 *
 * @module
 */

import { lstat, mkdir, open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { extractTarGz } from "../archive/mod.ts";
import { extractZip, isZip } from "../archive/zip.ts";
import { GangplankError, UsageError } from "../errors/mod.ts";
import type { BuildObject } from "./build.ts";

/** Default most bytes of a binary payload (and of what an archive payload expands to). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024 * 1024;

/** The payload's name when `spec.source.binary.asFile` is unset (an archive). */
export const ARCHIVE_PAYLOAD = "source.bin";

/** The binary payload is unusable: too large, empty, or a bad archive (exit code 2). */
export class PayloadError extends UsageError {
  constructor(readonly file: string, reason: string) {
    super(`binary input (stdin) ${file}: ${reason}`);
  }
}

/** What {@link receivePayload} left in the srv dir. */
export interface ReceivedPayload {
  /** `<srv>/source`: the payload's files (an archive extracted, or the single file). */
  dir: string;
  /** The single file of a `--from-file` payload (not an archive). */
  file?: string;
  /** Bytes read from stdin. */
  bytes: number;
}

/** True when a payload named `name` is an archive to extract. */
export function isArchivePayload(name: string): boolean {
  return name === ARCHIVE_PAYLOAD || /\.(tar|tar\.gz|tgz|zip)$/.test(name);
}

/**
 * Streams `input` into `<srvDir>/source/<asFile | source.bin>` (created exclusively, 0644),
 * at most `maxBytes`; extracts an archive payload there. Nothing is left behind on failure.
 * @throws {PayloadError} for an empty or too large payload or an unsafe/unsupported archive.
 */
export async function receivePayload(
  input: ReadableStream<Uint8Array>,
  srvDir: string,
  binary: NonNullable<BuildObject["binary"]>,
  opts: { maxBytes?: number; signal: AbortSignal },
): Promise<ReceivedPayload> {
  const max = opts.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const name = binary.asFile || ARCHIVE_PAYLOAD;
  const dir = join(srvDir, "source");
  try {
    const st = await lstat(dir);
    if (!st.isDirectory()) throw new PayloadError(name, `${dir} exists and is not a directory`);
    if ((await readdir(dir)).length) throw new PayloadError(name, `${dir} is not empty`);
  } catch (e) {
    if (e instanceof PayloadError) throw e;
  }
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, name);
  let bytes = 0;
  try {
    const fh = await open(path, "wx", 0o644);
    try {
      const reader = input.getReader();
      try {
        for (;;) {
          opts.signal.throwIfAborted();
          const { done, value } = await reader.read();
          if (done) break;
          bytes += value.length;
          if (bytes > max) throw new PayloadError(name, `larger than ${max} bytes`);
          await fh.write(value);
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } finally {
      await fh.close();
    }
    if (bytes === 0) throw new PayloadError(name, "empty (spec.source.binary is set)");
    if (!isArchivePayload(name)) return { dir, file: path, bytes };
    try {
      const x = { signal: opts.signal, maxBytes: max };
      if (isZip(await firstBytes(path))) await extractZip(path, dir, x);
      else await extractTarGz(path, dir, x);
    } catch (e) {
      if (opts.signal.aborted || !(e instanceof GangplankError)) throw e;
      throw new PayloadError(name, e.message);
    } finally {
      await rm(path, { force: true });
    }
    return { dir, bytes };
  } catch (e) {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

async function firstBytes(path: string): Promise<Uint8Array> {
  const fh = await open(path, "r");
  try {
    const b = new Uint8Array(4);
    await fh.read(b, 0, 4, 0);
    return b;
  } finally {
    await fh.close();
  }
}

/** The top-level `*.cosa.sh` files of a payload directory (regular files only), sorted. */
export async function cosaScripts(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(".cosa.sh")) out.push(e.name);
  }
  return out.sort();
}
