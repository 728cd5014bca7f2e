/**
 * Command-line side of the podman backend, shared by `podman-run` and `submit --backend
 * podman`: the podman flags (Gangplank's `pod --podman`: `--remote`, `--sshkey`, `-i`, `-S`,
 * ...), their environment fallbacks (`CONTAINER_HOST`, `CONTAINER_SSHKEY`, `SSH_AUTH_SOCK`),
 * and building a {@link PodmanExecutor} from them. The environment is passed in, never read.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors/mod.ts";
import { DEFAULT_WORKER_IMAGE } from "../podman/mod.ts";
import {
  assertSshCredentials,
  type ContainerHost,
  type HostKeyPolicy,
  type KnownHostEntry,
  parseContainerHost,
  parseKnownHosts,
} from "../ssh/mod.ts";
import { PodmanExecutor } from "./podman.ts";

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
  /** `-e/--env KEY=VALUE` (repeatable): extra environment of every worker container. */
  env: Record<string, string>;
  /** `--keepalive SECONDS` between SSH keepalives (3 unanswered = connection lost). */
  keepaliveSeconds: number;
  /** Whether `-a/--arch` was given (else the podman host's arch is used). */
  archGiven: boolean;
}

interface FlagDef {
  names: string[];
  key: keyof PodmanRunOptions | "noPrivileged";
  value: boolean;
  help: string;
}

const FLAGS: FlagDef[] = [
  {
    names: ["--remote"],
    key: "remote",
    value: true,
    help: "podman API: ssh://[user@]host[:port]/socket or unix:///socket (env CONTAINER_HOST)",
  },
  {
    names: ["--sshkey"],
    key: "sshKey",
    value: true,
    help: "SSH private key for --remote (env CONTAINER_SSHKEY; ssh-agent used too)",
  },
  {
    names: ["--known-hosts"],
    key: "knownHosts",
    value: true,
    help: "known_hosts file to verify the SSH host key (default ~/.ssh/known_hosts)",
  },
  {
    names: ["--insecure-ignore-host-key"],
    key: "insecureIgnoreHostKey",
    value: false,
    help: "do NOT verify the SSH host key (dangerous)",
  },
  {
    names: ["-i", "--image"],
    key: "image",
    value: true,
    help: `worker image (default ${DEFAULT_WORKER_IMAGE})`,
  },
  {
    names: ["-S", "--srv-dir", "--srvDir"],
    key: "srvDir",
    value: true,
    help: "directory on the podman host mounted at /srv (default: a volume per stage)",
  },
  { names: ["--user"], key: "user", value: true, help: "worker container user (default builder)" },
  {
    names: ["--no-privileged"],
    key: "noPrivileged",
    value: false,
    help: "run workers unprivileged",
  },
  {
    names: ["-e", "--env"],
    key: "env",
    value: true,
    help: "KEY=VALUE added to every worker's environment (repeatable)",
  },
  {
    names: ["--run-id"],
    key: "runId",
    value: true,
    help: "with --cleanup: only remove what that run left",
  },
  {
    names: ["--keepalive"],
    key: "keepaliveSeconds",
    value: true,
    help: "seconds between SSH keepalives; 3 unanswered = connection lost (default 5)",
  },
];

/** Help text of the podman flags. */
export const PODMAN_HELP: string = [
  "",
  "podman-run options (Gangplank's `pod --podman`):",
  ...FLAGS.map((f) => `  ${f.names.join(", ")}${f.value ? " <value>" : ""}`.padEnd(40) + f.help),
  "",
  "Work dir: -w/--work-dir; without it a NEW directory ./gangplank-work-XXXX is created",
  "(never the current directory). --cleanup removes containers, volumes and secrets left by",
  "interrupted runs (all gangplank runs on that host, or only --run-id's).",
  "",
].join("\n");

/**
 * Splits argv into the podman flags and the rest (handed to `submit`'s parser). Pure.
 *
 * @throws {UsageError} for a podman flag without its value.
 */
export function parsePodmanRunArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): { podman: PodmanRunOptions; rest: string[] } {
  const raw: Record<string, string | boolean> = {};
  const envs: Record<string, string> = {};
  const rest: string[] = [];
  let archGiven = !!env.COSA_FORCE_ARCH;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    const [name, inline] = a.startsWith("--") && a.includes("=")
      ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a, undefined];
    if (name === "-a" || name === "--arch") archGiven = true;
    const def = FLAGS.find((f) => f.names.includes(name));
    if (!def) {
      rest.push(a);
      continue;
    }
    if (!def.value) {
      raw[def.key] = true;
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined || (inline === undefined && v.startsWith("-") && v !== "-")) {
      throw new UsageError(`${name} needs a value`);
    }
    if (def.key === "env") {
      const eq = v.indexOf("=");
      if (eq <= 0) throw new UsageError(`${name} ${JSON.stringify(v)}: expected KEY=VALUE`);
      envs[v.slice(0, eq)] = v.slice(eq + 1);
      continue;
    }
    raw[def.key] = v;
  }
  const keepalive = raw.keepaliveSeconds === undefined ? 5 : Number(raw.keepaliveSeconds);
  if (!Number.isFinite(keepalive) || keepalive <= 0) {
    throw new UsageError(`--keepalive: expected a positive number of seconds`);
  }
  const str = (k: string) => (raw[k] === undefined ? undefined : String(raw[k]));
  return {
    podman: {
      remote: str("remote") ?? (env.CONTAINER_HOST || undefined),
      remoteSource: str("remote") !== undefined
        ? "--remote"
        : env.CONTAINER_HOST
        ? "CONTAINER_HOST"
        : undefined,
      sshKey: str("sshKey") ?? (env.CONTAINER_SSHKEY || undefined),
      knownHosts: str("knownHosts"),
      insecureIgnoreHostKey: raw.insecureIgnoreHostKey === true,
      image: str("image") ?? DEFAULT_WORKER_IMAGE,
      srvDir: str("srvDir"),
      user: str("user"),
      privileged: raw.noPrivileged !== true,
      runId: str("runId"),
      env: envs,
      keepaliveSeconds: keepalive,
      archGiven,
    },
    rest,
  };
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
 * // submit's `--backend podman`: CONTAINER_HOST / CONTAINER_SSHKEY and the defaults.
 * const exec = createPodmanExecutor(parsePodmanRunArgs([], env).podman, env, uid, console.error);
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
    env: p.env,
    log,
  });
}
