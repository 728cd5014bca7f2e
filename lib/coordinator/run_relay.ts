/**
 * The first step of a run: the object store the stages exchange artifacts through — the
 * embedded relay serving the work dir, or an external S3 endpoint (`-m/--minio-config`) — and
 * the coordinator's own client of it.
 *
 * @module
 */

import { UsageError } from "../errors/mod.ts";
import { jobBucketProblem } from "../jobspec/parse.ts";
import type { RelayConfig } from "../relay/config.ts";
import type { AccessGrant, ScopedCredential } from "../relay/server_access.ts";
import { ArtifactStore } from "../relay/client/mod.ts";
import { generateCredentials, startRelay } from "../relay/server.ts";
import type { StoreReader } from "./inputs.ts";

/** A listing entry, as the report's "returned" detection needs it. */
export interface ListedObject {
  /** Object key. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** Last modification time. */
  lastModified?: Date | number | string;
  /** ETag without quotes. */
  etag?: string;
}

/**
 * The store as the coordinator uses it: reads plus a recursive listing with stamps, and the
 * compare-and-swap pair it merges lost builds back into `builds.json` with (without them a
 * lost build only fails the run).
 */
export interface CoordinatorStore extends
  StoreReader,
  // An object's sha256 and size (run state, resume).
  Pick<ArtifactStore, "sha256">,
  // Compare-and-swap, and uploads of stage overrides: optional for stores of runs without.
  Partial<Pick<ArtifactStore, "getJSONVersioned" | "putJSONIf" | "putFile">> {
  /** Every object below `prefix` (recursive). */
  list(bucket: string, prefix: string, opts: { signal: AbortSignal }): Promise<ListedObject[]>;
}

/** A started relay, as the coordinator uses it. */
export interface RunningRelay extends AsyncDisposable {
  /** The config workers use to reach it. */
  config(): RelayConfig;
  /** Transfer statistics, if the relay keeps them. */
  stats?: unknown;
  /**
   * Mints a credential limited to `access` (lib/relay's `Relay.grant`). When present, every
   * stage gets its own credential and the root key stays with the coordinator.
   */
  grant?(access: AccessGrant): ScopedCredential;
}

/** Starts the embedded relay (seam for tests). */
export type StartRelay = (opts: {
  root: string;
  hostname: string;
  /** Port to listen on (0 or absent: any free one). */
  port?: number;
  bucket: string;
  signal: AbortSignal;
}) => Promise<RunningRelay>;

/** Opens the coordinator's store for a relay config (seam for tests). */
export type OpenStore = (cfg: RelayConfig) => CoordinatorStore | Promise<CoordinatorStore>;

/** Options of {@link openRunStore}. */
export interface OpenRunStoreOptions {
  workDir: string;
  bucket: string;
  /** An external S3 endpoint; when absent the embedded relay is started. */
  relay?: RelayConfig;
  /** Address the embedded relay binds to (default `127.0.0.1`). */
  relayHost?: string;
  /** Port the embedded relay binds to (default: any free one). */
  relayPort?: number;
  startRelay?: StartRelay;
  openStore?: OpenStore;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** The run's store: its endpoint, the embedded relay when there is one, and a client. */
export interface RunStore {
  cfg: RelayConfig;
  relay?: RunningRelay;
  store: CoordinatorStore;
}

/**
 * Starts the embedded relay (or takes the external endpoint) and opens the coordinator's
 * client. Both are registered on `stack`, released when the run ends.
 */
export async function openRunStore(
  opts: OpenRunStoreOptions,
  stack: AsyncDisposableStack,
): Promise<RunStore> {
  const { log, signal } = opts;
  let cfg: RelayConfig;
  let relay: RunningRelay | undefined;
  if (opts.relay) {
    cfg = opts.relay;
    log(`gangplank: using the external S3 endpoint ${cfg.host}:${cfg.port}`);
  } else {
    const start = opts.startRelay ?? defaultStartRelay;
    relay = stack.use(
      await start({
        root: opts.workDir,
        hostname: opts.relayHost ?? "127.0.0.1",
        port: opts.relayPort,
        bucket: opts.bucket,
        signal,
      }),
    );
    cfg = relay.config();
    log(`gangplank: relay listening on ${cfg.host}:${cfg.port}, serving ${opts.workDir}`);
  }
  signal.throwIfAborted();
  const store = await (opts.openStore ?? defaultOpenStore)(cfg);
  if (Symbol.asyncDispose in store) stack.use(store as CoordinatorStore & AsyncDisposable);
  return { cfg, ...(relay ? { relay } : {}), store };
}

/** The relay's byte counters, whatever their names in its stats object. */
export function relayBytes(stats: unknown): { bytesReceived?: number; bytesSent?: number } {
  if (!stats || typeof stats !== "object") return {};
  const s = stats as Record<string, unknown>;
  const pick = (...ks: string[]) => {
    for (const k of ks) if (typeof s[k] === "number") return s[k] as number;
    return undefined;
  };
  const rx = pick("bytesReceived", "bytesIn", "bytesUploaded", "bytesWritten");
  const tx = pick("bytesSent", "bytesOut", "bytesDownloaded", "bytesRead");
  return {
    ...(rx !== undefined ? { bytesReceived: rx } : {}),
    ...(tx !== undefined ? { bytesSent: tx } : {}),
  };
}

async function defaultStartRelay(o: {
  root: string;
  hostname: string;
  port?: number;
  bucket: string;
  signal: AbortSignal;
}): Promise<RunningRelay> {
  o.signal.throwIfAborted();
  // The bucket becomes a directory of the work dir: never one outside it (the JobSpec parser
  // refuses such names already; this guards other callers).
  const problem = jobBucketProblem(o.bucket);
  if (problem) throw new UsageError(`minio.bucket: ${problem}`);
  // The job bucket exists from the start: workers and the coordinator read it before any upload.
  await Deno.mkdir(`${o.root}/${o.bucket === "builder" ? "builds" : o.bucket}`, {
    recursive: true,
  });
  return await startRelay({
    root: o.root,
    hostname: o.hostname,
    port: o.port ?? 0,
    credentials: generateCredentials(),
    region: "us-east-1",
    ...(o.bucket === "builder" ? { bucketDirs: { builder: "builds" } } : {}),
    // No signal: the run closes the relay itself, after its workers have stopped (closing it
    // on abort would make the workers' and the coordinator's last requests fail and retry).
  });
}

/**
 * The coordinator's store: {@link ArtifactStore} itself, its listing gathered into an array
 * (closed when the run ends).
 */
function defaultOpenStore(cfg: RelayConfig): CoordinatorStore & AsyncDisposable {
  const store = ArtifactStore.fromConfig(cfg);
  return {
    // The client's own methods (bound: they use private fields); only list is adapted.
    getJSON: store.getJSON.bind(store),
    getJSONVersioned: store.getJSONVersioned.bind(store),
    putJSONIf: store.putJSONIf.bind(store),
    stat: store.stat.bind(store),
    sha256: store.sha256.bind(store),
    putFile: store.putFile.bind(store),
    list: async (b, prefix, { signal }) => {
      const out: ListedObject[] = [];
      for await (const o of store.list(b, prefix, { recursive: true, signal })) {
        if (!o.isPrefix) {
          out.push({ key: o.key, size: o.size, lastModified: o.lastModified, etag: o.etag });
        }
      }
      return out;
    },
    [Symbol.asyncDispose]: () => store.close(),
  };
}
