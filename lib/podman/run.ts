/**
 * Running one container to completion through the libpod API: create, start, follow its logs
 * (with a final drain so a fast exit loses no tail), wait for the exit code, and always remove
 * it; plus removing everything a run left, by label.
 *
 * @module
 */
import type { LogStream, PodmanClient } from "./client.ts";
import { StreamLineSplitter } from "./client.ts";
import { WORKER_MAX_LINE_LENGTH } from "../log/lines.ts";

/** Options of {@link runContainer}. */
export interface RunContainerOptions {
  /** Aborting stops and removes the container. */
  signal: AbortSignal;
  /** Receives each output line without its newline. */
  onLine: (line: string, stream: LogStream) => void;
  /** Called with the container id right after it was created. */
  onCreated?: (id: string) => void;
  /** How long removal may take after the run (ms, default 30 000). */
  removeTimeoutMs?: number;
  /** Keep the container after it ends (debugging). Default false. */
  keep?: boolean;
}

/** Result of {@link runContainer}. */
export interface ContainerResult {
  id: string;
  exitCode: number;
}

/**
 * Creates and starts a container from a SpecGenerator body, streams its output line by line,
 * and resolves with its exit code. The container is removed (force, with its volumes) on
 * success, failure and abort.
 */
export async function runContainer(
  client: PodmanClient,
  spec: unknown,
  opts: RunContainerOptions,
): Promise<ContainerResult> {
  opts.signal.throwIfAborted();
  const id = await client.createContainer(spec, { signal: opts.signal });
  opts.onCreated?.(id);
  return await runCreatedContainer(client, id, opts);
}

/**
 * {@link runContainer} for a container already created (e.g. one whose volumes were filled
 * through the archive endpoint first): start, stream, wait, remove.
 */
export async function runCreatedContainer(
  client: PodmanClient,
  id: string,
  opts: Omit<RunContainerOptions, "onCreated">,
): Promise<ContainerResult> {
  const { signal } = opts;
  try {
    await client.startContainer(id, { signal });
    // Worker output: command lines come split already; the summary line must arrive whole.
    const lines = new StreamLineSplitter(opts.onLine, { maxLineLength: WORKER_MAX_LINE_LENGTH });
    let delivered = 0;
    const onFrame = (s: LogStream, p: Uint8Array) => {
      delivered++;
      lines.push(s, p);
    };
    // Follow from just after start; libpod replays the log from its beginning, so nothing
    // written before the logs request is missed.
    const logsCtl = new AbortController();
    const onAbort = () => logsCtl.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const follow = client.logs(id, { signal: logsCtl.signal, follow: true, onFrame })
      .catch(() => {/* whatever it missed, the drain below delivers */});
    let exitCode: number;
    try {
      exitCode = await client.waitContainer(id, { signal });
      // The follow stream ends when the container exits; give it a bounded moment.
      const t = setTimeout(() => logsCtl.abort(), 5000);
      await follow;
      clearTimeout(t);
    } finally {
      signal.removeEventListener("abort", onAbort);
      logsCtl.abort();
      await follow;
    }
    // Drain: the complete log, minus the frames the follow stream already delivered.
    const already = delivered;
    let seen = 0;
    await client.logs(id, {
      signal,
      follow: false,
      onFrame: (s, p) => {
        if (seen++ >= already) onFrame(s, p);
      },
    });
    lines.flush();
    return { id, exitCode };
  } finally {
    if (!opts.keep) {
      await client.removeContainer(id, {
        signal: AbortSignal.timeout(opts.removeTimeoutMs ?? 30_000),
      }).catch(() => {/* reported by cleanup-by-label */});
    }
  }
}

/** What {@link removeByLabels} removed. */
export interface RemovedResources {
  containers: string[];
  volumes: string[];
}

/**
 * Removes every container and volume carrying all the given labels (e.g. one run's
 * `gangplank.run-id`). A label whose value is `undefined` matches any value of that key.
 */
export async function removeByLabels(
  client: PodmanClient,
  labels: Record<string, string | undefined>,
  opts: { signal: AbortSignal },
): Promise<RemovedResources> {
  const containers = await client.listContainers({ signal: opts.signal, labels });
  for (const c of containers) await client.removeContainer(c.Id, opts);
  const volumes = await client.listVolumes({ signal: opts.signal, labels });
  for (const v of volumes) await client.removeVolume(v.Name, opts);
  return { containers: containers.map((c) => c.Id), volumes: volumes.map((v) => v.Name) };
}
