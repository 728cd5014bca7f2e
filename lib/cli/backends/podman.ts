/**
 * `--backend podman` (and `podman-run`, Gangplank's `pod --podman`): every stage's worker is a
 * podman container, on this host or on a remote one over SSH (`--remote` / `CONTAINER_HOST`).
 *
 * @module
 */
import { UsageError } from "../../errors/mod.ts";
import { DEFAULT_WORKER_IMAGE } from "../../workspec/worker_image.ts";
import type { PodmanRunOptions } from "../../executors/podman_cli.ts";
import { type FlagDef, positiveInt } from "../flags.ts";
import { workerSourceOptions } from "./worker_source.ts";
import type { SubmitOptions } from "../submit_options.ts";
import type { BackendContext, BackendDef, BackendRuntime } from "./types.ts";

/** Flags of the podman backend. */
export const PODMAN_FLAGS: readonly FlagDef[] = [
  {
    flags: "--remote <uri>",
    help: "podman API: ssh://[user@]host[:port]/socket or unix:///socket (env CONTAINER_HOST)",
    group: "podman",
  },
  {
    flags: "--sshkey <file>",
    help: "SSH private key for --remote (env CONTAINER_SSHKEY; ssh-agent used too)",
    group: "podman",
    old: ["--sshKey"],
  },
  {
    flags: "--known-hosts <file>",
    help: "known_hosts file to verify the SSH host key (default ~/.ssh/known_hosts)",
    group: "podman",
  },
  {
    flags: "--insecure-ignore-host-key",
    help: "do NOT verify the SSH host key (dangerous)",
    group: "podman",
  },
  {
    flags: "-S, --srv-dir <dir>",
    help: "directory on the podman host mounted at /srv (default: a volume per stage)",
    group: "podman",
    old: ["--srvDir"],
  },
  { flags: "--user <user>", help: "worker container user (default builder)", group: "podman" },
  { flags: "--no-privileged", help: "run workers unprivileged", group: "podman" },
  {
    flags: "--keepalive <seconds>",
    help: "seconds between SSH keepalives; 3 unanswered = connection lost",
    group: "podman",
    default: "5",
    parse: positiveInt("--keepalive"),
  },
];

/** The podman options of a parsed command line (flags, then `CONTAINER_*` fallbacks). */
export function podmanOptions(
  opts: SubmitOptions,
  env: Readonly<Record<string, string | undefined>>,
): PodmanRunOptions {
  const f = opts.flags;
  const str = (k: string) => (f[k] === undefined ? undefined : String(f[k]));
  return {
    remote: str("remote") ?? (env.CONTAINER_HOST || undefined),
    remoteSource: str("remote") !== undefined
      ? "--remote"
      : env.CONTAINER_HOST
      ? "CONTAINER_HOST"
      : undefined,
    sshKey: str("sshkey") ?? (env.CONTAINER_SSHKEY || undefined),
    knownHosts: str("knownHosts"),
    insecureIgnoreHostKey: f.insecureIgnoreHostKey === true,
    image: opts.image ?? DEFAULT_WORKER_IMAGE,
    srvDir: str("srvDir"),
    user: str("user"),
    privileged: f.privileged !== false,
    runId: opts.runId,
    keepaliveSeconds: (f.keepalive as number | undefined) ?? 5,
    ...workerSourceOptions(f),
  };
}

async function create(ctx: BackendContext) {
  const { createPodmanExecutor, containerHostOf } = await import(
    "../../executors/podman_cli.ts"
  );
  const p = podmanOptions(ctx.opts, ctx.env);
  if (ctx.pid !== undefined) p.coordinatorPid = ctx.pid;
  if (p.workerSource !== "image") {
    // The stock source: the run's worker, bind-mounted (local host) or uploaded (remote).
    p.workerBundle = ctx.install.workerBundle ??
      (ctx.install.bundleWorker ? await ctx.install.bundleWorker(ctx.signal) : undefined);
    if (!p.workerBundle) {
      const local = containerHostOf(p, ctx.env, ctx.uid).kind === "unix";
      throw new UsageError(
        `--backend podman${local ? " on a local socket" : ""} with --worker-source stock ` +
          "needs the bundled worker work.js next to this program (deno task bundle), or " +
          "--worker-source image with an image that has it",
      );
    }
  }
  return createPodmanExecutor(p, ctx.env, ctx.uid, ctx.log);
}

const runtime: BackendRuntime = {
  createExecutor: create,
  async cleanup(ctx) {
    const { createPodmanExecutor } = await import("../../executors/podman_cli.ts");
    // Cleaning up runs no worker: the worker source does not matter.
    const p: PodmanRunOptions = {
      ...podmanOptions(ctx.opts, ctx.env),
      workerSource: "image",
      denoImage: undefined,
    };
    await using executor = createPodmanExecutor(p, ctx.env, ctx.uid, ctx.log);
    const r = await executor.cleanup({
      runId: p.runId,
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(120_000)]),
    });
    ctx.out(
      `cleanup: removed ${r.containers.length} container(s), ${r.volumes.length} ` +
        `volume(s), ${r.secrets.length} secret(s) on ${executor.where}` +
        (p.runId ? ` (run ${p.runId})` : ""),
    );
    for (const c of r.containers) ctx.out(`  container ${c}`);
    for (const v of r.volumes) ctx.out(`  volume ${v}`);
    for (const s of r.secrets) ctx.out(`  secret ${s}`);
    for (const k of r.kept) ctx.out(`cleanup: left run ${k}`);
    return 0;
  },
};

/** The podman backend. */
export const podmanBackend: BackendDef = {
  name: "podman",
  summary: "workers are podman containers, here or over SSH",
  flags: PODMAN_FLAGS,
  load: () => Promise.resolve(runtime),
};
