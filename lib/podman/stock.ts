/**
 * Podman workers on the stock cosa image (`--worker-source stock`) when this machine's deno
 * cannot be bound in (a remote host, perhaps of another architecture): two cache volumes on
 * the podman host hold what the image lacks. One holds `deno`, copied out of the Deno image
 * (`--deno-image`) by a short-lived helper container of that image, so it is the host's own
 * architecture; it is named after the image id. The other holds the run's worker bundle
 * (architecture-independent JS), uploaded through the archive endpoint into a created,
 * never-started helper container; it is named after the bundle's sha256. A volume counts only
 * when its completion marker (written last, by rename, after the content was checked) holds
 * the expected image id or sha256, so a half-populated volume is populated again.
 *
 * Everything here is pure: names, the helper's program and spec, the stage's mounts.
 *
 * @module
 */
import { LABEL_RUN_ID, pathWithFirst, workerCommand } from "../workspec/worker_image.ts";

/** Where the deno cache volume is mounted (helper: read-write; stages: read-only). */
export const STOCK_DENO_DIR = "/gangplank/deno";
/** Where the worker bundle cache volume is mounted (helper: read-write; stages: read-only). */
export const STOCK_WORKER_DIR = "/gangplank/worker";
/** The completion marker in each cache volume: the image id, or the bundle's sha256. */
export const CACHE_MARKER = ".complete";
/** Label of the cache volumes (`deno` or `worker`); they carry no run id and outlive runs. */
export const LABEL_CACHE = "gangplank.cache";

/** The worker command of a stage on the stock image with the cache volumes. */
export const STOCK_VOLUME_COMMAND = workerCommand(
  `${STOCK_DENO_DIR}/deno`,
  `${STOCK_WORKER_DIR}/work.js`,
);

/** PATH of such a stage: the copied deno first. */
export const STOCK_VOLUME_PATH = pathWithFirst(STOCK_DENO_DIR);

/** The two cache volumes a stage mounts. */
export interface StockVolumes {
  /** Volume holding `deno`. */
  deno: string;
  /** Volume holding `work.js`. */
  worker: string;
}

/** Name of the deno cache volume for a Deno image id (`sha256:...` or bare hex). */
export function denoCacheVolume(imageId: string): string {
  return `gangplank-deno-${imageId.replace(/^sha256:/, "").slice(0, 32)}`;
}

/** Name of the worker bundle cache volume for the bundle's sha256 (hex). */
export function workerCacheVolume(sha256: string): string {
  return `gangplank-worker-${sha256}`;
}

/**
 * The helper's program (`deno eval`, as root in the Deno image). Environment: `GP_TAG` (a
 * per-run suffix for temporary names), `GP_DENO_MARKER` (set: copy this deno into
 * {@link STOCK_DENO_DIR}, check the copy, mark it with this value), `GP_WORKER_SHA256` (set:
 * check the uploaded `work.js.<tag>` against it, then put it in place and mark it). Files
 * appear under their final names by rename, the marker last; exit 3 on a mismatch.
 */
export function cachePopulateScript(): string {
  return [
    `const env = (k) => Deno.env.get(k) ?? "";`,
    `const tag = env("GP_TAG");`,
    `const hex = async (b) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", b))]` +
    `.map((x) => x.toString(16).padStart(2, "0")).join("");`,
    `const place = async (dir, tmp, file, marker) => {`,
    `  await Deno.rename(dir + "/" + tmp, dir + "/" + file);`,
    `  await Deno.writeTextFile(dir + "/${CACHE_MARKER}." + tag, marker);`,
    `  await Deno.rename(dir + "/${CACHE_MARKER}." + tag, dir + "/${CACHE_MARKER}");`,
    `};`,
    `if (env("GP_DENO_MARKER")) {`,
    `  const dir = ${JSON.stringify(STOCK_DENO_DIR)}, tmp = "deno." + tag;`,
    `  const src = await Deno.readFile(Deno.execPath());`,
    `  await Deno.writeFile(dir + "/" + tmp, src, { mode: 0o755 });`,
    `  await Deno.chmod(dir + "/" + tmp, 0o755);`,
    `  const want = await hex(src), got = await hex(await Deno.readFile(dir + "/" + tmp));`,
    `  if (got !== want) { console.error("deno copy: sha256 " + got + ", expected " + want); ` +
    `Deno.exit(3); }`,
    `  await place(dir, tmp, "deno", env("GP_DENO_MARKER"));`,
    `  console.log("deno " + Deno.version.deno + " copied (" + Deno.build.arch + ")");`,
    `}`,
    `if (env("GP_WORKER_SHA256")) {`,
    `  const dir = ${JSON.stringify(STOCK_WORKER_DIR)}, tmp = "work.js." + tag;`,
    `  const want = env("GP_WORKER_SHA256");`,
    `  let got = "missing";`,
    `  try { got = await hex(await Deno.readFile(dir + "/" + tmp)); } catch { /* below */ }`,
    `  if (got !== want) { await Deno.remove(dir + "/" + tmp).catch(() => {}); ` +
    `console.error("worker bundle: sha256 " + got + ", expected " + want); Deno.exit(3); }`,
    `  await Deno.chmod(dir + "/" + tmp, 0o644);`,
    `  await place(dir, tmp, "work.js", want);`,
    `  console.log("worker bundle " + want.slice(0, 12) + " in place");`,
    `}`,
  ].join("\n");
}

/** Inputs of {@link cacheHelperSpec}. */
export interface CacheHelperInput {
  /** Container name (the run's). */
  name: string;
  runId: string;
  denoImage: string;
  volumes: StockVolumes;
  /** Per-run suffix of temporary file names. */
  tag: string;
  /** Copy deno and mark the volume with this (the image id); omit when it is in place. */
  denoMarker?: string;
  /** Check and place the uploaded bundle of this sha256; omit when it is in place. */
  workerSha256?: string;
  /** More labels (the run label is always set). */
  labels?: Record<string, string>;
}

/** SpecGenerator body of the helper container that fills the cache volumes. Fresh object. */
export function cacheHelperSpec(i: CacheHelperInput): Record<string, unknown> {
  return {
    name: i.name,
    image: i.denoImage,
    entrypoint: ["deno"],
    command: ["eval", cachePopulateScript()],
    user: "0:0",
    env: {
      DENO_DIR: "/tmp/deno",
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
      GP_TAG: i.tag,
      ...(i.denoMarker ? { GP_DENO_MARKER: i.denoMarker } : {}),
      ...(i.workerSha256 ? { GP_WORKER_SHA256: i.workerSha256 } : {}),
    },
    labels: { ...i.labels, [LABEL_RUN_ID]: i.runId },
    netns: { nsmode: "host" },
    volumes: [
      { Name: i.volumes.deno, Dest: STOCK_DENO_DIR, Options: [] },
      { Name: i.volumes.worker, Dest: STOCK_WORKER_DIR, Options: [] },
    ],
    stdin: false,
    terminal: false,
  };
}

/** What a stage's spec gets from {@link StockVolumes}: read-only mounts, command, PATH. */
export function stockStageParts(v: StockVolumes): {
  volumes: Record<string, unknown>[];
  entrypoint: string[];
  command: string[];
  path: string;
} {
  return {
    volumes: [
      { Name: v.deno, Dest: STOCK_DENO_DIR, Options: ["ro"] },
      { Name: v.worker, Dest: STOCK_WORKER_DIR, Options: ["ro"] },
    ],
    entrypoint: [STOCK_VOLUME_COMMAND[0]],
    command: STOCK_VOLUME_COMMAND.slice(1),
    path: STOCK_VOLUME_PATH,
  };
}
