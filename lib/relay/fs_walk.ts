/**
 * The listing walk: yields a bucket's keys in S3 order (UTF-8 bytes, i.e. code points), one
 * directory read at a time and asynchronously, so a long listing never stalls other requests
 * or signal handling. Symlinks are not objects: they are neither listed nor followed, so a
 * bucket holding `x -> .` loops cannot make the walk loop. Names that cannot be part of a key
 * (a backslash, the relay's temp names, ...: see `segmentProblem`) and keys over 1,024 bytes
 * are left out, so every key yielded is one the relay would accept.
 *
 * The walk resumes from a key (`after`: the continuation token or start-after) by binary
 * search in each directory on the way down, instead of re-walking everything before it. Sorted
 * listings of large directories are cached while the directory's mtime proves them current,
 * so paging through a directory of 100,000 objects reads and sorts it once.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { isInside, keyTooLong, segmentProblem } from "./fs_paths.ts";

/** One listed key: an object (with its `lstat`), or a directory rolled up as common prefix. */
/** What the walk learned of a file from its `lstat`. */
export interface FileStat {
  size: number;
  mtime: Date;
  /** Milliseconds, as node:fs reports them in Deno (whole milliseconds). */
  mtimeMs: number;
  ino: number;
  dev: number;
}

export interface WalkItem {
  key: string;
  prefix?: boolean;
  stat?: FileStat;
  /** A folder marker (`a/b/`, see {@link WalkOptions.marker}); `stat` is absent. */
  marker?: boolean;
}

interface Entry {
  name: string;
  /** The name, plus `/` for a directory: what sorts within the directory. */
  key: string;
  isDir: boolean;
}

/**
 * Compares strings by code point, which is the UTF-8 byte order S3 lists keys in (JavaScript's
 * `<` compares UTF-16 units, which puts U+E000..U+FFFF after astral characters).
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Directories with at least this many entries have their sorted listing cached. */
const CACHE_MIN_ENTRIES = 256;

/** Sorted directory listings, reused while a directory's mtime shows it unchanged. */
export class DirListingCache {
  readonly #map = new Map<string, { ino: number; mtimeMs: number; entries: Entry[] }>();
  #total = 0;

  /** `maxEntries`: the most entries held over all directories (memory bound). */
  constructor(readonly maxEntries = 300_000) {}

  /** A cached listing still valid for a directory with this inode and mtime. */
  get(dir: string, ino: number, mtimeMs: number): Entry[] | undefined {
    const hit = this.#map.get(dir);
    if (!hit) return undefined;
    if (hit.ino !== ino || hit.mtimeMs !== mtimeMs) {
      this.#drop(dir);
      return undefined;
    }
    this.#map.delete(dir); // most recently used goes last
    this.#map.set(dir, hit);
    return hit.entries;
  }

  /** Remembers a listing (evicting the least recently used ones over the bound). */
  set(dir: string, ino: number, mtimeMs: number, entries: Entry[]): void {
    if (entries.length < CACHE_MIN_ENTRIES || entries.length > this.maxEntries) return;
    this.#drop(dir);
    this.#map.set(dir, { ino, mtimeMs, entries });
    this.#total += entries.length;
    for (const [d] of this.#map) {
      if (this.#total <= this.maxEntries) break;
      this.#drop(d);
    }
  }

  #drop(dir: string) {
    const e = this.#map.get(dir);
    if (!e) return;
    this.#total -= e.entries.length;
    this.#map.delete(dir);
  }
}

/** Directories at most this size (bytes, as `lstat` reports it) are read synchronously. */
const SMALL_DIR_BYTES = 16_384;
/** Longest a walk runs between two turns it gives the event loop (ms). */
const YIELD_EVERY_MS = 16;

/** The sorted entries of a directory (symlinks and names no key can have left out). */
async function readSorted(
  dir: string,
  stateDir: string,
  cache: DirListingCache,
): Promise<{ id: string; entries: Entry[] }> {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(dir);
  } catch {
    return { id: "", entries: [] };
  }
  if (!st.isDirectory) return { id: "", entries: [] };
  const ino = st.ino ?? 0;
  const mtimeMs = st.mtime?.getTime() ?? 0;
  const id = `${st.dev}:${ino}`;
  const hit = cache.get(dir, ino, mtimeMs);
  if (hit) return { id, entries: hit };
  const readAt = Date.now();
  const entries: Entry[] = [];
  try {
    // Deno's own directory reader: about 9x faster than node:fs readdir on 100,000 entries.
    // A small directory (a few hundred entries) is read at once: an await per entry costs
    // more than the read; a large one asynchronously, so other requests are answered meanwhile.
    const dirents: Deno.DirEntry[] = [];
    if (st.size <= SMALL_DIR_BYTES) { for (const d of Deno.readDirSync(dir)) dirents.push(d); }
    else for await (const d of Deno.readDir(dir)) dirents.push(d);
    for (const d of dirents) {
      if (segmentProblem(d.name) !== undefined) continue;
      let isDir = d.isDirectory;
      let isFile = d.isFile;
      if (!isDir && !isFile && !d.isSymlink) {
        // A type readdir did not report (some filesystems), or a device/socket: ask lstat.
        const s = fs.lstatSync(path.join(dir, d.name), { throwIfNoEntry: false });
        isDir = s?.isDirectory() ?? false;
        isFile = s?.isFile() ?? false;
      }
      if (!isDir && !isFile) continue; // symlinks, devices, sockets: not objects
      if (isDir && isInside(path.join(dir, d.name), stateDir)) continue;
      entries.push({ name: d.name, key: isDir ? d.name + "/" : d.name, isDir });
    }
  } catch {
    return { id, entries: [] }; // removed or unreadable meanwhile
  }
  entries.sort((a, b) => compareKeys(a.key, b.key));
  // Trust the listing later only if the directory had not changed for a second when it was
  // read: mtimes are coarse (and kept here in milliseconds), a change within the same tick
  // could otherwise go unnoticed; any later change gives the directory a newer mtime.
  if (mtimeMs + 1_000 < readAt) cache.set(dir, ino, mtimeMs, entries);
  return { id, entries };
}

