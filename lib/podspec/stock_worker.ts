/**
 * Workers on the stock cosa image (`--worker-source stock`, the default): the image carries
 * neither deno nor the worker, so each worker pod gets them from the run. An init container
 * running a small public Deno image copies its `deno` binary into an emptyDir and unpacks the
 * run's worker bundle from a per-run ConfigMap (gzip, `binaryData`) after checking its sha256;
 * the worker container then starts that deno on that bundle. The worker image only needs glibc
 * (every cosa image has it). `--worker-source image` keeps the image's own deno and worker
 * (`Containerfile`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { V1ConfigMap, V1Container, V1EnvVar, V1Volume } from "@kubernetes/client-node";
import { dnsLabel, runLabels, runToken } from "./names.ts";
import { pathWithFirst, workerCommand } from "../workspec/worker_image.ts";

/**
 * Default image the deno binary is copied from: the Deno project's distroless image, pinned to
 * the Deno version this project is built and tested with (`--deno-image` to change, e.g. to a
 * mirror or an `@sha256:` digest). Any image with a glibc `deno` on its PATH works.
 */
export const DEFAULT_DENO_IMAGE = "docker.io/denoland/deno:distroless-2.9.6";

/** Where deno and the worker bundle are put in the worker pod (an emptyDir). */
export const STOCK_BIN_DIR = "/gangplank/bin";
/** Where the per-run ConfigMap with the gzipped bundle is mounted (init container only). */
export const STOCK_BUNDLE_DIR = "/gangplank/bundle";
/** Key of the gzipped worker bundle in the ConfigMap. */
export const STOCK_BUNDLE_KEY = "work.js.gz";
/** Annotation on the ConfigMap carrying the bundle's sha256 (hex, of the uncompressed file). */
export const BUNDLE_SHA256_ANNOTATION = "gangplank.coreos-assembler.coreos.com/worker-sha256";

/** The worker command with the copied deno and bundle. */
export const STOCK_WORKER_COMMAND = workerCommand(
  `${STOCK_BIN_DIR}/deno`,
  `${STOCK_BIN_DIR}/work.js`,
);

/** PATH of the worker container: the copied deno first. */
export const STOCK_PATH = pathWithFirst(STOCK_BIN_DIR);

/** The run's worker bundle as it travels. */
export interface WorkerBundle {
  /** gzip of the bundle. */
  gzip: Uint8Array;
  /** sha256 (hex) of the uncompressed bundle. */
  sha256: string;
}

/**
 * Bytes of gzip per ConfigMap: base64 makes them 4/3 larger, and a ConfigMap holds at most
 * 1 MiB, so a bundle larger than this travels in several ConfigMaps (parts, in order).
 */
export const BUNDLE_PART_BYTES = 700 * 1024;

/** How many ConfigMaps a bundle of `gzipBytes` takes (at least one). */
export function bundlePartCount(gzipBytes: number): number {
  return Math.max(1, Math.ceil(gzipBytes / BUNDLE_PART_BYTES));
}

/** Name of the per-run ConfigMap holding part `index` of the worker bundle. */
export function bundleConfigMapName(runId: string, index = 0): string {
  return dnsLabel(`gp-${runToken(runId)}-worker-${index}`);
}

/**
 * The per-run ConfigMaps with the gzipped worker bundle (`binaryData`, split in parts of
 * {@link BUNDLE_PART_BYTES}) and its sha256.
 */
export function bundleConfigMaps(
  runId: string,
  bundle: WorkerBundle,
  opts: { namespace?: string } = {},
): V1ConfigMap[] {
  const n = bundlePartCount(bundle.gzip.length);
  return Array.from({ length: n }, (_, i) => {
    const part = bundle.gzip.subarray(i * BUNDLE_PART_BYTES, (i + 1) * BUNDLE_PART_BYTES);
    const cm: V1ConfigMap = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: bundleConfigMapName(runId, i),
        labels: runLabels(runId, "worker-bundle"),
        annotations: { [BUNDLE_SHA256_ANNOTATION]: bundle.sha256 },
      },
      binaryData: { [STOCK_BUNDLE_KEY]: Buffer.from(part).toString("base64") },
    };
    if (opts.namespace) cm.metadata!.namespace = opts.namespace;
    return cm;
  });
}

