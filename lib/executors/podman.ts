/**
 * The podman backend: each stage's worker runs in a podman container, on this host (libpod
 * API over a unix socket) or on a remote host (`CONTAINER_HOST=ssh://...`: the API over an
 * SSH connection, the relay reached through an SSH remote forward the remote side picks the
 * port of). Containers, volumes and secrets are labelled/named with the run id and removed on
 * success, failure, abort and dispose; {@link PodmanExecutor.cleanup} removes what an
 * interrupted run left. Stock-image workers on a remote host run deno and the worker bundle
 * from cache volumes that outlive the run (`podman_stock.ts`).
 *
 * @module
 */
import { existsSync } from "node:fs";
import {
  PodmanClient,
  PodmanError,
  RELAY_SECRET_TARGET,
  runContainer,
  type SecretMount,
  uidOf,
  unixConnector,
  workerContainerName,
  workerContainerSpec,
} from "../podman/mod.ts";
import { LABEL_COORDINATOR, LABEL_RUN_ID } from "../workspec/worker_image.ts";
import { processStart } from "./local_cleanup.ts";
import { hostname } from "node:os";
import { secretFileVar } from "../workspec/env.ts";
import {
  connectSsh,
  type ContainerHost,
  type RemoteForward,
  type SshConnection,
  SshConnectionError,
  type SshConnectOptions,
  sshSocketConnector,
} from "../ssh/mod.ts";
import type { Executor, RelayEndpoint, StageOutcome, WorkerLaunch } from "./types.ts";
import { ensureWorkerImage, WorkerImageError } from "./podman_image.ts";
import { cleanupPodmanRuns, type PodmanCleanup, safeName } from "./podman_cleanup.ts";
import { ensureStockVolumes, type PodmanWorkerBundle } from "./podman_stock.ts";
import type { StockVolumes } from "../podman/mod.ts";
import { quote } from "../toolkit/shell.ts";

export { WorkerImageError } from "./podman_image.ts";

/** SSH settings for `ssh://` container hosts (host, port and user come from the URI). */
export type PodmanSshOptions = Pick<
  SshConnectOptions,
  | "privateKey"
  | "privateKeySource"
  | "agentSocket"
  | "hostKeys"
  | "keepaliveIntervalMs"
  | "keepaliveCountMax"
>;

/** Options of {@link PodmanExecutor}. */
export interface PodmanExecutorOptions {
  /** Where the podman API is (see `parseContainerHost`). */
  host: ContainerHost;
  ssh?: PodmanSshOptions;
  /** Worker image. */
  image: string;
  /** `/srv` as a bind mount of this path on the podman host; default: an ephemeral volume. */
  srvDir?: string;
  /** Default true (Gangplank's podman mode). */
  privileged?: boolean;
  /** Devices to pass through when the host has them. Default `/dev/kvm`, `/dev/fuse`. */
  devices?: string[];
  /** Container user. Default `builder`. */
  user?: string;
  /** Network namespace mode. Default `host` (workers reach the relay on 127.0.0.1). */
  network?: string;
  /**
   * Local hosts: host paths of deno and the bundled worker, bound read-only at the contract
   * paths so any glibc base image works. Default: this deno and `<root>/dist/work.js`.
   * `false`: the image must carry them. Ignored when {@link stock} is set, and on remote hosts.
   */
  mountWorker?: { deno: string; worker: string } | false;
  /**
   * `--worker-source stock` without this machine's deno (remote hosts, or a `--deno-image`
   * given locally): deno copied from `denoImage` and the bundle uploaded into cache volumes on
   * the podman host (see `podman_stock.ts`); the image needs only glibc.
   */
  stock?: { denoImage: string; bundle: PodmanWorkerBundle };
  /** Pull the image when the host lacks it. Default true. */
  pull?: boolean;
  /** Extra environment of every worker (under the stage's own). */
  env?: Record<string, string>;
  /** Extra SpecGenerator fields merged into every worker container. */
  extraSpec?: Record<string, unknown>;
  /** Coordinator messages (warnings, what was removed); never secrets. */
  log?: (line: string) => void;
  /**
   * The coordinator's pid: containers and volumes are labelled with it (and this host and the
   * process's start time), so that `--cleanup` without `--run-id` leaves this run alone.
   */
  coordinatorPid?: number;
  /** Seams for tests. */
  connectSsh?: typeof connectSsh;
}

