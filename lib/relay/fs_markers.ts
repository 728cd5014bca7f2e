/**
 * Folder markers: objects whose key ends in `/` (`a/b/`, as consoles and rclone make). The
 * served tree shows the folder `a/b`; the marker's record (and its content, if any) lives in
 * the state directory under `markers/<bucket>/`.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { writeFileAtomicSync } from "../toolkit/fs.ts";
import { S3Error } from "./s3_error.ts";
import { keySegments, makeFolders, removeEmptyFolders } from "./fs_paths.ts";
import type { ObjectInfo, ObjectMeta } from "./fs_store.ts";
import { RecordCache } from "./record_cache.ts";

/** What the markers need of the store: where a bucket is, and a temp file path. */
export interface MarkerHost {
  /** The bucket's directory; throws NoSuchBucket. */
  existingBucket(name: string): string;
  /** A fresh temp file path in the state directory. */
  tempPath(): string;
}

/** The folder markers of a store, recorded under `<stateDir>/markers`. */
export class FolderMarkers {
  /** The directory of the records. */
  readonly dir: string;
  /** Records as read and written (see record_cache.ts). */
  readonly #records = new RecordCache<ObjectMeta>(50_000);
  /** Whether a bucket has marker records (a directory under `dir`). */
  readonly #bucketsWithMarkers = new Map<string, boolean>();

  /** Markers recorded below `stateDir`, of the buckets of `host`. */
  constructor(stateDir: string, private readonly host: MarkerHost) {
    this.dir = path.join(stateDir, "markers");
  }

  private recordPath(bucket: string, key: string): string {
    const h = createHash("sha256").update(key).digest("hex");
    return path.join(this.dir, bucket, h.slice(0, 2), h + ".json");
  }

  /** The folder a marker key (`a/b/`) stands for, checked like an object's path. */
  private folderOf(bucket: string, key: string): { dir: string; folder: string; segs: string[] } {
    const segs = keySegments(key.slice(0, -1));
    const dir = this.host.existingBucket(bucket);
    return { dir, folder: path.join(dir, ...segs), segs };
  }

  /**
   * Stores a marker: the folder `a/b` in the bucket, plus its record. Content, if any (`tmp`,
   * `size` bytes), is kept in the state directory too: the tree shows a folder. Refuses when
   * `a/b` is an object.
   */
  put(
    bucket: string,
    meta: Omit<ObjectMeta, "ino" | "size" | "mtimeMs">,
    content?: { tmp: string; size: number },
  ): ObjectMeta {
    const { dir, segs } = this.folderOf(bucket, meta.key);
    makeFolders(dir, segs, meta.key);
    const size = content?.size ?? 0;
    const full: ObjectMeta = { ...meta, ino: 0, size, mtimeMs: Date.now() };
    const mp = this.recordPath(bucket, meta.key);
    fs.mkdirSync(path.dirname(mp), { recursive: true, mode: 0o700 });
    this.#bucketsWithMarkers.set(bucket, true);
    const data = mp.replace(/\.json$/, ".data");
    if (content && size > 0) {
      fs.renameSync(content.tmp, data);
      full.ino = fs.statSync(data).ino; // what openObject checks the opened file against
    } else fs.rmSync(data, { force: true });
    writeFileAtomicSync(mp, JSON.stringify(full), { mode: 0o600, tempPath: this.host.tempPath() });
    return this.#records.set(bucket, meta.key, full)!;
  }

  /** The record of `a/b/` if there is one and its folder still exists. */
  meta(bucket: string, key: string): ObjectMeta | undefined {
    let m = this.#records.get(bucket, key);
    if (m === undefined) {
      const mp = this.recordPath(bucket, key);
      m = null;
      let has = this.#bucketsWithMarkers.get(bucket);
      if (has === undefined) {
        has = fs.existsSync(path.join(this.dir, bucket));
        this.#bucketsWithMarkers.set(bucket, has);
      }
      // existsSync first: a failed read throws, and that costs far more.
      if (has && fs.existsSync(mp)) {
        try {
          m = JSON.parse(fs.readFileSync(mp, "utf8")) as ObjectMeta;
        } catch { /* removed meanwhile, or unreadable */ }
      }
      m = this.#records.set(bucket, key, m);
    }
    if (!m || m.key !== key) return undefined;
    const { folder } = this.folderOf(bucket, key);
    return fs.lstatSync(folder, { throwIfNoEntry: false })?.isDirectory() ? m : undefined;
  }

  /** A marker as an object: its content file, or its folder when it has none; NoSuchKey. */
  stat(bucket: string, key: string): ObjectInfo {
    const m = this.meta(bucket, key);
    if (!m) throw new S3Error(404, "NoSuchKey", "The specified key does not exist.");
    const { folder } = this.folderOf(bucket, key);
    const size = m.size ?? 0;
    const p = size > 0 ? this.recordPath(bucket, key).replace(/\.json$/, ".data") : folder;
    return { path: p, size, mtime: new Date(m.mtimeMs), meta: m, folder: true };
  }

  /** Removes a marker, and its folder when nothing else is in it. */
  delete(bucket: string, key: string): void {
    const { dir, folder } = this.folderOf(bucket, key);
    const mp = this.recordPath(bucket, key);
    fs.rmSync(mp, { force: true });
    this.#records.set(bucket, key, null);
    fs.rmSync(mp.replace(/\.json$/, ".data"), { force: true });
    removeEmptyFolders(dir, folder);
  }

  /** Forgets every marker of a removed bucket. */
  dropBucket(bucket: string): void {
    fs.rmSync(path.join(this.dir, bucket), { recursive: true, force: true });
    this.#records.clear();
    this.#bucketsWithMarkers.delete(bucket);
  }
}
