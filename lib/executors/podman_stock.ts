/**
 * `--worker-source stock` on a podman host this machine's deno cannot be bound into (a remote
 * host): makes sure the host has the two cache volumes of `lib/podman/stock.ts` — deno copied
 * out of the Deno image, and the run's worker bundle uploaded through the archive endpoint —
 * both complete (marker checked), populating what is missing or half done. Volumes already
 * complete are reused: a second run with the same Deno image and bundle uploads nothing.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import tar from "tar-stream";
import { UsageError } from "../errors/mod.ts";
import {
  CACHE_MARKER,
  cacheHelperSpec,
  denoCacheVolume,
  LABEL_CACHE,
  type PodmanClient,
  PodmanError,
  runCreatedContainer,
  STOCK_DENO_DIR,
  STOCK_WORKER_DIR,
  type StockVolumes,
  workerCacheVolume,
} from "../podman/mod.ts";

/** The run's worker bundle as the podman stock source uploads it. */
export interface PodmanWorkerBundle {
  /** The bundle (`dist/work.js`). */
  js: Uint8Array;
  /** sha256 (hex) of {@link js}. */
  sha256: string;
}

/** Reads a worker bundle file and hashes it; a missing file is a {@link UsageError}. */
export function readPodmanWorkerBundle(path: string): PodmanWorkerBundle {
  let js: Uint8Array;
  try {
    js = Deno.readFileSync(path);
  } catch (e) {
    throw new UsageError(`worker bundle ${path}: ${(e as Error).message} (deno task bundle)`);
  }
  return { js, sha256: createHash("sha256").update(js).digest("hex") };
}

/** `--deno-image` cannot be used on the podman host (missing and not pullable). */
export class DenoImageError extends UsageError {
  /** `image` is not usable on `host`, as `message` says. */
  constructor(readonly image: string, readonly host: string, message: string) {
    super(message);
  }
}

/** The stock worker cache failed to populate (the helper container failed). */
export class StockCacheError extends PodmanError {}

