/**
 * Streaming tar.gz creation with npm:tar-stream and node:zlib (no `tar` binary).
 *
 * @module
 */
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { posix } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import tarStream from "tar-stream";
import { ArchiveError } from "./errors.ts";
import { UsageError } from "../errors/mod.ts";

/** Options for {@link packTarGz}. */
export interface PackOptions {
  /** Directory the `paths` are relative to. */
  root: string;
  /** Paths relative to `root` to store; directories are stored recursively. `.` is `root`. */
  paths: string[];
  /** Where the `.tar.gz` is written (atomically: a temp file next to it, then a rename). */
  dest: string;
  /**
   * Stored in front of every entry name: `{ root: "/srv", paths: ["cache"], entryPrefix:
   * "srv" }` stores `srv/cache/...`, like Gangplank's `tar -cf x /srv/cache`.
   */
  entryPrefix?: string;
  /** gzip level, 0-9. Default 1 (Gangplank used `gzip --fast`). */
  gzipLevel?: number;
  /** Told about files skipped because tar cannot usefully store them (sockets, devices). */
  log?: (message: string) => void;
  signal?: AbortSignal;
}

/** What {@link packTarGz} stored. */
export interface PackResult {
  /** Number of entries (files, directories, symlinks, hard links). */
  entries: number;
  /** Bytes of file content stored (before compression). */
  contentBytes: number;
  /** Size of the written `.tar.gz`. */
  archiveBytes: number;
}

type Sink = ReturnType<tarStream.Pack["entry"]>;
type EntryHeader = Partial<tarStream.Header> & { name: string };

/**
 * Packs `paths` (relative to `root`) into a gzip-compressed tar at `dest`, streaming: memory
 * use does not grow with file sizes. Regular files, directories, symlinks (stored as links,
 * their targets untouched) and hard links (stored once, then as links) keep their modes and
 * mtimes; entry names are relative (`entryPrefix` + path), directories end in `/`. Sockets,
 * fifos and device nodes are skipped (and logged). The archive is readable by GNU tar.
 *
 * @example
 * ```ts
 * // Gangplank's cache.tar.gz of /srv/cache: entries srv/cache/...
 * await packTarGz({ root: "/srv", paths: ["cache"], entryPrefix: "srv", dest, signal });
 * ```
 */
