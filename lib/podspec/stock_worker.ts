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
export const STOCK_WORKER_COMMAND: readonly string[] = Object.freeze([
  `${STOCK_BIN_DIR}/deno`,
  "run",
  "-A",
  "--no-prompt",
  `${STOCK_BIN_DIR}/work.js`,
]);

/** PATH of the worker container: the copied deno first (cosa's tools may call `deno`). */
export const STOCK_PATH = `${STOCK_BIN_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:` +
  "/sbin:/bin";

/** The run's worker bundle as it travels. */
export interface WorkerBundle {
  /** gzip of the bundle. */
  gzip: Uint8Array;
  /** sha256 (hex) of the uncompressed bundle. */
  sha256: string;
}

/** Name of the per-run ConfigMap holding the worker bundle. */
export function bundleConfigMapName(runId: string): string {
  return dnsLabel(`gp-${runToken(runId)}-worker`);
}

/** The per-run ConfigMap with the gzipped worker bundle (`binaryData`) and its sha256. */
export function bundleConfigMap(
  runId: string,
  bundle: WorkerBundle,
  opts: { namespace?: string } = {},
): V1ConfigMap {
  const cm: V1ConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: bundleConfigMapName(runId),
      labels: runLabels(runId, "worker-bundle"),
      annotations: { [BUNDLE_SHA256_ANNOTATION]: bundle.sha256 },
    },
    binaryData: { [STOCK_BUNDLE_KEY]: Buffer.from(bundle.gzip).toString("base64") },
  };
  if (opts.namespace) cm.metadata!.namespace = opts.namespace;
  return cm;
}

/**
 * The init container's program (`deno eval`): unpack the bundle, refuse it unless its sha256
 * is the run's, write it and a copy of this deno into {@link STOCK_BIN_DIR}.
 */
export function stockInitScript(sha256: string): string {
  return [
    `const want = ${JSON.stringify(sha256)};`,
    `const gz = await Deno.readFile(${JSON.stringify(`${STOCK_BUNDLE_DIR}/${STOCK_BUNDLE_KEY}`)});`,
    `const js = new Uint8Array(await new Response(new Blob([gz]).stream()` +
    `.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());`,
    `const got = [...new Uint8Array(await crypto.subtle.digest("SHA-256", js))]` +
    `.map((b) => b.toString(16).padStart(2, "0")).join("");`,
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
}): {
  volumes: V1Volume[];
  init: V1Container;
  command: string[];
  env: V1EnvVar[];
  mount: { name: string; mountPath: string; readOnly: boolean };
} {
  return {
    volumes: [
      { name: "gangplank-bin", emptyDir: {} },
      {
        name: "gangplank-bundle",
        configMap: { name: bundleConfigMapName(opts.runId), defaultMode: 0o444 },
      },
    ],
    init: {
      name: "deno",
      image: opts.denoImage,
      command: ["deno", "eval", stockInitScript(opts.sha256)],
      env: [{ name: "DENO_DIR", value: "/tmp/deno" }, { name: "DENO_NO_UPDATE_CHECK", value: "1" }],
      volumeMounts: [
        { name: "gangplank-bin", mountPath: STOCK_BIN_DIR },
        { name: "gangplank-bundle", mountPath: STOCK_BUNDLE_DIR, readOnly: true },
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
