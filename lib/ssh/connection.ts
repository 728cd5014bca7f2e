/**
 * SSH connections (npm:ssh2) for podman-remote style access: host key verification against
 * known_hosts, key file and agent authentication (never a password prompt), keepalives so a
 * dead peer is noticed within a bounded time, streams to remote unix sockets, and remote port
 * forwards (the remote side listens on a loopback port it chooses).
 *
 * @module
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import {
  type ClientChannel,
  type ConnectConfig,
  newSsh2Client,
  parseSshKey,
  type ServerHostKeyAlgorithm,
} from "./ssh2_types.ts";
import { GangplankError, UsageError } from "../errors/mod.ts";
import { hostForKnownHosts } from "./container_host.ts";
import {
  checkHostKey,
  fingerprintSha256,
  HostKeyError,
  keyTypeOf,
  type KnownHostEntry,
  knownKeyTypes,
} from "./known_hosts.ts";

/** The SSH connection could not be made, or was lost. */
export class SshConnectionError extends GangplankError {
  constructor(readonly host: string, readonly port: number, message: string, cause?: unknown) {
    super(`SSH ${hostForKnownHosts(host, port)}: ${message}`, { cause });
  }
}

/** A private key file could not be used (exit code 2). */
export class SshKeyError extends UsageError {}

/** How to check the server's host key. */
export type HostKeyPolicy =
  | { kind: "known-hosts"; entries: KnownHostEntry[]; files: string[] }
  | { kind: "insecure-ignore" };

/** Options of {@link connectSsh}. */
export interface SshConnectOptions {
  host: string;
  port: number;
  user: string;
  /** Private key (OpenSSH/PEM text). Encrypted keys are refused: use an agent for those. */
  privateKey?: string;
  /** Where the key came from, for messages (e.g. the `--sshkey` path). */
  privateKeySource?: string;
  /** Path of an ssh-agent socket (`SSH_AUTH_SOCK`). */
  agentSocket?: string;
  hostKeys: HostKeyPolicy;
  /** Keepalive interval (ms, default 5000) and unanswered count (default 3) before giving up. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Handshake/auth deadline (ms, default 20 000). */
  readyTimeoutMs?: number;
  signal: AbortSignal;
  /** Informational messages (e.g. "connected"), never secrets. */
  log?: (msg: string) => void;
}

