/**
 * The relay's storage: buckets are directories, objects are plain files, and everything that
 * is not an artifact (user metadata, tags, in-flight uploads and multipart parts) lives in a
 * separate state directory. All writes go through a temp file and a rename. Key rules and the
 * symlink-safe path walks are in `fs_paths.ts`, folder markers (`a/b/` keys) in
 * `fs_markers.ts`.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { pseudoEtag } from "./pseudo_etag.ts";
import { GangplankError } from "../errors/mod.ts";
import { bucketNameProblem, isValidBucketName } from "../names/bucket.ts";
import { S3Error } from "./s3_error.ts";
import {
  isFolderKey,
  isInside,
  keySegments,
  makeFolders,
  parentsOf,
  randomId,
  removeEmptyFolders,
  TMP_MARK,
} from "./fs_paths.ts";
import { FolderMarkers } from "./fs_markers.ts";
import { RecordFiles } from "./record_files.ts";

/** What the relay remembers about an object besides its bytes. */
export interface ObjectMeta {
  key: string;
  /** Identity of the file this record describes; a mismatch means the record is stale. */
  ino: number;
  size: number;
  mtimeMs: number;
  /** ETag without quotes. */
  etag: string;
  contentType?: string;
  /** Standard headers stored with the object (content-encoding, cache-control, ...). */
  headers?: Record<string, string>;
  /** User metadata, names lower-cased without the `x-amz-meta-` prefix. */
  userMeta?: Record<string, string>;
  tags?: Record<string, string>;
  /**
   * The additional checksum (S3's `x-amz-checksum-*`), base64; a composite one (over the parts'
   * checksums) ends in `-<parts>`.
   */
  checksum?: { algorithm: string; value: string; type?: "FULL_OBJECT" | "COMPOSITE" };
  /** The parts of a multipart object, in order (for `?partNumber` and GetObjectAttributes). */
  parts?: { size: number; checksum?: string }[];
  /** The content's sha256 (hex), once a client asked for it (`server_digest.ts`). */
  sha256?: string;
  /**
   * The file's ctime (ms) when `sha256` was computed: the digest holds only while it is the
   * same. An edit in place that keeps inode, size and mtime (`touch -d` after writing) still
   * moves the ctime, which no user can set back.
   */
  sha256CtimeMs?: number;
}

/** An object's file plus its (possibly synthesized) metadata. */
export interface ObjectInfo {
  path: string;
  size: number;
  mtime: Date;
  meta: ObjectMeta;
  /** The file's ctime (ms); absent for folder markers. */
  ctimeMs?: number;
  /** A key ending in `/` (a folder marker): `path` is the folder, or its content's file. */
  folder?: boolean;
}

/** Options of {@link FsStore}. */
export interface FsStoreOptions {
  root: string;
  stateDir?: string;
  bucketDirs?: Record<string, string>;
}

/** The directory-backed object store. */
export class FsStore {
  readonly root: string;
  readonly stateDir: string;
  readonly tmpDir: string;
  readonly metaDir: string;
  /** Object records as read and written (see record_files.ts). */
  readonly #records: RecordFiles<ObjectMeta>;
  readonly uploadsDir: string;
  /** bucket name → absolute directory, for aliased buckets. */
  readonly aliases: Map<string, string>;
  /** absolute directory → bucket name (to hide aliased directories under their own name). */
  readonly aliasedDirs: Map<string, string>;
  /** The folder markers (`a/b/` keys) of the buckets. */
  readonly markers: FolderMarkers;

  constructor(opts: FsStoreOptions) {
    try {
      this.root = fs.realpathSync(path.resolve(opts.root));
    } catch {
      throw new GangplankError(`relay root ${opts.root} does not exist`);
    }
    if (!fs.statSync(this.root).isDirectory()) {
      throw new GangplankError(`relay root ${this.root} is not a directory`);
    }
    this.stateDir = path.resolve(opts.stateDir ?? path.join(this.root, ".gangplank-relay"));
    this.tmpDir = path.join(this.stateDir, "tmp");
    this.metaDir = path.join(this.stateDir, "meta");
    this.#records = new RecordFiles(this.metaDir, () => this.tempPath());
    this.uploadsDir = path.join(this.stateDir, "uploads");
    this.markers = new FolderMarkers(this.stateDir, this);
    this.aliases = new Map();
    this.aliasedDirs = new Map();
    for (const [name, dir] of Object.entries(opts.bucketDirs ?? {})) {
      const problem = bucketNameProblem(name);
      if (problem) throw new GangplankError(`invalid bucket name '${name}': ${problem}`);
      const abs = path.resolve(this.root, dir);
      if (!isInside(this.root, abs) || abs === this.root) {
        throw new GangplankError(`bucket directory '${dir}' must be below ${this.root}`);
      }
      if (isInside(abs, this.stateDir) || isInside(this.stateDir, abs)) {
        throw new GangplankError(`bucket directory '${dir}' overlaps the relay state directory`);
      }
      this.aliases.set(name, abs);
      this.aliasedDirs.set(abs, name);
    }
    for (const d of [this.stateDir, this.tmpDir, this.metaDir, this.uploadsDir]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    }
    // Leftovers of a crashed relay are never objects; remove them.
    for (const f of fs.readdirSync(this.tmpDir)) {
      fs.rmSync(path.join(this.tmpDir, f), { force: true, recursive: true });
    }
  }

