/**
 * The relay's own records (object metadata, folder markers) kept in memory as they are read
 * and written, so that a listing reads no record file per key: with 1,000 keys a page, a
 * file-existence check per key cost more than the `lstat` of the object itself. Only the
 * relay writes its state directory, and every write and removal of a record goes through its
 * store, which updates this cache; a record that no longer describes its file (inode, size,
 * mtime) is still recognised as stale by the store. Bounded: past `max` entries the cache is
 * emptied and filled again from the files.
 *
 * @module
 */

/** Records by bucket and key; `null` remembers that there is none. */
export class RecordCache<T> {
  readonly #map = new Map<string, T | null>();

  /** `max`: the most entries held (memory bound, ~100 bytes each plus the record). */
  constructor(readonly max = 200_000) {}

  /** The record (frozen), `null` if known absent, `undefined` if not known. */
  get(bucket: string, key: string): T | null | undefined {
    return this.#map.get(`${bucket}\0${key}`);
  }

  /** Remembers a record (frozen, so no caller can change the cached copy) or its absence. */
  set(bucket: string, key: string, record: T | null): T | null {
    if (this.#map.size >= this.max) this.#map.clear();
    const v = record === null ? null : Object.freeze(record);
    this.#map.set(`${bucket}\0${key}`, v);
    return v;
  }

  /** Forgets everything (a bucket was removed with its records). */
  clear(): void {
    this.#map.clear();
  }

  /** Number of entries held. */
  get size(): number {
    return this.#map.size;
  }
}
