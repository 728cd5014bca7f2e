/**
 * `podman-run` (Gangplank's `gangplank pod --podman`): runs a JobSpec with every stage's
 * worker in a podman container, on this host or on a remote one over SSH
 * (`CONTAINER_HOST=ssh://user@host[:port]/run/user/1000/podman/podman.sock`).
 *
 * ```sh
 * deno task podman-run -s jobspec.yaml -w ./work                      # local podman socket
 * CONTAINER_HOST=ssh://core@builder/run/user/1000/podman/podman.sock \
 * CONTAINER_SSHKEY=~/.ssh/id_ed25519 deno task podman-run -A base -i quay.io/me/worker:latest
 * deno task podman-run --cleanup                                      # remove leftovers
 * ```
 *
 * Every flag of `submit` applies (`-s`, `-A`, `-a`, `--dry-run`, `--report`, ...); the podman
 * flags are listed by `--help`. Exit codes: 0 success, 1 failure, 2 bad input, 130 Ctrl-C.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { exitCodeOf, InterruptedError, UsageError } from "../lib/errors/mod.ts";
import { newRunId, runJob } from "../lib/coordinator/mod.ts";
import { PodmanExecutor } from "../lib/executors/podman.ts";
import { DEFAULT_WORKER_IMAGE } from "../lib/podman/mod.ts";
import { planJob } from "../lib/plan/mod.ts";
import {
  type ContainerHost,
  type HostKeyPolicy,
  type KnownHostEntry,
  parseContainerHost,
  parseKnownHosts,
} from "../lib/ssh/mod.ts";
import { bundle } from "./bundle.ts";
import {
  HelpShown,
  main as submitMain,
  parseSubmitArgs,
  resolveSpec,
  type SubmitOptions,
} from "./submit.ts";

/** The podman-specific options (the rest are `submit`'s). */
export interface PodmanRunOptions {
  /** `--remote` (default `$CONTAINER_HOST`, else the local podman socket). */
  remote?: string;
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

const PODMAN_HELP = [
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
      sshKey: str("sshKey") ?? (env.CONTAINER_SSHKEY || undefined),
      knownHosts: str("knownHosts"),
      insecureIgnoreHostKey: raw.insecureIgnoreHostKey === true,
      image: str("image") ?? DEFAULT_WORKER_IMAGE,
      srvDir: str("srvDir"),
      user: str("user"),
      privileged: raw.noPrivileged !== true,
      runId: str("runId"),
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
    return parseContainerHost(
      p.remote,
      user,
      env.CONTAINER_HOST === p.remote && !p.remote.startsWith("--")
        ? "CONTAINER_HOST/--remote"
        : "--remote",
    );
  }
  const sock = uid === 0 || !env.XDG_RUNTIME_DIR
    ? "/run/podman/podman.sock"
    : `${env.XDG_RUNTIME_DIR}/podman/podman.sock`;
  return { kind: "unix", socketPath: sock };
}

async function hostKeyPolicy(
  p: PodmanRunOptions,
  env: Record<string, string | undefined>,
): Promise<HostKeyPolicy> {
  if (p.insecureIgnoreHostKey) return { kind: "insecure-ignore" };
  const files = p.knownHosts ? [p.knownHosts] : [
    ...(env.HOME ? [join(env.HOME, ".ssh", "known_hosts")] : []),
    "/etc/ssh/ssh_known_hosts",
  ];
  const entries: KnownHostEntry[] = [];
  for (const f of files) {
    try {
      entries.push(...parseKnownHosts(await Deno.readTextFile(f)));
    } catch (e) {
      if (p.knownHosts) throw new UsageError(`--known-hosts: ${f}: ${(e as Error).message}`);
    }
  }
  return { kind: "known-hosts", entries, files: files.filter((f) => existsSync(f)) };
}

async function readKey(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`--sshkey/CONTAINER_SSHKEY: ${path}: ${(e as Error).message}`);
  }
}