const HOST_KEY_ALGOS: Record<string, ServerHostKeyAlgorithm[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};
const ALL_HOST_KEY_ALGOS: ServerHostKeyAlgorithm[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

/** Traffic counters of a {@link RemoteForward}. */
export interface ForwardStats {
  connections: number;
  bytesIn: number;
  bytesOut: number;
}

/** A remote port forward: the remote listens on `remoteHost:remotePort` and pipes to `target`. */
export interface RemoteForward extends AsyncDisposable {
  remoteHost: string;
  remotePort: number;
  readonly stats: ForwardStats;
}

/** An open SSH connection. Disposing closes it (and with it every forward and stream). */
export interface SshConnection extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** Aborted (with an {@link SshConnectionError}) when the connection is lost or closed. */
  readonly lost: AbortSignal;
  /** Opens a stream to a unix socket on the remote host (`direct-streamlocal@openssh.com`). */
  openStreamLocal(socketPath: string, opts: { signal: AbortSignal }): Promise<Duplex>;
  /**
   * Asks the remote to listen on `127.0.0.1:0` (it picks the port) and pipes each connection
   * to `target` on this side.
   */
  forwardRemote(
    target: { host: string; port: number },
    opts: { signal: AbortSignal },
  ): Promise<RemoteForward>;
  /** Runs a command on the remote; resolves with its exit code and output (bounded by signal). */
  exec(
    command: string,
    opts: { signal: AbortSignal; stdin?: string },
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Runs a command and returns its channel (caller owns it). */
  execChannel(command: string, opts: { signal: AbortSignal }): Promise<ClientChannel>;
}

/**
 * Fails with {@link SshKeyError} (exit 2) when there is nothing to authenticate with: no
 * private key and no agent. Callers check this before creating anything for a run.
 */
export function assertSshCredentials(
  o: { host: string; port: number; privateKey?: string; agentSocket?: string },
): void {
  if (o.privateKey === undefined && !o.agentSocket) {
    throw new SshKeyError(
      `SSH ${hostForKnownHosts(o.host, o.port)}: no key to authenticate with ` +
        `(give --sshkey / CONTAINER_SSHKEY, or run an ssh-agent with SSH_AUTH_SOCK)`,
    );
  }
}

/** Connects, verifies the host key, and authenticates. */
export async function connectSsh(opts: SshConnectOptions): Promise<SshConnection> {
  const { host, port, signal } = opts;
  signal.throwIfAborted();
  let privateKey = opts.privateKey;
  if (privateKey !== undefined) {
    const parsed = parseSshKey(privateKey);
    if (parsed instanceof Error && opts.agentSocket && /encrypt|passphrase/i.test(parsed.message)) {
      // An encrypted key is usually loaded in the agent as well: use the agent only.
      opts.log?.(`ssh: ${opts.privateKeySource ?? "key"} is encrypted; using ssh-agent`);
      privateKey = undefined;
    } else if (parsed instanceof Error) {
      throw new SshKeyError(
        `${opts.privateKeySource ?? "SSH key"}: ${parsed.message}` +
          (/encrypt|passphrase/i.test(parsed.message)
            ? " (load encrypted keys into ssh-agent instead)"
            : ""),
      );
    }
  }
  assertSshCredentials({ host, port, privateKey, agentSocket: opts.agentSocket });
  const client = newSsh2Client();
  // Late errors (after a failed handshake, or during shutdown) must never become uncaught.
  client.on("error", () => {});
  let hostKeyError: HostKeyError | undefined;
  const policy = opts.hostKeys;
  let algos = ALL_HOST_KEY_ALGOS;
  if (policy.kind === "known-hosts") {
    const known = knownKeyTypes(policy.entries, host, port).flatMap((t) => HOST_KEY_ALGOS[t] ?? []);
    algos = [...new Set([...known, ...ALL_HOST_KEY_ALGOS])];
  }
  const config: ConnectConfig = {
    host,
    port,
    username: opts.user,
    privateKey,
    agent: opts.agentSocket,
    readyTimeout: opts.readyTimeoutMs ?? 20_000,
    keepaliveInterval: opts.keepaliveIntervalMs ?? 5000,
    keepaliveCountMax: opts.keepaliveCountMax ?? 3,
    tryKeyboard: false,
    algorithms: { serverHostKey: algos },
    hostVerifier: (key: Uint8Array) => {
      if (policy.kind === "insecure-ignore") return true;
      const blob = new Uint8Array(key);
      const verdict = checkHostKey(policy.entries, host, port, blob);
      if (verdict === "ok") return true;
      hostKeyError = new HostKeyError(
        host,
        port,
        verdict,
        keyTypeOf(blob),
        fingerprintSha256(blob),
        policy.files,
      );
      return false;
    },
  };
  const lostCtl = new AbortController();
  let closing = false;
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      client.end();
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    client.once("ready", () => {
      signal.removeEventListener("abort", onAbort);
      // Small request/response exchanges (S3, libpod) must not wait on Nagle + delayed ACKs.
      client.setNoDelay(true);
      resolve();
    });
    client.once("error", (err: Error & { level?: string }) => {
      signal.removeEventListener("abort", onAbort);
      client.end();
      if (hostKeyError) reject(hostKeyError);
      else if (err.level === "client-authentication") {
        reject(
          new SshConnectionError(
            host,
            port,
            `authentication as ${opts.user} failed (tried: ${
              [privateKey !== undefined ? "key" : "", opts.agentSocket ? "agent" : ""]
                .filter(Boolean).join(", ")
            })`,
            err,
          ),
        );
      } else reject(new SshConnectionError(host, port, `cannot connect: ${err.message}`, err));
    });
    client.connect(config);
  });
  opts.log?.(`ssh: connected to ${opts.user}@${hostForKnownHosts(host, port)}`);

  const markLost = (why: string, cause?: unknown) => {
    if (lostCtl.signal.aborted) return;
    lostCtl.abort(new SshConnectionError(host, port, why, cause));
  };
  client.on("error", (err: Error) => {
    markLost(
      /keepalive/i.test(err.message)
        ? "connection lost (no answer to keepalives)"
        : `connection lost: ${err.message}`,
      err,
    );
  });
  client.on("close", () => markLost(closing ? "connection closed" : "connection lost"));

  const forwards = new Map<
    number,
    { target: { host: string; port: number }; stats: ForwardStats }
  >();
  const sockets = new Set<net.Socket>();
  client.on("tcp connection", (info, accept, reject) => {
    const fwd = forwards.get(info.destPort);
    if (!fwd) {
      reject();
      return;
    }
    const ch = accept();
    fwd.stats.connections++;
    const sock = net.connect(fwd.target.port, fwd.target.host);
    sock.setNoDelay(true);
    sockets.add(sock);
    ch.on("data", (d: Uint8Array) => (fwd.stats.bytesIn += d.length));
    sock.on("data", (d: Uint8Array) => (fwd.stats.bytesOut += d.length));
    ch.pipe(sock).pipe(ch);
    const done = () => {
      sockets.delete(sock);
      sock.destroy();
      ch.destroy();
    };
    sock.on("error", done);
    sock.on("close", done);
    ch.on("error", done);
    ch.on("close", done);
  });

  const lostOr = (s: AbortSignal) => AbortSignal.any([s, lostCtl.signal]);
  const conn: SshConnection = {
    host,
    port,
    lost: lostCtl.signal,
    async openStreamLocal(socketPath, o) {
      const sig = lostOr(o.signal);
      sig.throwIfAborted();
      return await new Promise((resolve, reject) => {
        const onAbort = () => reject(sig.reason);
        sig.addEventListener("abort", onAbort, { once: true });
        client.openssh_forwardOutStreamLocal(socketPath, (err, ch) => {
          sig.removeEventListener("abort", onAbort);
          if (err) {
            reject(
              new SshConnectionError(host, port, `cannot open remote socket ${socketPath}: ${err}`),
            );
          } else if (sig.aborted) {
            ch.destroy();
            reject(sig.reason);
          } else resolve(ch);
        });
      });
    },
    async forwardRemote(target, o) {
      const sig = lostOr(o.signal);
      sig.throwIfAborted();
      return await new Promise((resolve, reject) => {
        client.forwardIn("127.0.0.1", 0, (err, remotePort) => {
          if (err) {
            reject(new SshConnectionError(host, port, `remote forward refused: ${err.message}`));
            return;
          }
          const stats: ForwardStats = { connections: 0, bytesIn: 0, bytesOut: 0 };
          forwards.set(remotePort, { target, stats });
          opts.log?.(
            `ssh: ${hostForKnownHosts(host, port)} 127.0.0.1:${remotePort} -> ` +
              `${target.host}:${target.port}`,
          );
          resolve({
            remoteHost: "127.0.0.1",
            remotePort,
            stats,
            async [Symbol.asyncDispose]() {
              forwards.delete(remotePort);
              if (lostCtl.signal.aborted) return;
              await new Promise<void>((r) => {
                const t = setTimeout(r, 2000);
                client.unforwardIn("127.0.0.1", remotePort, () => {
                  clearTimeout(t);
                  r();
                });
              });
            },
          });
        });
      });
    },
    async execChannel(command, o) {
      const sig = lostOr(o.signal);
      sig.throwIfAborted();
      return await new Promise((resolve, reject) => {
        client.exec(command, (err, ch) => {
          if (err) reject(new SshConnectionError(host, port, `exec failed: ${err.message}`));
          else resolve(ch);
        });
      });
    },
    async exec(command, o) {
      const ch = await conn.execChannel(command, o);
      const sig = lostOr(o.signal);
      return await new Promise((resolve, reject) => {
        let stdout = "";
        let stderr = "";
        let code: number | null = null;
        const onAbort = () => {
          ch.destroy();
          reject(sig.reason);
        };
        sig.addEventListener("abort", onAbort, { once: true });
        ch.on("data", (d: Uint8Array) => (stdout += new TextDecoder().decode(d)));
        ch.stderr.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
        ch.on("exit", (c: number | null) => (code = c));
        ch.on("close", () => {
          sig.removeEventListener("abort", onAbort);
          resolve({ code, stdout, stderr });
        });
        if (o.stdin !== undefined) ch.end(o.stdin);
        else ch.end();
      });
    },
    async [Symbol.asyncDispose]() {
      closing = true;
      for (const s of sockets) s.destroy();
      if (lostCtl.signal.aborted) {
        client.destroy();
        return;
      }
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          client.destroy();
          r();
        }, 2000);
        client.once("close", () => {
          clearTimeout(t);
          r();
        });
        client.end();
      });
    },
  };
  return conn;
}

/** A podman connector (see `lib/podman`) that reaches a remote socket over `conn`. */
export function sshSocketConnector(
  conn: SshConnection,
  socketPath: string,
): (signal: AbortSignal) => Promise<Duplex> {
  return (signal) => conn.openStreamLocal(socketPath, { signal });
}
