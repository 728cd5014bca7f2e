/**
 * The podman container spec (libpod SpecGenerator JSON) of one stage's worker: a pure function
 * of its inputs, following Gangplank's podman mode (§8) — privileged, host network, `/dev/kvm`
 * and `/dev/fuse` when the host has them, `/srv` as a bind mount or a named volume, user
 * `builder` — with every choice overridable, and the relay secret mounted as a podman secret
 * file instead of plain environment.
 *
 * @module
 */
import {
  LABEL_RUN_ID,
  LABEL_STAGE_ID,
  RELAY_SECRET_FILE,
  WORKER_COMMAND,
  WORKER_DENO_PATH,
  WORKER_ENV,
  WORKER_SCRIPT_PATH,
  WORKER_WORKDIR,
} from "../workspec/worker_image.ts";
import { stockStageParts, type StockVolumes } from "./stock.ts";

/** A secret to mount as a file: podman secret `name`, file `/run/secrets/<target>`. */
export interface SecretMount {
  /** podman secret name. */
  name: string;
  /** File name under `/run/secrets/`. */
  target: string;
  /** Environment variable that tells the worker the file's path. */
  env: string;
}

/** Inputs of {@link workerContainerSpec}. */
export interface WorkerContainerInput {
  runId: string;
  stageId: string;
  stageIndex: number;
  image: string;
  /** Non-secret environment of the stage. */
  env: Record<string, string>;
  secrets?: SecretMount[];
  /** `/srv`: a bind mount of this host path, else the named volume {@link volume}. */
  srvDir?: string;
  /** Named volume mounted at `/srv` when no `srvDir` (created by the caller). */
  volume?: string;
  /** Default true. */
  privileged?: boolean;
  /** Device paths to pass through (the caller keeps only those the host has). */
  devices?: string[];
  /** Default `builder`. */
  user?: string;
  /** Numeric uid/gid owning secret files (must be the user's). Default: from `user`. */
  secretUid?: number;
  /** Network namespace: `host` (default), `private`, ... */
  network?: string;
  /**
   * Host paths of deno and the bundled worker to bind read-only at the contract paths (local
   * hosts); omitted when the image must carry them (remote hosts).
   */
  mountWorker?: { deno: string; worker: string };
  /**
   * Cache volumes holding deno and the worker bundle (stock image on a remote host, see
   * `stock.ts`), mounted read-only; the worker runs from them.
   */
  stockVolumes?: StockVolumes;
  /** More labels (the run and stage labels are always set). */
  labels?: Record<string, string>;
  /** Merged last (escape hatch for options this function does not model). */
  extra?: Record<string, unknown>;
}

/** A podman container name for a stage: `gangplank-<run>-worker-<index>`, podman-safe. */
export function workerContainerName(runId: string, stageIndex: number): string {
  const safe = runId.replace(/[^a-zA-Z0-9_.-]/g, "-").replace(/^[^a-zA-Z0-9]+/, "");
  return `gangplank-${safe}-worker-${stageIndex}`;
}

/** The uid for a user name or `uid[:gid]` (0 for root, 1000 for cosa's `builder`). */
export function uidOf(user: string): number | undefined {
  const n = Number(user.split(":")[0]);
  if (Number.isInteger(n) && n >= 0) return n;
  if (user === "root") return 0;
  if (user === "builder") return 1000;
  return undefined;
}

/** Builds the SpecGenerator body for one stage's worker container. Returns a fresh object. */
export function workerContainerSpec(i: WorkerContainerInput): Record<string, unknown> {
  const user = i.user ?? "builder";
  const uid = i.secretUid ?? uidOf(user) ?? 0;
  const env: Record<string, string> = {
    ...WORKER_ENV,
    ...i.env,
    // Gangplank's podman mode (§8): no cluster, and a runtime dir inside /srv.
    COSA_FORCE_NO_CLUSTER: "1",
    XDG_RUNTIME_DIR: WORKER_WORKDIR,
  };
  for (const s of i.secrets ?? []) env[s.env] = `/run/secrets/${s.target}`;
  const mounts: Record<string, unknown>[] = [];
  const volumes: Record<string, unknown>[] = [];
  if (i.srvDir) {
    mounts.push({ destination: WORKER_WORKDIR, type: "bind", source: i.srvDir, options: ["rw"] });
  } else if (i.volume) {
    volumes.push({ Name: i.volume, Dest: WORKER_WORKDIR, Options: [] });
  }
  if (i.mountWorker) {
    mounts.push(
      { destination: WORKER_DENO_PATH, type: "bind", source: i.mountWorker.deno, options: ["ro"] },
      {
        destination: WORKER_SCRIPT_PATH,
        type: "bind",
        source: i.mountWorker.worker,
        options: ["ro"],
      },
    );
  }
  const stock = i.stockVolumes ? stockStageParts(i.stockVolumes) : undefined;
  if (stock) {
    volumes.push(...stock.volumes);
    env.PATH = stock.path;
  }
  const spec: Record<string, unknown> = {
    name: workerContainerName(i.runId, i.stageIndex),
    image: i.image,
    entrypoint: stock?.entrypoint ?? [WORKER_COMMAND[0]],
    command: stock?.command ?? WORKER_COMMAND.slice(1),
    env,
    labels: { ...i.labels, [LABEL_RUN_ID]: i.runId, [LABEL_STAGE_ID]: i.stageId },
    work_dir: WORKER_WORKDIR,
    user,
    privileged: i.privileged ?? true,
    no_new_privileges: false,
    umask: "0022",
    netns: { nsmode: i.network ?? "host" },
    devices: (i.devices ?? []).map((path) => ({ path })),
    mounts,
    volumes,
    secrets: (i.secrets ?? []).map((s) => ({
      Source: s.name,
      Target: s.target,
      UID: uid,
      GID: uid,
      Mode: 0o400,
    })),
    stdin: false,
    terminal: false,
    ...i.extra,
  };
  return spec;
}

/** The file name under `/run/secrets/` for the relay secret key. */
export const RELAY_SECRET_TARGET: string = RELAY_SECRET_FILE.slice("/run/secrets/".length);
