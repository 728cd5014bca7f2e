/**
 * Folder markers: objects whose key ends in `/` (`a/b/`, as consoles and rclone make). The
 * served tree shows the folder `a/b`; the marker's record (and its content, if any) lives in
 * the state directory under `markers/<bucket>/`.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { S3Error } from "./s3_error.ts";
import { keySegments, makeFolders, removeEmptyFolders } from "./fs_paths.ts";
import type { ObjectInfo, ObjectMeta } from "./fs_store.ts";
import { RecordFiles } from "./record_files.ts";

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
  /** Records as read and written (see record_files.ts). */
  readonly #records: RecordFiles<ObjectMeta>;

  /** Markers recorded below `stateDir`, of the buckets of `host`. */
  constructor(stateDir: string, private readonly host: MarkerHost) {
    this.dir = path.join(stateDir, "markers");
    this.#records = new RecordFiles(this.dir, () => host.tempPath(), 50_000);
  }

  /** Where a marker's content is kept (beside its record). */
  private dataPath(bucket: string, key: string): string {
    return this.#records.path(bucket, key).replace(/\.json$/, ".data");
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
    this.#records.prepare(bucket, meta.key);
    const data = this.dataPath(bucket, meta.key);
    if (content && size > 0) {
      fs.renameSync(content.tmp, data);
      full.ino = fs.statSync(data).ino; // what openObject checks the opened file against
    } else fs.rmSync(data, { force: true });
    return this.#records.write(bucket, meta.key, full);
  }

  /** The record of `a/b/` if there is one and its folder still exists. */
  meta(bucket: string, key: string): ObjectMeta | undefined {
    const m = this.#records.read(bucket, key);
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
    const p = size > 0 ? this.dataPath(bucket, key) : folder;
    return { path: p, size, mtime: new Date(m.mtimeMs), meta: m, folder: true };
  }

  /** Removes a marker, and its folder when nothing else is in it. */
  delete(bucket: string, key: string): void {
    const { dir, folder } = this.folderOf(bucket, key);
    this.#records.remove(bucket, key);
    fs.rmSync(this.dataPath(bucket, key), { force: true });
    removeEmptyFolders(dir, folder);
  }

  /** Forgets every marker of a removed bucket. */
  dropBucket(bucket: string): void {
    this.#records.dropBucket(bucket);
  }
}
