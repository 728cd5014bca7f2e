/**
 * The relay's own records (object metadata, folder markers): one JSON file per key under a
 * directory of the state directory (`<dir>/<bucket>/<sha256 prefix>/<sha256 of key>.json`),
 * kept in memory once read or written, so that a listing reads no record file per key (with
 * 1,000 keys a page, a file-existence check per key cost more than the `lstat` of the object
 * itself). Only the relay writes its state directory, and every write and removal of a record
 * goes through here; a record that no longer describes its file (inode, size, mtime) is still
 * recognised as stale by the store. A bucket the relay never wrote a record for costs no lookup
 * per key. Bounded: past `max` entries the memory is emptied and filled again from the files.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { writeFileAtomicSync } from "../toolkit/fs.ts";

/** Records of one kind, by bucket and key. */
export class RecordFiles<T> {
  /** Records read or written; `null` remembers that there is none. */
  readonly #memory = new Map<string, T | null>();
  /** Whether the relay has records for a bucket (its directory exists). */
  readonly #buckets = new Map<string, boolean>();

  /**
   * Records under `dir`; `tempPath` gives atomic writes their temp file; `max` bounds the
   * entries held in memory (~100 bytes each plus the record).
   */
  constructor(
    readonly dir: string,
    private readonly tempPath: () => string,
    readonly max = 200_000,
  ) {}

  /** The record file of a key (`.json`; callers may keep a sibling with another extension). */
  path(bucket: string, key: string): string {
    const h = createHash("sha256").update(key).digest("hex");
    return path.join(this.dir, bucket, h.slice(0, 2), h + ".json");
  }

  /** The record (frozen: no caller can change the remembered copy), or `null`. */
  read(bucket: string, key: string): T | null {
    let has = this.#buckets.get(bucket);
    if (has === undefined) {
      has = fs.existsSync(path.join(this.dir, bucket));
      this.#buckets.set(bucket, has);
    }
    if (!has) return null; // not remembered per key: nothing to read for any of them
    const known = this.#memory.get(`${bucket}\0${key}`);
    if (known !== undefined) return known;
    const file = this.path(bucket, key);
    let record: T | null = null;
    // existsSync first: a failed read throws, and that costs ~20x more.
    if (fs.existsSync(file)) {
      try {
        record = JSON.parse(fs.readFileSync(file, "utf8")) as T;
      } catch { /* removed meanwhile, or unreadable */ }
    }
    return this.#remember(bucket, key, record);
  }

  /** Makes the record's directory (call before placing a sibling file next to the record). */
  prepare(bucket: string, key: string): string {
    const file = this.path(bucket, key);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.#buckets.set(bucket, true);
    return file;
  }

  /** Writes a record atomically (0600) and remembers it; returns the remembered copy. */
  write(bucket: string, key: string, record: T): T {
    const file = this.prepare(bucket, key);
    writeFileAtomicSync(file, JSON.stringify(record), { mode: 0o600, tempPath: this.tempPath() });
    return this.#remember(bucket, key, record)!;
  }

  /** Removes a key's record. */
  remove(bucket: string, key: string): void {
    fs.rmSync(this.path(bucket, key), { force: true });
    this.#remember(bucket, key, null);
  }

  /** Removes every record of a bucket. */
  dropBucket(bucket: string): void {
    fs.rmSync(path.join(this.dir, bucket), { recursive: true, force: true });
    this.#memory.clear();
    this.#buckets.delete(bucket);
  }

  #remember(bucket: string, key: string, record: T | null): T | null {
    if (this.#memory.size >= this.max) this.#memory.clear();
    const v = record === null ? null : Object.freeze(record);
    this.#memory.set(`${bucket}\0${key}`, v);
    return v;
  }
}