export async function packTarGz(opts: PackOptions): Promise<PackResult> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const root = posix.resolve(opts.root);
  const dest = posix.resolve(opts.dest);
  const prefix = normalizePrefix(opts.entryPrefix);
  const rels = opts.paths.map((p) => normalizeRel(p));
  const tmp = posix.join(
    posix.dirname(dest),
    `.${posix.basename(dest)}.tmp-${crypto.randomUUID().slice(0, 8)}`,
  );
  const skipPaths = new Set([dest, tmp]);

  const pack = tarStream.pack();
  const out = createWriteStream(tmp, { flags: "wx", mode: 0o644 });
  const written = pipeline(pack, createGzip({ level: opts.gzipLevel ?? 1 }), out);
  const onAbort = () => pack.destroy(signal?.reason ?? new Error("aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  // Surface a write failure (disk full) while entries are still being added.
  let writeError: unknown;
  written.catch((e) => {
    writeError = e;
  });

  const result = { entries: 0, contentBytes: 0, archiveBytes: 0 };
  const inodes = new Map<string, string>();

  const addEntry = (header: EntryHeader, content?: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let sink: Sink | undefined;
      try {
        sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
        sink.on("error", () => {}); // reported through the entry callback
      } catch (e) {
        reject(e);
        return;
      }
      if (header.type !== "file") return;
      if (!content || header.size === 0) {
        sink.end(undefined);
        return;
      }
      copyInto(content, header.size ?? 0, sink, signal).catch((e) => {
        sink!.destroy(e as Error);
        reject(e);
      });
    });

  const visit = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    if (writeError) throw writeError;
    const abs = rel === "." ? root : posix.join(root, rel);
    if (skipPaths.has(abs)) return;
    const st = await Deno.lstat(abs);
    const name = joinName(prefix, rel);
    const base: EntryHeader = {
      name,
      mode: (st.mode ?? 0o644) & 0o7777,
      mtime: st.mtime ?? new Date(),
      uid: st.uid ?? 0,
      gid: st.gid ?? 0,
    };
    if (st.isDirectory) {
      if (name !== "") {
        await addEntry({ ...base, name: `${name}/`, type: "directory" });
        result.entries++;
      }
      const children: string[] = [];
      for await (const e of Deno.readDir(abs)) children.push(e.name);
      children.sort();
      for (const c of children) await visit(rel === "." ? c : `${rel}/${c}`);
      return;
    }
    if (name === "") throw new UsageError(`packTarGz: ${abs} is not a directory`);
    if (st.isSymlink) {
      await addEntry({ ...base, type: "symlink", linkname: await Deno.readLink(abs) });
      result.entries++;
      return;
    }
    if (!st.isFile) {
      opts.log?.(`packTarGz: skipping ${abs}: not a regular file, directory or symlink`);
      return;
    }
    if ((st.nlink ?? 1) > 1 && st.ino !== null) {
      const id = `${st.dev}:${st.ino}`;
      const first = inodes.get(id);
      if (first !== undefined) {
        await addEntry({ ...base, type: "link", linkname: first, size: 0 });
        result.entries++;
        return;
      }
      inodes.set(id, name);
    }
    await addEntry({ ...base, type: "file", size: st.size }, abs);
    result.entries++;
    result.contentBytes += st.size;
  };

  try {
    try {
      for (const rel of rels) await visit(rel);
    } catch (e) {
      pack.destroy(e as Error);
      throw e;
    }
    pack.finalize();
    await written;
    result.archiveBytes = (await Deno.stat(tmp)).size;
    await Deno.rename(tmp, dest);
    return result;
  } catch (e) {
    await written.catch(() => {});
    await Deno.remove(tmp).catch(() => {});
    if (signal?.aborted) throw signal.reason;
    if (e instanceof UsageError || e instanceof ArchiveError) throw e;
    throw new ArchiveError(dest, `packing failed: ${(e as Error)?.message ?? e}`, { cause: e });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Streams exactly `size` bytes of `path` into a tar entry, honouring backpressure. */
async function copyInto(path: string, size: number, sink: Sink, signal?: AbortSignal) {
  const rs = createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1 << 20 });
  try {
    for await (const chunk of rs) {
      signal?.throwIfAborted();
      if (!sink.write(chunk as Uint8Array)) {
        await Promise.race([once(sink, "drain"), once(sink, "close")]);
        if (sink.destroyed) throw new Error("tar entry closed");
      }
    }
    sink.end(undefined);
  } finally {
    rs.destroy();
  }
}

function normalizeRel(p: string): string {
  if (p.includes("\0")) throw new UsageError(`packTarGz: path contains NUL: ${JSON.stringify(p)}`);
  if (posix.isAbsolute(p)) throw new UsageError(`packTarGz: path must be relative: ${p}`);
  const n = posix.normalize(p).replace(/\/+$/, "");
  if (n === ".." || n.startsWith("../")) {
    throw new UsageError(`packTarGz: path escapes the root: ${p}`);
  }
  return n === "" ? "." : n;
}

function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return "";
  const n = posix.normalize(prefix).replace(/^\/+/, "").replace(/\/+$/, "");
  if (n === "." || n === "") return "";
  if (n.split("/").includes("..")) {
    throw new UsageError(`packTarGz: entryPrefix must not contain '..': ${prefix}`);
  }
  return n;
}

function joinName(prefix: string, rel: string): string {
  if (rel === ".") return prefix;
  return prefix ? `${prefix}/${rel}` : rel;
}
