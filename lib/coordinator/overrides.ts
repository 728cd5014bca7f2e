/**
 * Stage overrides, delivered as Gangplank did (§3.9): the coordinator fetches every override of
 * a stage (`file://` from its own disk, `http(s)://` with GET) into a scratch tree — an RPM to
 * `overrides/rpm/<name>`, a tarball extracted (safely) into `overrides`, `overrides/rpm` or
 * `overrides/rootfs` by its type — packs that tree as `[prefix/]cache/overrides-<random>.tar.gz`
 * in the job bucket, and the worker extracts it into its srv dir: `/srv/overrides/...`.
 *
 * @module
 */
import { createWriteStream } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeWebReadableStream } from "node:stream/web";
import { extractTarGz, packTarGz } from "../archive/mod.ts";
import { UsageError } from "../errors/mod.ts";
import type { FetchLike, Override } from "../jobspec/mod.ts";
import { overrideWritePath } from "../jobspec/override.ts";

/** Minimal fetch signature (inject a fake in tests): lib/jobspec's. */
export type { FetchLike };

/** An override that cannot be fetched: bad input, exit code 2. */
export class OverrideFetchError extends UsageError {
  constructor(readonly stageId: string, readonly uri: string, reason: string) {
    super(`stage ${JSON.stringify(stageId)}: override ${uri}: ${reason}`);
  }
}

/** Options of {@link fetchOverrides}. */
export interface FetchOverridesOptions {
  stageId: string;
  overrides: readonly Override[];
  /** The scratch dir; `overrides/...` is created in it. */
  dir: string;
  /** Directory relative `file://` paths are resolved against. */
  baseDir: string;
  fetch?: FetchLike;
  signal: AbortSignal;
}

/** The local path of a `file://` URI (`file:///abs`, or `file://rel` against `baseDir`). */
export function overrideFilePath(uri: string, baseDir: string): string {
  const p = decodeURIComponent(uri.slice("file://".length));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

async function download(
  o: Override,
  dest: string,
  opts: FetchOverridesOptions,
): Promise<void> {
  const fail = (why: string) => new OverrideFetchError(opts.stageId, o.uri, why);
  if (o.uri.startsWith("file://")) {
    const src = overrideFilePath(o.uri, opts.baseDir);
    try {
      if (!(await Deno.stat(src)).isFile) throw new Error("not a regular file");
      await Deno.copyFile(src, dest);
    } catch (e) {
      throw fail(`${src}: ${(e as Error).message}`);
    }
    return;
  }
  if (!/^https?:\/\//.test(o.uri)) throw fail("only file://, http:// and https:// are fetched");
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(o.uri, { signal: opts.signal });
  } catch (e) {
    opts.signal.throwIfAborted();
    throw fail((e as Error).message);
  }
  if (res.status < 200 || res.status > 299 || !res.body) {
    await res.body?.cancel();
    throw fail(`HTTP ${res.status}`);
  }
  await pipeline(
    Readable.fromWeb(res.body as unknown as NodeWebReadableStream<Uint8Array>),
    createWriteStream(dest, { mode: 0o644 }),
    { signal: opts.signal },
  );
}

/**
 * Fetches a stage's overrides into `<dir>/overrides/...` (RPMs copied, tarballs extracted).
 *
 * @throws {OverrideFetchError} naming the stage and URI when one cannot be fetched or unpacked.
 */
export async function fetchOverrides(opts: FetchOverridesOptions): Promise<void> {
  const dl = join(opts.dir, ".download");
  await Deno.mkdir(dl, { recursive: true });
  try {
    for (const [i, o] of opts.overrides.entries()) {
      opts.signal.throwIfAborted();
      const target = overrideWritePath(o, opts.dir);
      if (o.rpm) {
        await Deno.mkdir(join(target, ".."), { recursive: true });
        await download(o, target, opts);
        continue;
      }
      const tmp = join(dl, `${i}.tar.gz`);
      await download(o, tmp, opts);
      try {
        await extractTarGz(tmp, target, { signal: opts.signal });
      } catch (e) {
        opts.signal.throwIfAborted();
        throw new OverrideFetchError(opts.stageId, o.uri, `cannot unpack: ${(e as Error).message}`);
      }
    }
  } finally {
    await Deno.remove(dl, { recursive: true }).catch(() => {});
  }
}

/** Packs `<dir>/overrides` into `dest`; a worker extracts it into its srv dir. */
export async function packOverrides(dir: string, dest: string, signal: AbortSignal) {
  // Entries `srv/overrides/...`, like every tarball extracted at the srv root.
  return await packTarGz({ root: dir, paths: ["overrides"], entryPrefix: "srv", dest, signal });
}

/** The object key of a stage's overrides tarball: `[prefix/]cache/overrides-<10 random>.tar.gz`. */
export function overridesKey(keyPrefix: string): string {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  const r = [...crypto.getRandomValues(new Uint8Array(10))].map((b) => abc[b % abc.length]);
  return `${keyPrefix ? `${keyPrefix}/` : ""}cache/overrides-${r.join("")}.tar.gz`;
}