/**
 * The init container's program (`deno eval`): unpack the bundle, refuse it unless its sha256
 * is the run's, write it and a copy of this deno into {@link STOCK_BIN_DIR}.
 */
export function stockInitScript(sha256: string, parts = 1): string {
  return [
    `const want = ${JSON.stringify(sha256)};`,
    `const gz = [];`,
    `for (let i = 0; i < ${parts}; i++) gz.push(await Deno.readFile(` +
    `${JSON.stringify(STOCK_BUNDLE_DIR)} + "/" + i + ${JSON.stringify(`/${STOCK_BUNDLE_KEY}`)}));`,
    `let js = new Uint8Array();`,
    `let got = "not a valid gzip";`,
    `try { js = new Uint8Array(await new Response(new Blob(gz).stream()` +
    `.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());`,
    `got = [...new Uint8Array(await crypto.subtle.digest("SHA-256", js))]` +
    `.map((b) => b.toString(16).padStart(2, "0")).join(""); } catch { /* reported below */ }`,
    `if (got !== want) { console.error("worker bundle: sha256 " + got + ", expected " + want); ` +
    `Deno.exit(3); }`,
    `await Deno.writeFile(${JSON.stringify(`${STOCK_BIN_DIR}/work.js`)}, js, { mode: 0o644 });`,
    `await Deno.copyFile(Deno.execPath(), ${JSON.stringify(`${STOCK_BIN_DIR}/deno`)});`,
    `await Deno.chmod(${JSON.stringify(`${STOCK_BIN_DIR}/deno`)}, 0o755);`,
    `console.log("deno " + Deno.version.deno + " and worker " + got.slice(0, 12) + " ready");`,
  ].join("\n");
}

/** What a stock-image worker pod adds: volumes, the init container, command, env, mount. */
export function stockWorkerParts(opts: {
  runId: string;
  denoImage: string;
  sha256: string;
  /** ConfigMaps the bundle is split over (default 1). */
  parts?: number;
}): {
  volumes: V1Volume[];
  init: V1Container;
  command: string[];
  env: V1EnvVar[];
  mount: { name: string; mountPath: string; readOnly: boolean };
} {
  const parts = Array.from({ length: opts.parts ?? 1 }, (_, i) => i);
  return {
    volumes: [
      { name: "gangplank-bin", emptyDir: {} },
      ...parts.map((i) => ({
        name: `gangplank-bundle-${i}`,
        configMap: { name: bundleConfigMapName(opts.runId, i), defaultMode: 0o444 },
      })),
    ],
    init: {
      name: "deno",
      image: opts.denoImage,
      command: ["deno", "eval", stockInitScript(opts.sha256, parts.length)],
      env: [{ name: "DENO_DIR", value: "/tmp/deno" }, { name: "DENO_NO_UPDATE_CHECK", value: "1" }],
      volumeMounts: [
        { name: "gangplank-bin", mountPath: STOCK_BIN_DIR },
        ...parts.map((i) => ({
          name: `gangplank-bundle-${i}`,
          mountPath: `${STOCK_BUNDLE_DIR}/${i}`,
          readOnly: true,
        })),
      ],
      resources: {
        requests: { cpu: "100m", memory: "64Mi" },
        limits: { cpu: "1", memory: "512Mi" },
      },
    },
    command: [...STOCK_WORKER_COMMAND],
    env: [{ name: "PATH", value: STOCK_PATH }],
    mount: { name: "gangplank-bin", mountPath: STOCK_BIN_DIR, readOnly: true },
  };
}