/**
 * First index in `entries` (full keys `rel + entry.key`) past `x` (`strict`) or at it, moved
 * back onto a directory whose key is a prefix of `x` (its subtree holds keys after `x`).
 */
function startIndex(entries: Entry[], rel: string, x: string, strict: boolean): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const c = compareKeys(rel + entries[mid].key, x);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && entries[lo - 1].isDir && x.startsWith(rel + entries[lo - 1].key)) lo--;
  return lo;
}

/** Options of {@link walkBucket}. */
export interface WalkOptions {
  /** The bucket's directory. */
  root: string;
  /** The relay's state directory (never listed). */
  stateDir: string;
  prefix: string;
  /** List keys after this one (exclusive); "" from the start. */
  after: string;
  /** With `/`, directories below the prefix are yielded as common prefixes, not entered. */
  delimiter: string;
  cache: DirListingCache;
  signal?: AbortSignal;
  /** True if the folder key (`a/b/`) has a folder marker, listed as an object before its
   * contents. */
  marker?: (key: string) => boolean;
}

/**
 * Yields object keys of a bucket in S3 order, restricted to `prefix`, after `after`. With
 * delimiter `/`, directories that do not match deeper are yielded as common prefixes without
 * descending. Stops (without error) when `signal` aborts.
 */
export async function* walkBucket(o: WalkOptions): AsyncGenerator<WalkItem> {
  const { prefix, after, delimiter } = o;
  // Small directories are read synchronously: a walk through thousands of them gives the
  // event loop a turn every few milliseconds, so other requests are answered meanwhile.
  let ranSince = performance.now();
  const frame = async (dir: string, rel: string) => {
    if (performance.now() - ranSince > YIELD_EVERY_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      ranSince = performance.now();
    }
    const { id, entries } = await readSorted(dir, o.stateDir, o.cache);
    const i = Math.max(
      startIndex(entries, rel, after, true),
      startIndex(entries, rel, prefix, false),
    );
    return { dir, rel, entries, i, id };
  };
  const stack = [await frame(o.root, "")];
  while (stack.length > 0 && !o.signal?.aborted) {
    const f = stack[stack.length - 1];
    if (f.i >= f.entries.length) {
      stack.pop();
      continue;
    }
    const e = f.entries[f.i++];
    const key = f.rel + e.key;
    if (!key.startsWith(prefix) && !(e.isDir && prefix.startsWith(key))) {
      // Sorted: once past the prefix's range nothing later in this directory matches.
      if (compareKeys(key, prefix) > 0) f.i = f.entries.length;
      continue;
    }
    if (e.isDir) {
      if (compareKeys(key, after) <= 0 && !after.startsWith(key)) continue;
      // A common prefix needs the delimiter after the prefix: "a/" under prefix "a/" is
      // descended into, "a/b/" under prefix "a/" is rolled up.
      if (delimiter === "/" && key.startsWith(prefix) && key.length > prefix.length) {
        if (compareKeys(key, after) > 0) yield { key, prefix: true };
        continue;
      }
      // Keys are at most 1024 bytes: nothing deeper can be listed.
      if (keyTooLong(key)) continue;
      const sub = await frame(path.join(f.dir, e.name), key);
      // A directory that is its own ancestor (a bind mount loop; symlinks are never entered).
      if (stack.some((a) => a.id === sub.id)) continue;
      if (o.marker && key.startsWith(prefix) && compareKeys(key, after) > 0 && o.marker(key)) {
        yield { key, marker: true };
      }
      stack.push(sub);
      continue;
    }
    if (compareKeys(key, after) <= 0 || keyTooLong(key)) continue;
    // One synchronous lstat per listed object (at most a page's worth between yields): an
    // await per file would cost more than the stat itself. Deno's own call: node:fs's wraps
    // it and takes three times as long.
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(`${f.dir}/${e.name}`);
    } catch {
      continue; // vanished meanwhile
    }
    if (!info.isFile) continue; // replaced by a symlink or directory meanwhile
    const mtime = info.mtime ?? new Date(0);
    yield {
      key,
      stat: { size: info.size, mtime, mtimeMs: mtime.getTime(), ino: info.ino ?? 0, dev: info.dev },
    };
  }
}
