/**
 * The transport and vocabulary of the libpod client: {@link PodmanError}, the per-request
 * stream {@link PodmanConnector} (a local unix socket, or an SSH channel), and the shapes of
 * the list/inspect answers this project reads.
 *
 * @module
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import { GangplankError } from "../errors/mod.ts";

/** A libpod call failed: `status` is the HTTP status (0 when no response arrived). */
export class PodmanError extends GangplankError {
  constructor(
    message: string,
    readonly status: number,
    /** libpod's `cause` field, or the underlying error. */
    override readonly cause?: unknown,
  ) {
    super(message, { cause });
  }
}

/** Opens a fresh byte stream to the libpod API socket (one per request). */
export type PodmanConnector = (signal: AbortSignal) => Promise<Duplex>;

/** Connector for a local unix socket. */
export function unixConnector(socketPath: string): PodmanConnector {
  return (signal) =>
    new Promise((resolve, reject) => {
      signal.throwIfAborted();
      const sock = net.createConnection({ path: socketPath });
      const onAbort = () => sock.destroy(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      sock.once("connect", () => {
        signal.removeEventListener("abort", onAbort);
        resolve(sock);
      });
      sock.once("error", (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(
          new PodmanError(`cannot connect to podman socket ${socketPath}: ${err.message}`, 0, err),
        );
      });
    });
}

/** The subset of `GET /libpod/info` this project reads. */
export interface PodmanInfo {
  host: { arch: string; os?: string; hostname?: string; [k: string]: unknown };
  version?: { Version?: string; APIVersion?: string };
  [k: string]: unknown;
}

/** One entry of `GET /libpod/containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names?: string[];
  Image?: string;
  State?: string;
  Labels?: Record<string, string> | null;
}

/** One entry of `GET /libpod/volumes/json`. */
export interface VolumeSummary {
  Name: string;
  Labels?: Record<string, string> | null;
}

/** One entry of `GET /libpod/secrets/json`. */
export interface SecretSummary {
  ID: string;
  Spec: { Name: string };
}

/** Normalises an architecture name to cosa's spelling (`amd64`→`x86_64`, `arm64`→`aarch64`). */
export function normaliseArch(arch: string): string {
  switch (arch) {
    case "amd64":
      return "x86_64";
    case "arm64":
      return "aarch64";
    default:
      return arch;
  }
}
