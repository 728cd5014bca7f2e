/**
 * Command-line side of the podman backend, shared by `podman-run` and `submit --backend
 * podman`: the container host and SSH settings from the podman flags (declared in
 * lib/cli/backends/podman.ts) and their environment fallbacks (`CONTAINER_HOST`,
 * `CONTAINER_SSHKEY`, `SSH_AUTH_SOCK`), and building a {@link PodmanExecutor} from them. The
 * environment is passed in, never read.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors/mod.ts";
import {
  assertSshCredentials,
  type ContainerHost,
  type HostKeyPolicy,
  type KnownHostEntry,
  parseContainerHost,
  parseKnownHosts,
} from "../ssh/mod.ts";
import { PodmanExecutor, type PodmanExecutorOptions } from "./podman.ts";
import { readPodmanWorkerBundle } from "./podman_stock.ts";
import { DEFAULT_DENO_IMAGE } from "../podspec/stock_worker.ts";

/** The podman-specific options (the rest are `submit`'s). */
export interface PodmanRunOptions {
  /** `--remote` (default `$CONTAINER_HOST`, else the local podman socket). */
  remote?: string;
  /** Where `remote` came from, for error messages. */
  remoteSource?: "--remote" | "CONTAINER_HOST";
  /** `--sshkey` (default `$CONTAINER_SSHKEY`). */
  sshKey?: string;
  /** `--known-hosts FILE` (default `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`). */
  knownHosts?: string;
  /** `--insecure-ignore-host-key`. */
  insecureIgnoreHostKey: boolean;
  /** `-i/--image` (default quay.io/coreos-assembler/coreos-assembler:latest). */
  image: string;
  /** `-S/--srv-dir`: a directory on the podman host bind-mounted at /srv. */
  srvDir?: string;
  /** `--user` of the worker containers (default builder). */
  user?: string;
  /** `--no-privileged`. */
  privileged: boolean;
  /** `--run-id` (for `--cleanup`: only that run's leftovers). */
  runId?: string;
  /** Extra environment of every worker container. */
  env?: Record<string, string>;
  /** `--keepalive SECONDS` between SSH keepalives (3 unanswered = connection lost). */
  keepaliveSeconds: number;
  /**
   * `--worker-source`: `stock` (default; any glibc image: this deno and {@link workerBundle}
   * bound in on a local host, else deno from {@link denoImage} and the bundle uploaded into
   * cache volumes on the host) or `image` (the image carries deno and the worker).
   */
  workerSource?: "stock" | "image";
  /** `--deno-image` (stock source; default lib/podspec's `DEFAULT_DENO_IMAGE`). */
  denoImage?: string;
  /** The bundled worker of the stock source (local default: the checkout's `dist/work.js`). */
  workerBundle?: string;
  /** The coordinator's pid, labelled on what the run creates (see `--cleanup`). */
  coordinatorPid?: number;
}

/** The container host: `--remote`/`CONTAINER_HOST`, else the local podman socket. */
export function containerHostOf(
  p: PodmanRunOptions,
  env: Record<string, string | undefined>,
  uid: number | null,
): ContainerHost {
  const user = env.USER || env.LOGNAME || (uid === 0 ? "root" : "");
  if (p.remote) {
    return parseContainerHost(p.remote, user, p.remoteSource ?? "--remote");
  }
  const sock = uid === 0 || !env.XDG_RUNTIME_DIR
    ? "/run/podman/podman.sock"
    : `${env.XDG_RUNTIME_DIR}/podman/podman.sock`;
  return { kind: "unix", socketPath: sock };
}

function hostKeyPolicy(
  p: PodmanRunOptions,
  env: Record<string, string | undefined>,
): HostKeyPolicy {
  if (p.insecureIgnoreHostKey) return { kind: "insecure-ignore" };
  const files = p.knownHosts ? [p.knownHosts] : [
    ...(env.HOME ? [join(env.HOME, ".ssh", "known_hosts")] : []),
    "/etc/ssh/ssh_known_hosts",
  ];
  const entries: KnownHostEntry[] = [];
  for (const f of files) {
    try {
      entries.push(...parseKnownHosts(Deno.readTextFileSync(f)));
    } catch (e) {
      if (p.knownHosts) throw new UsageError(`--known-hosts: ${f}: ${(e as Error).message}`);
    }
  }
  return { kind: "known-hosts", entries, files: files.filter((f) => existsSync(f)) };
}

function readKey(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new UsageError(`--sshkey/CONTAINER_SSHKEY: ${path}: ${(e as Error).message}`);
  }
}

/**
 * Creates the executor from the parsed options; reads the key and known_hosts files (no
 * connection is made until the executor is used).
 *
 * @example
 * ```ts
 * const p = { image: DEFAULT_WORKER_IMAGE, insecureIgnoreHostKey: false, privileged: true,
 *   keepaliveSeconds: 5, remote: env.CONTAINER_HOST };
 * const exec = createPodmanExecutor(p, env, uid, console.error);
 * ```
 */
export function createPodmanExecutor(
  p: PodmanRunOptions,
  env: Record<string, string | undefined>,
  /** The caller's uid (picks the rootless socket and the default SSH user's fallback). */
  uid: number | null,
  log: (line: string) => void,
): PodmanExecutor {
  const host = containerHostOf(p, env, uid);
  const ssh = host.kind === "ssh"
    ? {
      privateKey: p.sshKey ? readKey(p.sshKey) : undefined,
      privateKeySource: p.sshKey,
      agentSocket: env.SSH_AUTH_SOCK || undefined,
      hostKeys: hostKeyPolicy(p, env),
      keepaliveIntervalMs: p.keepaliveSeconds * 1000,
      keepaliveCountMax: 3,
    }
    : undefined;
  // Bad input is reported before the run creates anything (work dir, relay, containers).
  if (host.kind === "ssh") assertSshCredentials({ host: host.host, port: host.port, ...ssh });
  let worker: Pick<PodmanExecutorOptions, "mountWorker" | "stock"> = {};
  if (p.workerSource === "image") worker = { mountWorker: false };
  else if (host.kind === "unix" && !p.denoImage) {
    if (p.workerBundle) {
      worker = {
        mountWorker: { deno: Deno.realPathSync(Deno.execPath()), worker: p.workerBundle },
      };
    }
  } else {
    if (!p.workerBundle) {
      throw new UsageError(
        "--worker-source stock needs the bundled worker work.js (deno task bundle), or " +
          "--worker-source image with an image that has it",
      );
    }
    const bundle = readPodmanWorkerBundle(p.workerBundle);
    worker = { stock: { denoImage: p.denoImage || DEFAULT_DENO_IMAGE, bundle } };
  }
  if (p.insecureIgnoreHostKey && host.kind === "ssh") {
    log("warning: --insecure-ignore-host-key: the SSH host key is NOT verified");
  }
  return new PodmanExecutor({
    host,
    ssh,
    image: p.image,
    srvDir: p.srvDir,
    user: p.user,
    privileged: p.privileged,
    ...(p.env ? { env: p.env } : {}),
    ...(p.coordinatorPid !== undefined ? { coordinatorPid: p.coordinatorPid } : {}),
    ...worker,
    log,
  });
}
