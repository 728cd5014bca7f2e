/**
 * Safe streaming tar.gz extraction with npm:tar-stream and node:zlib.
 *
 * Everything is first written into a staging directory inside `root`, validating each entry
 * as it arrives; only when the whole archive has been read and checked are the staged entries
 * moved into place. A rejected archive therefore leaves nothing behind, inside or outside the
 * root.
 *
 * @module
 */
import { createWriteStream } from "node:fs";
import { statfs } from "node:fs/promises";
import { posix } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tarStream from "tar-stream";
import { ArchiveError, ArchiveTooLargeError, UnsafeArchiveError } from "./errors.ts";
import { commit, type DirMeta, type Kind, type Node } from "./extract_commit.ts";
import { feed, toNodeReadable } from "./extract_input.ts";
export { move } from "./extract_commit.ts";

/** Where an archive comes from: a file path, a web stream, or a Node.js readable. */
export type ArchiveSource = string | ReadableStream<Uint8Array> | NodeJS.ReadableStream;

/** Options for {@link extractTarGz}. */
export interface ExtractOptions {
  signal?: AbortSignal;
  /**
   * Leading directory removed from every entry name (and hard-link target): `"srv"` extracts
   * Gangplank's `srv/cache/...` cache tarballs at root `/srv` as `/srv/cache/...`. Entries not
   * below it are refused.
   */
  stripPrefix?: string;
  /**
   * Most bytes of file content the archive may hold. Default: {@link DEFAULT_FREE_SPACE_SHARE}
   * of the free space of `root`'s filesystem when the extraction starts. A larger archive (a
   * small gzip expanding to gigabytes) is refused with {@link ArchiveTooLargeError}, leaving
   * nothing behind.
   */
  maxBytes?: number;
  /** Most entries the archive may hold (default {@link DEFAULT_MAX_ENTRIES}). */
  maxEntries?: number;
  /** Free bytes of the filesystem holding `path` (default: `statfs`). A seam for tests. */
  freeBytes?: (path: string) => Promise<number>;
}

/** Share of the target's free space an archive may fill unless `maxBytes` says otherwise. */
export const DEFAULT_FREE_SPACE_SHARE = 0.9;
/** Default most entries in one archive. */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

/** Free bytes (for an unprivileged user) of the filesystem holding `path`. */
export async function statfsFreeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return Number(s.bavail) * Number(s.bsize);
}

/** What {@link extractTarGz} wrote. */
export interface ExtractResult {
  /** Entries extracted (files, directories, symlinks, hard links). */
  entries: number;
  /** Regular files (including hard links). */
  files: number;
  /** Bytes of file content written. */
  bytes: number;
}

const MAX_LINK_DEPTH = 40;

/**
 * Extracts a tar below `root` (created 0755 if missing), streaming; gzip-compressed (the
 * usual case) or plain, told apart by the gzip magic (xz, bzip2, zstd and zip are refused with
 * an {@link ArchiveError}).
 *
 * Refused with {@link UnsafeArchiveError} (and nothing written): absolute names, names with a
 * `..` component or NUL, names that pass through a symlink (one in the archive or one already
 * in `root`), symlinks whose target resolves outside `root` (following symlinks already
 * extracted or present), hard links to anything but a regular file stored earlier in the same
 * archive, device nodes and fifos, a non-directory replacing a directory or the reverse, and
 * entries outside `stripPrefix`. Modes are kept without setuid/setgid; ownership is never
 * changed; mtimes are kept. Existing files are replaced, existing directories merged.
 *
 * @example
 * ```ts
 * // A cache tarball holding srv/cache/... restored under /srv:
 * await extractTarGz("/tmp/cache.tar.gz", "/srv", { stripPrefix: "srv", signal });
 * ```
 */
