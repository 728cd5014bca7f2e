/**
 * The worker image check of the podman backend: the image is there (or pulled), and either the
 * local deno and bundled worker are mounted into it, or (remote hosts) it carries both itself.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { GangplankError } from "../errors/mod.ts";
import { type PodmanClient, PodmanError, runContainer } from "../podman/mod.ts";
import { LABEL_RUN_ID, WORKER_DENO_PATH, WORKER_SCRIPT_PATH } from "../workspec/worker_image.ts";

/** The worker image cannot be used (missing, or lacking deno/the worker on a remote host). */
export class WorkerImageError extends GangplankError {
  /** `image` on `host` cannot run workers, as `message` says. */
  constructor(readonly image: string, readonly host: string, message: string) {
    super(message);
  }
}

/** What {@link ensureWorkerImage} checks, and with what. */
export interface ImageCheck {
  client: PodmanClient;
  image: string;
  /** The host, for messages (`this host`, `ssh://...`). */
  where: string;
  /** The host, for the pull notice. */
  hostLabel: string;
  /** Pull the image when it is missing. */
  pull: boolean;
  /** This machine's deno and bundled worker, mounted into the container (local hosts). */
  mount?: { deno: string; worker: string };
  /**
   * Whether the image must carry deno and the worker itself (checked by a probe container)
   * when nothing is mounted. Default true; false for `--worker-source stock` (cache volumes).
   */
  carried?: boolean;
  /** Name of the probe container. */
  probeName: string;
  /** Labels the probe container with the run. */
  runId?: string;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** Makes sure `o.image` can run the worker; throws a {@link WorkerImageError} saying why not. */
export async function ensureWorkerImage(o: ImageCheck): Promise<void> {
  const { client, image, where, signal } = o;
  if (!(await client.imageExists(image, { signal }))) {
    if (!o.pull) {
      throw new WorkerImageError(image, where, `image ${image} is not on ${where}`);
    }
    o.log(`podman: pulling ${image} on ${o.hostLabel}`);
    try {
      await client.pullImage(image, { signal });
    } catch (e) {
      throw new WorkerImageError(
        image,
        where,
        `image ${image} is not on ${where} and cannot be pulled: ${(e as Error).message}`,
      );
    }
  }
  const mount = o.mount;
  if (o.carried === false) return;
  if (mount) {
    if (!existsSync(mount.worker)) {
      throw new WorkerImageError(
        image,
        where,
        `the bundled worker ${mount.worker} does not exist (run \`deno task bundle\`)`,
      );
    }
    return;
  }
  // Remote (or no mount): the image itself must carry deno and the worker.
  const out: string[] = [];
  const probe = `try { Deno.statSync(${JSON.stringify(WORKER_SCRIPT_PATH)}); } ` +
    `catch { console.log("missing ${WORKER_SCRIPT_PATH}"); Deno.exit(3); }`;
  let code: number;
  try {
    ({ exitCode: code } = await runContainer(client, {
      name: o.probeName,
      image,
      entrypoint: [WORKER_DENO_PATH],
      command: ["eval", probe],
      labels: o.runId ? { [LABEL_RUN_ID]: o.runId } : {},
      env: { DENO_DIR: "/tmp/deno", NO_COLOR: "1" },
      netns: { nsmode: "host" },
    }, { signal, onLine: (l) => out.push(l) }));
  } catch (e) {
    if (e instanceof PodmanError && !signal.aborted) {
      code = -1;
      out.push(e.message);
    } else throw e;
  }
  if (code !== 0) {
    throw new WorkerImageError(
      image,
      where,
      `image ${image} on ${where} cannot run the worker: it needs deno at ` +
        `${WORKER_DENO_PATH} and the bundled worker at ${WORKER_SCRIPT_PATH} ` +
        `(build one with the Containerfile: podman build --build-arg BASE=... .)` +
        (out.length ? `; probe said: ${out.slice(-3).join(" | ")}` : ""),
    );
  }
}