  // ---- buckets ---------------------------------------------------------------------------

  /** Directory of a bucket (which may not exist yet); throws for invalid names. */
  bucketDir(name: string): string {
    const problem = bucketNameProblem(name);
    if (problem) {
      throw new S3Error(400, "InvalidBucketName", `invalid bucket name '${name}': ${problem}`);
    }
    const alias = this.aliases.get(name);
    if (alias) return alias;
    const dir = path.join(this.root, name);
    if (this.aliasedDirs.has(dir) || isInside(dir, this.stateDir)) {
      throw new S3Error(404, "NoSuchBucket", `the bucket '${name}' does not exist`);
    }
    return dir;
  }

  /**
   * The bucket's directory; throws NoSuchBucket if it is missing, is not a directory, or any
   * step below the relay root is a symlink (symlinks are never followed).
   */
  existingBucket(name: string): string {
    const dir = this.bucketDir(name);
    const noSuch = () => new S3Error(404, "NoSuchBucket", `the bucket '${name}' does not exist`);
    let cur = this.root;
    for (const seg of path.relative(this.root, dir).split(path.sep)) {
      cur = path.join(cur, seg);
      const st = fs.lstatSync(cur, { throwIfNoEntry: false });
      if (!st?.isDirectory()) throw noSuch();
    }
    return dir;
  }

