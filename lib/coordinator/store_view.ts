/**
 * One reading of the object store for dependency checks: `builds.json`, a build's metadata
 * (its listing, `meta.json` and fragments) and object sizes, each read at most once per view.
 * {@link sharedViews} hands one view to every check that starts in the same synchronous turn
 * — the stages of an execution group, which the scheduler checks all at once — so a group of
 * N parallel stages reads the store once instead of N times. A check that starts later (a
 * waiting stage's next poll, the next group) gets a fresh view: it sees every write that
 * ended before it started, as a check with its own reads did.
 *
 * @module
 */

import {
  type BuildsJSON,
  type CosaMeta,
  isKnownBuildMeta,
  isMetaJSON,
  mergeMetaFragments,
  parseBuilds,
} from "../cosa/mod.ts";
import { BUILDS_JSON_KEY, objectKey } from "../workspec/layout.ts";
import type { InputFile, JobLocation, StoreReader } from "./inputs.ts";

/** A build as a check sees it: its known metadata files and its merged `meta.json`. */
export interface BuildView {
  /** Build id. */
  id: string;
  /** `meta.json` merged with its `meta.*.json` fragments; absent without a `meta.json`. */
  meta?: CosaMeta;
  /** The known metadata files directly under `<id>/<arch>/`, for the worker to fetch. */
  files: InputFile[];
}

/** Remembers each read's promise under its key (a read is made once). */
function once<T>(memo: Map<string, Promise<T>>, key: string, read: () => Promise<T>): Promise<T> {
  let p = memo.get(key);
  if (!p) memo.set(key, p = read());
  return p;
}

/**
 * The store as read once for the checks of one moment. Every read is made on first use and
 * its result (or error) shared by every later use of this view.
 */
export class StoreView {
  readonly #store: StoreReader;
  readonly #loc: JobLocation;
  readonly #signal: AbortSignal;
  readonly #builds = new Map<string, Promise<BuildsJSON | undefined>>();
  readonly #build = new Map<string, Promise<BuildView>>();
  readonly #stat = new Map<string, Promise<{ size: number } | undefined>>();

  /** A view of `loc` in `store`; its reads take `signal`. Nothing is read yet. */
  constructor(store: StoreReader, loc: JobLocation, signal: AbortSignal) {
    this.#store = store;
    this.#loc = loc;
    this.#signal = signal;
  }

  /** The signal the view's reads take. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /** `builds.json` parsed, or `undefined` when there is none. */
  builds(): Promise<BuildsJSON | undefined> {
    return once(this.#builds, "", async () => {
      const { bucket } = this.#loc;
      const v = await this.#store.getJSON(bucket, this.#key(BUILDS_JSON_KEY), {
        signal: this.#signal,
      });
      return v === undefined || v === null ? undefined : parseBuilds(v);
    });
  }

  /** A build's known metadata files (directly under `<id>/<arch>/`) and merged `meta.json`. */
  build(id: string): Promise<BuildView> {
    return once(this.#build, id, () => this.#readBuild(id));
  }

  /** Size of the object at `key` (with the key prefix), or `undefined` when it does not exist. */
  stat(key: string): Promise<{ size: number } | undefined> {
    return once(this.#stat, key, () => this.#store.stat(this.#loc.bucket, key, this.#opts()));
  }

  #opts(): { signal: AbortSignal } {
    return { signal: this.#signal };
  }

  #key(key: string): string {
    return objectKey(this.#loc.keyPrefix, key);
  }

  async #readBuild(id: string): Promise<BuildView> {
    const loc = this.#loc;
    const dir = `${id}/${loc.arch}/`;
    const listed = await this.#store.list(loc.bucket, this.#key(dir), this.#opts());
    const files: InputFile[] = [];
    const fragments: { name: string; key: string }[] = [];
    let hasMeta = false;
    for (const o of listed) {
      const rel = o.key.slice(this.#key(dir).length);
      if (rel === "" || rel.includes("/") || !isKnownBuildMeta(rel)) continue;
      files.push({ bucket: loc.bucket, object: o.key, path: `builds/${dir}${rel}`, size: o.size });
      if (rel === "meta.json") hasMeta = true;
      else if (isMetaJSON(rel)) fragments.push({ name: rel, key: o.key });
    }
    if (!hasMeta) return { id, files };
    const base = await this.#store.getJSON(loc.bucket, this.#key(`${dir}meta.json`), this.#opts());
    if (!base || typeof base !== "object") return { id, files };
    const frags: unknown[] = [];
    for (const f of fragments.sort((a, b) => a.name.localeCompare(b.name))) {
      frags.push(await this.#store.getJSON(loc.bucket, f.key, this.#opts()));
    }
    return { id, meta: mergeMetaFragments(base as CosaMeta, frags), files };
  }
}

/**
 * Views for checks: calls in the same synchronous turn with the same signal get the same
 * {@link StoreView}; a call in a later turn (or with another signal) gets a new one.
 *
 * @example
 * ```ts
 * const view = sharedViews(store, loc);
 * // The scheduler starts a group's checks in one turn: one read of the store for all.
 * await Promise.all(stages.map((s) => resolveStageInputs(store, loc, s.needs, {
 *   signal,
 *   view: view(signal),
 * })));
 * ```
 */
export function sharedViews(
  store: StoreReader,
  loc: JobLocation,
): (signal: AbortSignal) => StoreView {
  let current: StoreView | undefined;
  return (signal) => {
    if (current?.signal !== signal) {
      const view = new StoreView(store, loc, signal);
      current = view;
      // The turn ends after the synchronous code that asked: later checks read afresh.
      queueMicrotask(() => {
        if (current === view) current = undefined;
      });
    }
    return current;
  };
}