/** Creates the executor from the parsed options (reads the key and known_hosts files). */
export async function createPodmanExecutor(
  p: PodmanRunOptions,
  env: Record<string, string | undefined>,
  log: (line: string) => void,
): Promise<PodmanExecutor> {
  const host = containerHostOf(p, env, Deno.uid());
  const ssh = host.kind === "ssh"
    ? {
      privateKey: p.sshKey ? await readKey(p.sshKey) : undefined,
      privateKeySource: p.sshKey,
      agentSocket: env.SSH_AUTH_SOCK || undefined,
      hostKeys: await hostKeyPolicy(p, env),
      keepaliveIntervalMs: p.keepaliveSeconds * 1000,
      keepaliveCountMax: 3,
    }
    : undefined;
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
    log,
  });
}

async function newWorkDir(cwd: string): Promise<string> {
  return await Deno.makeTempDir({ dir: cwd, prefix: "gangplank-work-" });
}

/** The whole CLI; returns the exit code. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<number> {
  const err = (s: string) => console.error(s);
  const out = (s: string) => console.log(s);
  let podman: PodmanRunOptions;
  let opts: SubmitOptions;
  let rest: string[];
  try {
    ({ podman, rest } = parsePodmanRunArgs(argv, env));
    opts = parseSubmitArgs([...rest, "--backend", "podman"], env);
  } catch (e) {
    if (e instanceof HelpShown) {
      const text = e.text.replace(/^Usage: submit/m, "Usage: podman-run") + PODMAN_HELP;
      await Deno.stdout.write(new TextEncoder().encode(text));
      return 0;
    }
    err(`podman-run: ${(e as Error).message}`);
    return exitCodeOf(e);
  }
  if (opts.command !== "run" || opts.dryRun) {
    // generate / dry runs need no podman: exactly submit's behaviour.
    return await submitMain([...rest, "--backend", "podman"], env);
  }
  try {
    await using executor = await createPodmanExecutor(podman, env, err);
    if (opts.cleanup) {
      const r = await executor.cleanup({
        runId: podman.runId,
        signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]),
      });
      out(
        `podman-run: removed ${r.containers.length} container(s), ${r.volumes.length} ` +
          `volume(s), ${r.secrets.length} secret(s) on ${executor.where}` +
          (podman.runId ? ` (run ${podman.runId})` : ""),
      );
      for (const c of r.containers) out(`  container ${c}`);
      for (const v of r.volumes) out(`  volume ${v}`);
      for (const s of r.secrets) out(`  secret ${s}`);
      return 0;
    }
    const spec = await resolveSpec(opts, err);
    const plan = planJob(spec, { assumeExisting: true });
    for (const w of plan.warnings) err(`warning: ${w}`);
    let workDir: string;
    if (opts.workDir) {
      workDir = resolve(opts.workDir);
      await Deno.mkdir(workDir, { recursive: true });
    } else {
      workDir = await newWorkDir(Deno.cwd());
      err(`podman-run: work dir ${workDir}`);
    }
    if (executor.where && containerHostOf(podman, env, Deno.uid()).kind === "unix") {
      // Local hosts get the current worker bind-mounted: bundle it first.
      await bundle({ entries: ["work"], signal });
    }
    const runId = newRunId();
    const report = await runJob({
      spec,
      plan,
      workDir,
      executor,
      ...(podman.archGiven ? { arch: opts.arch } : {}),
      dependencyTimeoutMs: opts.timeoutMs,
      log: out,
      signal,
      runId,
    });
    if (opts.report) {
      await Deno.writeTextFile(opts.report, JSON.stringify(report, null, 2) + "\n");
    }
    if (signal.aborted && signal.reason instanceof InterruptedError) {
      return signal.reason.exitCode;
    }
    return report.exitCode;
  } catch (e) {
    if (signal.aborted && signal.reason instanceof InterruptedError) {
      err(`podman-run: ${signal.reason.message}`);
      return signal.reason.exitCode;
    }
    err(`podman-run: ${e instanceof UsageError ? e.message : (e as Error).message ?? e}`);
    return exitCodeOf(e);
  }
}

if (import.meta.main) {
  const ctl = new AbortController();
  let interrupts = 0;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    Deno.addSignalListener(sig, () => {
      if (++interrupts > 1) {
        console.error("podman-run: second interrupt, exiting now (run --cleanup later)");
        Deno.exit(new InterruptedError(sig).exitCode);
      }
      console.error(`podman-run: ${sig}: stopping workers and removing containers...`);
      ctl.abort(new InterruptedError(sig));
    });
  }
  Deno.exit(await main(Deno.args, Deno.env.toObject(), ctl.signal));
}