const DEFAULT_DEVICES = ["/dev/kvm", "/dev/fuse"];
const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/**
 * Runs workers as podman containers (local or over SSH).
 *
 * @example
 * ```ts
 * await using exec = new PodmanExecutor({
 *   host: parseContainerHost(env.CONTAINER_HOST ?? "unix:///run/podman/podman.sock", user),
 *   image: DEFAULT_WORKER_IMAGE,
 *   log: console.error,
 * });
 * ```
 */
export class PodmanExecutor implements Executor {
  readonly name = "podman";
  readonly #o: PodmanExecutorOptions;
  readonly #log: (line: string) => void;
  #client: PodmanClient | undefined;
  #ssh: SshConnection | undefined;
  #connecting: Promise<PodmanClient> | undefined;
  #forward: RemoteForward | undefined;
  #reaper: { end(): void } | undefined;
  #devices: string[] | undefined;
  #runId: string | undefined;
  #stockVolumes: StockVolumes | undefined;
  readonly #live = new Set<string>();
  readonly #volumes = new Set<string>();
  readonly #secrets = new Set<string>();
  #disposed = false;

  constructor(opts: PodmanExecutorOptions) {
    this.#o = opts;
    this.#log = opts.log ?? (() => {});
  }

  /** Where the API is, for messages: the socket path or `ssh://user@host:port/socket`. */
  get where(): string {
    const h = this.#o.host;
    return h.kind === "unix"
      ? h.socketPath
      : `ssh://${h.user}@${h.host.includes(":") ? `[${h.host}]` : h.host}:${h.port}${h.socketPath}`;
  }