  /** All buckets: top-level directories of the root (aliased ones under their bucket name). */
  listBuckets(): { name: string; created: Date }[] {
    const out: { name: string; created: Date }[] = [];
    for (const e of fs.readdirSync(this.root, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith(".")) continue;
      const abs = path.join(this.root, e.name);
      if (this.aliasedDirs.has(abs) || isInside(abs, this.stateDir)) continue;
      if (!isValidBucketName(e.name)) continue;
      const st = fs.lstatSync(abs);
      out.push({ name: e.name, created: st.birthtime ?? st.mtime });
    }
    for (const [name, dir] of this.aliases) {
      try {
        this.existingBucket(name);
        const st = fs.lstatSync(dir);
        out.push({ name, created: st.birthtime ?? st.mtime });
      } catch { /* not created yet, or not a plain directory */ }
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  /** Creates a bucket directory. */
  createBucket(name: string): void {
    const dir = this.bucketDir(name);
    try {
      fs.mkdirSync(dir, { recursive: false, mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") {
        throw new S3Error(
          409,
          "BucketAlreadyOwnedByYou",
          "Your previous request to create the named bucket succeeded and you already own it.",
        );
      }
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
        return;
      }
      throw e;
    }
  }

  /** Removes an empty bucket (empty directories inside it do not count as content). */
  deleteBucket(name: string): void {
    const dir = this.existingBucket(name);
    const hasFiles = (d: string): boolean => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) {
          if (hasFiles(path.join(d, e.name))) return true;
        } else return true;
      }
      return false;
    };
    if (hasFiles(dir)) {
      throw new S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    }
    fs.rmSync(dir, { recursive: true });
    this.#records.dropBucket(name);
    this.markers.dropBucket(name);
  }

  // ---- objects ---------------------------------------------------------------------------

  /** Path of an object file (key and bucket validated; nothing on the path is followed yet). */
  objectPath(bucket: string, key: string): { dir: string; file: string; segs: string[] } {
    const segs = keySegments(key);
    const dir = this.existingBucket(bucket);
    return { dir, file: path.join(dir, ...segs), segs };
  }

  /**
   * Stats an existing object; throws NoSuchKey. Only a regular file reached through real
   * directories is an object: a symlink anywhere on the path (or at the key) is not.
   */
  statObject(bucket: string, key: string): ObjectInfo {
    if (isFolderKey(key)) return this.markers.stat(bucket, key);
    const { dir, file, segs } = this.objectPath(bucket, key);
    const noSuch = () => new S3Error(404, "NoSuchKey", "The specified key does not exist.");
    if (parentsOf(dir, segs) !== "ok") throw noSuch();
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) throw noSuch();
    let meta = this.metaFor(bucket, key, st);
    if (meta.sha256 !== undefined && meta.sha256CtimeMs !== st.ctimeMs) {
      meta = { ...meta, sha256: undefined, sha256CtimeMs: undefined }; // changed since hashed
    }
    return { path: file, size: st.size, mtime: st.mtime, ctimeMs: st.ctimeMs, meta };
  }

  /**
   * Opens an object found by {@link statObject} for reading without following a symlink, and
   * checks it is still the same file (a swap since the stat is refused as NoSuchKey).
   */
  openObject(info: ObjectInfo): number {
    const noSuch = () => new S3Error(404, "NoSuchKey", "The specified key does not exist.");
    let fd: number;
    try {
      fd = fs.openSync(info.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch {
      throw noSuch();
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.ino !== info.meta.ino) {
      fs.closeSync(fd);
      throw noSuch();
    }
    return fd;
  }

  /** Stored metadata if it still describes `st`, else a synthesized record. */
  metaFor(
    bucket: string,
    key: string,
    st: Pick<fs.Stats, "ino" | "size" | "mtimeMs" | "dev">,
  ): ObjectMeta {
    const m = this.#records.read(bucket, key);
    if (m && m.key === key && m.ino === st.ino && m.size === st.size && m.mtimeMs === st.mtimeMs) {
      return m;
    }
    // A file the relay did not write (or changed behind its back): a stable pseudo ETag that
    // is visibly not an MD5 (the "-1" suffix), so clients do not verify content against it.
    const etag = pseudoEtag(st.dev, st.ino, st.size, st.mtimeMs);
    return { key, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, etag };
  }

  /** Writes the metadata record for the file now at the object's path. */
  writeMeta(bucket: string, meta: Omit<ObjectMeta, "ino" | "size" | "mtimeMs">): ObjectMeta {
    const { file } = this.objectPath(bucket, meta.key);
    const st = fs.lstatSync(file);
    const full: ObjectMeta = { ...meta, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    return this.#records.write(bucket, meta.key, full);
  }

  /**
   * Deletes an object (missing objects are not an error, as in S3). A symlink on the path or at
   * the key is not an object: nothing is followed and nothing is removed.
   */
  deleteObject(bucket: string, key: string): void {
    if (isFolderKey(key)) return this.markers.delete(bucket, key);
    const { dir, file, segs } = this.objectPath(bucket, key);
    if (parentsOf(dir, segs) !== "ok") return;
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) return;
    fs.unlinkSync(file);
    this.#records.remove(bucket, key);
    // Remove directories the object left empty, up to (not including) the bucket directory.
    removeEmptyFolders(dir, path.dirname(file));
  }

  /** A fresh temp file path in the state directory. */
  tempPath(): string {
    return path.join(this.tmpDir, randomId(12));
  }

  /**
   * Moves a finished temp file into place as the object's file (atomic rename), creating
   * parent directories without following symlinks out of the bucket.
   */
  commit(bucket: string, key: string, tmp: string): string {
    const { dir, file, segs } = this.objectPath(bucket, key);
    const crossesLink = () =>
      new S3Error(403, "AccessDenied", "the object's path crosses a symlink in the bucket");
    makeFolders(dir, segs.slice(0, -1), key);
    const at = fs.lstatSync(file, { throwIfNoEntry: false });
    if (at?.isSymbolicLink()) throw crossesLink();
    if (at?.isDirectory()) {
      throw new S3Error(
        409,
        "XMinioObjectExistsAsDirectory",
        `'${key}/' is a prefix (a folder of objects): a plain-file store cannot hold an object ` +
          "and a prefix of the same name",
      );
    }
    try {
      fs.renameSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
      // State dir on another filesystem: copy next to the target under a hidden name first.
      const near = path.join(path.dirname(file), TMP_MARK + randomId(8));
      try {
        fs.copyFileSync(tmp, near);
        fs.renameSync(near, file);
      } finally {
        fs.rmSync(near, { force: true });
        fs.rmSync(tmp, { force: true });
      }
    }
    return file;
  }
}