export async function extractTarGz(
  source: ArchiveSource,
  root: string,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const label = typeof source === "string" ? source : "<stream>";
  const strip = opts.stripPrefix
    ? opts.stripPrefix.split("/").filter((p) => p !== "" && p !== ".")
    : [];
  await Deno.mkdir(root, { recursive: true, mode: 0o755 });
  const realRoot = await Deno.realPath(root);
  const maxBytes = opts.maxBytes ??
    Math.floor((await (opts.freeBytes ?? statfsFreeBytes)(realRoot)) * DEFAULT_FREE_SPACE_SHARE);
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const staging = await Deno.makeTempDir({ dir: realRoot, prefix: ".gp-extract-" });
  const stagingName = posix.basename(staging);

  const nodes = new Map<string, Node>();
  const dirMeta = new Map<string, DirMeta>();
  const result: ExtractResult = { entries: 0, files: 0, bytes: 0 };

  const input = toNodeReadable(source);
  const gunzip = createGunzip();
  const extract = tarStream.extract();
  let inputError: unknown;
  const noop = () => {};
  input.on("error", noop);
  gunzip.on("error", noop);
  extract.on("error", noop);
  const stop = (err?: Error) => {
    input.destroy();
    gunzip.destroy();
    extract.destroy(err);
  };
  const onAbort = () => stop(signal?.reason ?? new Error("aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  // Headers and padding: 4 KiB per entry (pax records, header, padding) plus 1 MiB.
  const maxStream = () => maxBytes + 4096 * (result.entries + 1) + 2 ** 20;
  const feeder = feed(input, gunzip, extract, label, maxStream).catch((e) => {
    inputError = e;
    extract.destroy(e);
  });

  // --- checks --------------------------------------------------------------------------

  const entryPath = (name: string, entry: string): string | null => {
    if (name.includes("\0")) throw new UnsafeArchiveError(entry, "NUL in name");
    if (name.startsWith("/")) throw new UnsafeArchiveError(entry, "absolute path");
    const parts = name.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) throw new UnsafeArchiveError(entry, "'..' in path");
    for (let i = 0; i < strip.length; i++) {
      if (i >= parts.length) return null; // a parent of stripPrefix itself: nothing to do
      if (parts[i] !== strip[i]) {
        throw new UnsafeArchiveError(entry, `outside stripPrefix ${opts.stripPrefix}`);
      }
    }
    const rest = parts.slice(strip.length);
    if (rest.length === 0) return null; // the root itself ("./")
    if (rest.length === 1 && rest[0] === stagingName) {
      throw new UnsafeArchiveError(entry, "collides with the staging directory");
    }
    return rest.join("/");
  };

  /** Parents must be directories of this archive or not yet seen (created implicitly). */
  const checkParents = (rel: string, entry: string) => {
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      const n = nodes.get(p);
      if (n?.kind === "symlink") {
        throw new UnsafeArchiveError(entry, `passes through symlink ${p}`);
      }
      if (n?.kind === "file") throw new UnsafeArchiveError(entry, `parent ${p} is a file`);
    }
  };

  const checkReplace = (rel: string, kind: Kind, entry: string) => {
    const old = nodes.get(rel);
    if (!old) return;
    if (old.kind === "dir" && kind !== "dir") {
      throw new UnsafeArchiveError(entry, "replaces a directory with a non-directory");
    }
    if (old.kind !== "dir" && kind === "dir") {
      throw new UnsafeArchiveError(entry, `replaces a ${old.kind} with a directory`);
    }
  };

  /** The symlink target at absolute path `abs`, or null (archive entries shadow the disk). */
  const linkAt = async (abs: string): Promise<string | null> => {
    if (abs === realRoot || abs.startsWith(realRoot + "/") || realRoot === "/") {
      const rel = abs === realRoot ? "" : realRoot === "/" ? abs.slice(1) : abs.slice(
        realRoot.length + 1,
      );
      const n = rel ? nodes.get(rel) : undefined;
      if (n) return n.kind === "symlink" ? n.target! : null;
    }
    try {
      const st = await Deno.lstat(abs);
      return st.isSymlink ? await Deno.readLink(abs) : null;
    } catch {
      return null;
    }
  };

  /** Resolves `abs` (absolute, may hold `..` and symlinks) the way the kernel would. */
  const resolve = async (abs: string, budget: { n: number }, entry: string): Promise<string> => {
    const parts = abs.split("/").filter((p) => p !== "" && p !== ".");
    let cur: string[] = [];
    for (const p of parts) {
      if (p === "..") {
        cur.pop();
        continue;
      }
      cur.push(p);
      const here = "/" + cur.join("/");
      const link = await linkAt(here);
      if (link === null) continue;
      if (--budget.n < 0) throw new UnsafeArchiveError(entry, "too many levels of symlinks");
      const base = "/" + cur.slice(0, -1).join("/");
      const next = link.startsWith("/") ? link : `${base}/${link}`;
      cur = (await resolve(next, budget, entry)).split("/").filter((x) => x !== "");
    }
    return "/" + cur.join("/");
  };

  const inside = (abs: string) =>
    realRoot === "/" || abs === realRoot || abs.startsWith(realRoot + "/");

  // --- staging writes --------------------------------------------------------------------

  const stagePath = (rel: string) => posix.join(staging, rel);

  const ensureParents = async (rel: string) => {
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (!nodes.has(p)) {
        await Deno.mkdir(stagePath(p), { mode: 0o700 });
        nodes.set(p, { kind: "dir" });
      }
    }
  };

  const clearStaged = async (rel: string) => {
    const old = nodes.get(rel);
    if (old && old.kind !== "dir") await Deno.remove(stagePath(rel));
  };

  const drain = async (entry: AsyncIterable<unknown>) => {
    for await (const _ of entry) { /* discard */ }
  };

  try {
    for await (const entry of extract) {
      signal?.throwIfAborted();
      const h = entry.header;
      const name = h.name;
      // Sizes are checked from the header, before anything of the entry is written.
      if (result.entries >= maxEntries) {
        throw new ArchiveTooLargeError(label, `more than ${maxEntries} entries`, "maxEntries");
      }
      if (h.type !== "link" && result.bytes + (h.size ?? 0) > maxBytes) {
        throw new ArchiveTooLargeError(
          label,
          `its content exceeds ${maxBytes} bytes${
            opts.maxBytes === undefined
              ? ` (${DEFAULT_FREE_SPACE_SHARE * 100}% of the free space of ${root})`
              : ""
          } at entry ${JSON.stringify(name)}`,
          "maxBytes",
        );
      }
      const rel = entryPath(name, name);
      if (rel === null) {
        if (h.type !== "directory") {
          throw new UnsafeArchiveError(name, "non-directory at the extraction root");
        }
        await drain(entry);
        continue;
      }
      checkParents(rel, name);
      switch (h.type) {
        case "file":
        case "contiguous-file": {
          checkReplace(rel, "file", name);
          await ensureParents(rel);
          await clearStaged(rel);
          const p = stagePath(rel);
          await pipeline(entry, createWriteStream(p, { flags: "wx", mode: 0o600 }));
          await Deno.chmod(p, h.mode & 0o1777);
          await Deno.utime(p, h.mtime, h.mtime);
          nodes.set(rel, { kind: "file" });
          result.files++;
          result.bytes += h.size ?? 0;
          break;
        }
        case "directory": {
          checkReplace(rel, "dir", name);
          await ensureParents(rel);
          if (!nodes.has(rel)) {
            await Deno.mkdir(stagePath(rel), { mode: 0o700 });
            nodes.set(rel, { kind: "dir" });
          }
          dirMeta.set(rel, { mode: h.mode & 0o1777, mtime: h.mtime });
          await drain(entry);
          break;
        }
        case "symlink": {
          const target = h.linkname ?? "";
          if (target === "") throw new UnsafeArchiveError(name, "empty symlink target");
          if (target.includes("\0")) throw new UnsafeArchiveError(name, "NUL in symlink target");
          checkReplace(rel, "symlink", name);
          const from = posix.dirname(posix.join(realRoot, rel));
          const abs = target.startsWith("/") ? target : `${from}/${target}`;
          // The new link itself is not in `nodes` yet: a link to itself resolves lexically.
          const resolved = await resolve(abs, { n: MAX_LINK_DEPTH }, name);
          if (!inside(resolved)) {
            throw new UnsafeArchiveError(name, `symlink target ${target} is outside the root`);
          }
          await ensureParents(rel);
          await clearStaged(rel);
          await Deno.symlink(target, stagePath(rel));
          nodes.set(rel, { kind: "symlink", target });
          await drain(entry);
          break;
        }
        case "link": {
          const linkname = h.linkname ?? "";
          const targetRel = entryPath(linkname, name);
          if (targetRel === null) throw new UnsafeArchiveError(name, "hard link to the root");
          const t = nodes.get(targetRel);
          if (!t) {
            throw new UnsafeArchiveError(
              name,
              `hard link target ${linkname} is not an earlier file of this archive`,
            );
          }
          if (t.kind !== "file") {
            throw new UnsafeArchiveError(name, `hard link target ${linkname} is a ${t.kind}`);
          }
          checkReplace(rel, "file", name);
          if (targetRel === rel) {
            await drain(entry);
            break;
          }
          await ensureParents(rel);
          await clearStaged(rel);
          await Deno.link(stagePath(targetRel), stagePath(rel));
          nodes.set(rel, { kind: "file" });
          result.files++;
          await drain(entry);
          break;
        }
        case "character-device":
        case "block-device":
          throw new UnsafeArchiveError(name, "device nodes are not extracted");
        case "fifo":
          throw new UnsafeArchiveError(name, "fifos are not extracted");
        default:
          throw new UnsafeArchiveError(name, `unsupported entry type ${h.type}`);
      }
      result.entries++;
    }
    await feeder;
    if (inputError) throw inputError;
    signal?.throwIfAborted();
    // A later entry may have changed what an earlier symlink resolves through: check all
    // symlinks again against the final tree before anything is moved into the root.
    for (const [rel, n] of nodes) {
      if (n.kind !== "symlink") continue;
      const from = posix.dirname(posix.join(realRoot, rel));
      const abs = n.target!.startsWith("/") ? n.target! : `${from}/${n.target}`;
      if (!inside(await resolve(abs, { n: MAX_LINK_DEPTH }, rel))) {
        throw new UnsafeArchiveError(rel, `symlink target ${n.target} is outside the root`);
      }
    }
    await commit(staging, realRoot, nodes, dirMeta);
    return result;
  } catch (e) {
    stop();
    await feeder;
    if (signal?.aborted) throw signal.reason;
    if (
      e instanceof UnsafeArchiveError || e instanceof ArchiveError ||
      e instanceof ArchiveTooLargeError
    ) throw e;
    throw new ArchiveError(label, `extraction failed: ${(e as Error)?.message ?? e}`, {
      cause: e,
    });
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}