/** What {@link ensureStockVolumes} needs. */
export interface StockCacheOptions {
  client: PodmanClient;
  denoImage: string;
  bundle: PodmanWorkerBundle;
  /** The host, for messages. */
  where: string;
  /** Pull the Deno image when it is missing. */
  pull: boolean;
  runId: string;
  /** Name of the helper container (the run's). */
  helperName: string;
  /** Labels of the helper container (the run label is always added). */
  labels: Record<string, string>;
  /** The helper's id as soon as it exists, and when it is gone (for dispose). */
  onHelper?: (id: string, alive: boolean) => void;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** What {@link ensureStockVolumes} found and did. */
export interface StockCacheResult extends StockVolumes {
  /** Whether deno was copied and the bundle uploaded by this call (else reused). */
  populated: { deno: boolean; worker: boolean };
}

/**
 * Makes sure the host has complete deno and worker-bundle cache volumes for this Deno image
 * and bundle; returns their names. Throws {@link DenoImageError} (exit 2) before creating
 * anything when the Deno image is missing and cannot be pulled.
 */
export async function ensureStockVolumes(o: StockCacheOptions): Promise<StockCacheResult> {
  const { client, denoImage, signal } = o;
  if (!(await client.imageExists(denoImage, { signal }))) {
    if (!o.pull) {
      throw new DenoImageError(denoImage, o.where, `--deno-image ${denoImage}: not on ${o.where}`);
    }
    o.log(`podman: pulling ${denoImage} on ${o.where}`);
    try {
      await client.pullImage(denoImage, { signal });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new DenoImageError(
        denoImage,
        o.where,
        `--deno-image ${denoImage}: not on ${o.where} and cannot be pulled: ` +
          (e as Error).message.replace(/\s+/g, " "),
      );
    }
  }
  const imageId = (await client.inspectImage(denoImage, { signal })).Id;
  const volumes: StockVolumes = {
    deno: denoCacheVolume(imageId),
    worker: workerCacheVolume(o.bundle.sha256),
  };
  await ensureVolume(client, volumes.deno, { [LABEL_CACHE]: "deno" }, signal);
  await ensureVolume(client, volumes.worker, { [LABEL_CACHE]: "worker" }, signal);
  const tag = o.runId.replace(/[^a-zA-Z0-9_.-]/g, "-");
  // A created, never-started helper: its mounts give the archive endpoint the volumes.
  const probe = (denoMarker?: string, workerSha256?: string) =>
    cacheHelperSpec({
      name: o.helperName,
      runId: o.runId,
      denoImage,
      volumes,
      tag,
      labels: o.labels,
      ...(denoMarker ? { denoMarker } : {}),
      ...(workerSha256 ? { workerSha256 } : {}),
    });
  await client.removeContainer(o.helperName, { signal });
  let id = await client.createContainer(probe(), { signal });
  o.onHelper?.(id, true);
  let needDeno: boolean;
  let needWorker: boolean;
  try {
    needDeno = await readMarker(client, id, STOCK_DENO_DIR, signal) !== imageId;
    needWorker = await readMarker(client, id, STOCK_WORKER_DIR, signal) !== o.bundle.sha256;
  } finally {
    await client.removeContainer(id, { signal: AbortSignal.timeout(30_000) }).catch(() => {});
    o.onHelper?.(id, false);
  }
  if (!needDeno && !needWorker) {
    o.log(`podman: deno (${volumes.deno}) and worker bundle (${volumes.worker}) reused`);
    return { ...volumes, populated: { deno: false, worker: false } };
  }
  // The real helper: its environment says what to do.
  id = await client.createContainer(
    probe(needDeno ? imageId : undefined, needWorker ? o.bundle.sha256 : undefined),
    { signal },
  );
  o.onHelper?.(id, true);
  const out: string[] = [];
  let code: number;
  try {
    if (needWorker) {
      const archive = await tarOf(`work.js.${tag}`, o.bundle.js);
      await client.putArchive(id, STOCK_WORKER_DIR, archive, { signal });
    }
    ({ exitCode: code } = await runCreatedContainer(client, id, {
      signal,
      onLine: (l) => out.push(l),
    }));
  } finally {
    o.onHelper?.(id, false);
  }
  if (code !== 0) {
    throw new StockCacheError(
      `podman: filling the worker cache on ${o.where} from ${denoImage} failed (exit ${code})` +
        (out.length ? `: ${out.slice(-3).join(" | ")}` : ""),
      0,
    );
  }
  for (const l of out) o.log(`podman: ${l}`);
  return { ...volumes, populated: { deno: needDeno, worker: needWorker } };
}

/**
 * Makes the named volume unless it exists; one that another run creates at the same moment is
 * fine.
 */
export async function ensureVolume(
  client: Pick<PodmanClient, "volumeExists" | "createVolume">,
  name: string,
  labels: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  if (await client.volumeExists(name, { signal })) return;
  try {
    await client.createVolume(name, { signal, labels });
  } catch (e) {
    // Another run created it meanwhile: podman answers that with 500 ("volume already
    // exists"), not 409, so the volume's presence decides, not the status.
    if (!(e instanceof PodmanError) || !(await client.volumeExists(name, { signal }))) throw e;
  }
}

/** The marker of the volume mounted at `dir` in container `id`, or `undefined`. */
async function readMarker(
  client: PodmanClient,
  id: string,
  dir: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  const archive = await client.getArchive(id, `${dir}/${CACHE_MARKER}`, { signal });
  if (!archive) return undefined;
  const text = await firstFileOf(archive);
  return text === undefined ? undefined : new TextDecoder().decode(text).trim();
}

/** An uncompressed tar holding one file `name` (0644, root). */
function tarOf(name: string, data: Uint8Array): Promise<Uint8Array> {
  const pack = tar.pack();
  pack.entry({ name, mode: 0o644, uid: 0, gid: 0, size: data.length }, Buffer.from(data));
  pack.finalize();
  return collect(pack);
}

/** The content of the first regular file in an uncompressed tar. */
function firstFileOf(archive: Uint8Array): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const ex = tar.extract();
    let found: Uint8Array | undefined;
    ex.on("entry", (header, stream, next) => {
      if (found !== undefined || header.type !== "file") {
        stream.resume();
        stream.on("end", next);
        return;
      }
      collect(stream).then((b) => {
        found = b;
        next();
      }, reject);
    });
    ex.on("finish", () => resolve(found));
    ex.on("error", reject);
    Readable.from([Buffer.from(archive)]).pipe(ex);
  });
}

async function collect(stream: AsyncIterable<unknown>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c as Uint8Array);
  return new Uint8Array(Buffer.concat(parts));
}
