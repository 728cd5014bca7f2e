/**
 * Parsing `CONTAINER_HOST` / `--remote` the way podman-remote reads it:
 * `ssh://[user@]host[:port]/path/to/podman.sock` (IPv6 as `[::1]`), or `unix:///path`.
 *
 * @module
 */
import { UsageError } from "../errors/mod.ts";

/** A podman API endpoint reached over SSH. */
export interface SshContainerHost {
  kind: "ssh";
  /** SSH user (the URI's, else the `defaultUser` given to the parser). */
  user: string;
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** SSH port (default 22). */
  port: number;
  /** Path of the podman socket on the remote host. */
  socketPath: string;
}

/** A podman API endpoint on a local unix socket. */
export interface UnixContainerHost {
  kind: "unix";
  socketPath: string;
}

/** Where the podman API is. */
export type ContainerHost = SshContainerHost | UnixContainerHost;

/** `CONTAINER_HOST` is malformed (exit code 2). */
export class ContainerHostError extends UsageError {
  constructor(readonly value: string, readonly problem: string, readonly source = "--remote") {
    super(`${source}: ${problem}: ${JSON.stringify(value)}`);
  }
}

/**
 * Parses a container host URI. `defaultUser` is used when the URI names no user (Gangplank
 * always used "" there; §12.1.19).
 *
 * @example
 * ```ts
 * parseContainerHost("ssh://core@[::1]:2222/run/user/1000/podman/podman.sock", "me");
 * // { kind: "ssh", user: "core", host: "::1", port: 2222,
 * //   socketPath: "/run/user/1000/podman/podman.sock" }
 * ```
 */
export function parseContainerHost(
  value: string,
  defaultUser: string,
  source = "--remote",
): ContainerHost {
  const v = value.trim();
  const fail = (problem: string): never => {
    throw new ContainerHostError(value, problem, source);
  };
  if (v.startsWith("unix://")) {
    const path = decodeURIComponent(v.slice("unix://".length));
    if (!path.startsWith("/")) fail("a unix:// address needs an absolute socket path");
    return { kind: "unix", socketPath: path };
  }
  if (v.startsWith("/")) return { kind: "unix", socketPath: v };
  if (!v.startsWith("ssh://")) fail("expected ssh://[user@]host[:port]/socket or unix:///socket");
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return fail("not a valid URI");
  }
  let host = url.hostname;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host === "") fail("no host");
  let port = 22;
  if (url.port !== "") {
    port = Number(url.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) fail("bad port");
  } else {
    // WHATWG URL drops a default-looking or empty port silently; reject `host:` and junk.
    const authority = v.slice("ssh://".length).split("/")[0];
    const afterHost = authority.replace(/^[^@]*@/, "").replace(/^\[[^\]]*\]/, "")
      .replace(/^[^:]*/, "");
    if (afterHost !== "") fail("bad port");
  }
  if (url.password !== "") fail("passwords in the URI are not supported; use a key or an agent");
  const user = decodeURIComponent(url.username) || defaultUser;
  if (user === "") fail("no user");
  const socketPath = decodeURIComponent(url.pathname);
  if (socketPath === "" || socketPath === "/") {
    fail("no socket path (e.g. /run/user/1000/podman/podman.sock)");
  }
  return { kind: "ssh", user, host, port, socketPath };
}

/** Formats an SSH host for messages and known_hosts lookups: `host` or `[host]:port`. */
export function hostForKnownHosts(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}