  get #remote(): boolean {
    return this.#o.host.kind === "ssh";
  }

  /** Connects (once) and returns the API client. */
  client(opts: { signal: AbortSignal }): Promise<PodmanClient> {
    if (this.#disposed) return Promise.reject(new Error("PodmanExecutor is disposed"));
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= this.#connect(opts.signal).then((c) => (this.#client = c));
    // A failed attempt may be retried.
    this.#connecting.catch(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #connect(signal: AbortSignal): Promise<PodmanClient> {
    const h = this.#o.host;
    let client: PodmanClient;
    if (h.kind === "unix") {
      client = new PodmanClient({ connect: unixConnector(h.socketPath), describe: h.socketPath });
    } else {
      if (!this.#o.ssh) throw new Error("PodmanExecutor: ssh options are required for ssh://");
      const ssh = await (this.#o.connectSsh ?? connectSsh)({
        host: h.host,
        port: h.port,
        user: h.user,
        privateKey: this.#o.ssh.privateKey,
        privateKeySource: this.#o.ssh.privateKeySource,
        agentSocket: this.#o.ssh.agentSocket,
        hostKeys: this.#o.ssh.hostKeys,
        keepaliveIntervalMs: this.#o.ssh.keepaliveIntervalMs,
        keepaliveCountMax: this.#o.ssh.keepaliveCountMax,
        signal,
        log: this.#log,
      });
      this.#ssh = ssh;
      ssh.lost.addEventListener("abort", () => {
        if (!this.#disposed) this.#log(`podman: ${(ssh.lost.reason as Error).message}`);
      }, { once: true });
      client = new PodmanClient({
        connect: sshSocketConnector(ssh, h.socketPath),
        describe: this.where,
      });
    }
    try {
      await client.ping({ signal });
    } catch (e) {
      throw new PodmanError(
        `podman API at ${this.where} does not answer: ${(e as Error).message}` +
          (h.kind === "unix" ? " (is `podman system service` running?)" : ""),
        e instanceof PodmanError ? e.status : 0,
        e,
      );
    }
    return client;
  }

  /** Architecture of the podman host (from `podman info`; remote hosts report their own). */
  async arch(opts: { signal: AbortSignal }): Promise<string> {
    return await (await this.client(opts)).arch(opts);
  }

  /**
   * Connects, checks the image, and for remote hosts opens the SSH remote forward to the
   * relay: workers (host network) then use `127.0.0.1:<port the remote picked>`.
   */
  async prepare(
    relay: RelayEndpoint,
    opts: { runId: string; signal: AbortSignal },
  ): Promise<RelayEndpoint> {
    const { signal } = opts;
    this.#runId = opts.runId;
    const client = await this.client({ signal });
    await this.#ensureImage(client, signal);
    if (this.#o.stock) this.#stockVolumes = await this.#ensureStock(client, opts.runId, signal);
    this.#devices = await this.#hostDevices(signal);
    if (this.#o.privileged !== false) {
      for (const d of this.#o.devices ?? DEFAULT_DEVICES) {
        if (!this.#devices.includes(d)) {
          this.#log(
            `warning: ${d} is not present on ${this.#hostLabel()} (podman host): ` +
              `not passed to workers` +
              (d === "/dev/kvm" ? " (qemu/kola will be slow or fail)" : ""),
          );
        }
      }
    }
    if (!this.#remote && this.#o.srvDir) this.#checkSrvDir(this.#o.srvDir);
    if (!this.#remote) return { ...relay };
    this.#forward = await this.#ssh!.forwardRemote(relay, { signal });
    this.#startReaper(opts.runId);
    this.#log(
      `podman: relay forwarded to ${this.#hostLabel()} 127.0.0.1:${this.#forward.remotePort} ` +
        `over SSH`,
    );
    return { host: this.#forward.remoteHost, port: this.#forward.remotePort };
  }

  /** Warns when a local `--srv-dir` is not writable by the container user. */
  #checkSrvDir(dir: string): void {
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(dir);
    } catch {
      throw new WorkerImageError(this.#o.image, this.where, `--srv-dir ${dir} does not exist`);
    }
    if (!st.isDirectory) {
      throw new WorkerImageError(this.#o.image, this.where, `--srv-dir ${dir} is not a directory`);
    }
    const user = this.#o.user ?? "builder";
    const uid = uidOf(user);
    if (uid === 0 || uid === undefined) return;
    const mode = st.mode ?? 0;
    if (st.uid !== uid && (mode & 0o002) === 0) {
      this.#log(
        `warning: --srv-dir ${dir} belongs to uid ${st.uid} and is not writable by the ` +
          `container user ${user} (uid ${uid}): chown ${uid} ${dir}, or use --user root`,
      );
    }
  }

  /** Traffic through the SSH forward (remote hosts), e.g. to show the relay went through it. */
  get forwardStats(): RemoteForward["stats"] | undefined {
    return this.#forward?.stats;
  }

  #hostLabel(): string {
    const h = this.#o.host;
    return h.kind === "unix" ? "this host" : h.host;
  }

  async #hostDevices(signal: AbortSignal): Promise<string[]> {
    const wanted = this.#o.devices ?? DEFAULT_DEVICES;
    if (!this.#remote) return wanted.filter((d) => existsSync(d));
    try {
      const quoted = wanted.map(quote).join(" ");
      const r = await this.#ssh!.exec(`for d in ${quoted}; do [ -e "$d" ] && echo "$d"; done`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)]),
      });
      return r.stdout.split("\n").filter((l) => wanted.includes(l));
    } catch {
      this.#log(`warning: cannot check devices on ${this.#hostLabel()}; passing none`);
      return [];
    }
  }

  #mountWorker(): { deno: string; worker: string } | undefined {
    if (this.#remote || this.#o.stock || this.#o.mountWorker === false) return undefined;
    return this.#o.mountWorker ?? {
      deno: Deno.realPathSync(Deno.execPath()),
      worker: `${ROOT}/dist/work.js`,
    };
  }

  #ensureImage(client: PodmanClient, signal: AbortSignal): Promise<void> {
    return ensureWorkerImage({
      client,
      image: this.#o.image,
      where: this.where,
      hostLabel: this.#hostLabel(),
      pull: this.#o.pull !== false,
      mount: this.#mountWorker(),
      carried: !this.#o.stock,
      probeName: `gangplank-${safeName(this.#runId ?? "probe")}-image-check`,
      ...(this.#runId ? { runId: this.#runId } : {}),
      log: this.#log,
      signal,
    });
  }

  async #ensureStock(c: PodmanClient, runId: string, signal: AbortSignal): Promise<StockVolumes> {
    const { denoImage, bundle } = this.#o.stock!;
    const r = await ensureStockVolumes({
      client: c,
      denoImage,
      bundle,
      where: this.where,
      pull: this.#o.pull !== false,
      runId,
      helperName: `gangplank-${safeName(runId)}-worker-cache`,
      labels: this.#coordinatorLabel(),
      onHelper: (id, alive) => alive ? this.#live.add(id) : this.#live.delete(id),
      log: this.#log,
      signal,
    });
    return { deno: r.deno, worker: r.worker };
  }

  /**
   * A "dead man's switch" on the remote host: a shell that waits on its stdin and, if the SSH
   * connection dies before we say `done`, removes the run's containers, volumes and secrets
   * with the podman CLI against the same socket. Best effort: hosts without a shell or the
   * podman CLI still have `podman-run --cleanup`.
   */
  #startReaper(runId: string): void {
    const h = this.#o.host;
    if (h.kind !== "ssh" || !this.#ssh) return;
    const rid = safeName(runId);
    const sock = h.socketPath.replace(/'/g, "");
    const script = [
      `read -r line; [ "$line" = done ] && exit 0`,
      `P="podman --remote --url unix://${sock}"`,
      `ids=$($P ps -aq --filter label=${LABEL_RUN_ID}=${rid}); ` +
      `[ -n "$ids" ] && $P rm -f -t 0 -v $ids`,
      `vols=$($P volume ls -q --filter label=${LABEL_RUN_ID}=${rid}); ` +
      `[ -n "$vols" ] && $P volume rm -f $vols`,
      `secs=$($P secret ls --format '{{.Name}}' | grep '^gangplank-${rid}-'); ` +
      `[ -n "$secs" ] && $P secret rm $secs`,
      `exit 0`,
    ].join("\n");
    this.#ssh.execChannel(`sh -c '${script.replace(/'/g, `'"'"'`)}'`, {
      signal: AbortSignal.timeout(15_000),
    }).then((ch) => {
      ch.on("error", () => {});
      ch.stderr.on("data", () => {});
      ch.on("data", () => {});
      this.#reaper = { end: () => ch.end("done\n") };
    }, () => this.#log(`warning: no cleanup guard on ${this.#hostLabel()} (exec refused)`));
  }

  /** Runs one stage's worker container to completion. */
  async runStage(launch: WorkerLaunch): Promise<StageOutcome> {
    launch.signal.throwIfAborted();
    const client = await this.client({ signal: launch.signal });
    const lost = this.#ssh?.lost;
    const signal = lost ? AbortSignal.any([launch.signal, lost]) : launch.signal;
    const rid = safeName(launch.runId);
    const base = `gangplank-${rid}-${launch.stageIndex}`;
    const labels = { ...this.#coordinatorLabel(), [LABEL_RUN_ID]: launch.runId };
    const secrets: SecretMount[] = [];
    let volume: string | undefined;
    try {
      for (const [k, v] of Object.entries(launch.secretEnv)) {
        const name = `${base}-${k.toLowerCase().replace(/[^a-z0-9]/g, "-")}`;
        this.#secrets.add(name);
        await client.removeSecret(name, { signal });
        await client.createSecret(name, v, { signal });
        const isRelayKey = k === "COSA_RELAY_SECRET_KEY";
        secrets.push({
          name,
          target: isRelayKey ? RELAY_SECRET_TARGET : `gangplank-${k.toLowerCase()}`,
          env: secretFileVar(k),
        });
      }
      if (!this.#o.srvDir) {
        volume = `${base}-srv`;
        this.#volumes.add(volume);
        await client.createVolume(volume, { signal, labels });
      }
      const spec = workerContainerSpec({
        runId: launch.runId,
        stageId: launch.stageId,
        stageIndex: launch.stageIndex,
        image: this.#o.image,
        labels,
        env: { ...this.#o.env, ...launch.env },
        secrets,
        srvDir: this.#o.srvDir,
        volume,
        privileged: this.#o.privileged,
        devices: this.#devices ??
          (this.#o.devices ?? DEFAULT_DEVICES).filter((d) => !this.#remote && existsSync(d)),
        user: this.#o.user,
        network: this.#o.network,
        mountWorker: this.#mountWorker(),
        ...(this.#stockVolumes ? { stockVolumes: this.#stockVolumes } : {}),
        extra: this.#o.extraSpec,
      });
      // A container of the same name left by an earlier attempt would block creation.
      await client.removeContainer(workerContainerName(launch.runId, launch.stageIndex), {
        signal,
      });
      let cid: string | undefined;
      const res = await runContainer(client, spec, {
        signal,
        onLine: launch.onLine,
        onCreated: (id) => this.#live.add(cid = id),
      }).finally(() => {
        if (cid) this.#live.delete(cid);
      });
      return { exitCode: res.exitCode };
    } catch (e) {
      if (lost?.aborted) throw lost.reason as SshConnectionError;
      if (launch.signal.aborted) return { exitCode: 137, reason: "cancelled" };
      throw e;
    } finally {
      if (!lost?.aborted) {
        const s = AbortSignal.timeout(30_000);
        if (volume) {
          await client.removeVolume(volume, { signal: s }).catch(() => {});
          this.#volumes.delete(volume);
        }
        for (const sec of secrets) {
          await client.removeSecret(sec.name, { signal: s }).catch(() => {});
          this.#secrets.delete(sec.name);
        }
      }
    }
  }

  /** `{ gangplank.coordinator: host/pid/start }` when the coordinator's pid is known. */
  #coordinatorLabel(): Record<string, string> {
    const pid = this.#o.coordinatorPid;
    const start = pid === undefined ? null : processStart(pid);
    return start === null ? {} : { [LABEL_COORDINATOR]: `${hostname()}/${pid}/${start}` };
  }

  /**
   * Removes containers and volumes labelled with `runId`, and the run's secrets. Without
   * `runId`: those of every gangplank run whose coordinator is gone — a run whose coordinator
   * still runs on this host, or runs on another host (which cannot be checked from here), is
   * left alone and listed in `kept` (`<run id>: <why>`). Returns what was removed.
   */
  async cleanup(
    opts: { runId?: string; signal: AbortSignal },
  ): Promise<PodmanCleanup> {
    return cleanupPodmanRuns(await this.client(opts), opts);
  }

  /** Removes what is still held (containers, volumes, secrets), closes the forward and SSH. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    const client = this.#client;
    const usable = client && !(this.#ssh?.lost.aborted);
    if (usable) {
      const s = AbortSignal.timeout(30_000);
      for (const id of this.#live) await client.removeContainer(id, { signal: s }).catch(() => {});
      for (const v of this.#volumes) await client.removeVolume(v, { signal: s }).catch(() => {});
      for (const n of this.#secrets) await client.removeSecret(n, { signal: s }).catch(() => {});
    } else if (this.#live.size || this.#volumes.size || this.#secrets.size) {
      this.#log(
        `warning: lost the connection to ${this.#hostLabel()}: run ${this.#runId ?? ""} may ` +
          `have left containers there (the cleanup guard removes them; else run --cleanup)`,
      );
    }
    this.#disposed = true;
    this.#reaper?.end();
    if (this.#forward) {
      const st = this.#forward.stats;
      this.#log(
        `podman: the SSH forward carried ${st.connections} connection(s): ` +
          `${st.bytesIn} bytes to the relay, ${st.bytesOut} bytes back`,
      );
    }
    if (this.#forward) await Promise.resolve(this.#forward[Symbol.asyncDispose]()).catch(() => {});
    if (this.#ssh) await Promise.resolve(this.#ssh[Symbol.asyncDispose]()).catch(() => {});
  }
}
