/**
 * A small libpod REST client (API v4, `/v4.0.0/libpod/...`). Requests travel over a byte
 * stream the caller opens per request: a local unix socket, or a channel of an SSH connection
 * forwarded to the remote socket (`direct-streamlocal@openssh.com`, the way podman-remote
 * does it). HTTP is spoken with `node:http` over that stream.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http from "node:http";
import { LogDemuxer, type LogStream } from "./log_frames.ts";
import {
  type ContainerSummary,
  normaliseArch,
  type PodmanConnector,
  PodmanError,
  type PodmanInfo,
  type SecretSummary,
  unixConnector,
  type VolumeSummary,
} from "./connect.ts";
export * from "./connect.ts";
export { LogDemuxer, type LogStream, StreamLineSplitter } from "./log_frames.ts";
import { LineSplitter } from "../log/lines.ts";

interface RequestOptions {
  method?: string;
  query?: Record<string, string | string[] | undefined>;
  json?: unknown;
  body?: Uint8Array;
  signal: AbortSignal;
  /** Statuses that are not errors (default: 2xx). */
  ok?: number[];
  /** Streamed body consumer; when set, the body is not collected. */
  onChunk?: (chunk: Uint8Array) => void;
}

interface Response {
  status: number;
  body: Uint8Array;
}

/** Options of {@link PodmanClient}. */
export interface PodmanClientOptions {
  /** Opens a stream to the API socket for each request. */
  connect: PodmanConnector;
  /** Shown in error messages (e.g. the socket path or `ssh://host/...`). */
  describe?: string;
  /** API path prefix (default `/v4.0.0/libpod`). */
  prefix?: string;
}

/**
 * A libpod REST client. Every method takes `{ signal }`; HTTP errors are {@link PodmanError}s.
 *
 * @example
 * ```ts
 * const podman = new PodmanClient({ connect: unixConnector("/run/podman/podman.sock") });
 * const arch = await podman.arch({ signal: AbortSignal.timeout(5000) });
 * ```
 */
export class PodmanClient {
  readonly describe: string;
  readonly #connect: PodmanConnector;
  readonly #prefix: string;

  constructor(opts: PodmanClientOptions) {
    this.#connect = opts.connect;
    this.describe = opts.describe ?? "podman";
    this.#prefix = opts.prefix ?? "/v4.0.0/libpod";
  }

  /** Client for a local unix socket. */
  static unix(socketPath: string): PodmanClient {
    return new PodmanClient({ connect: unixConnector(socketPath), describe: socketPath });
  }

  async #request(path: string, opts: RequestOptions): Promise<Response> {
    const { signal } = opts;
    signal.throwIfAborted();
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
    }
    const fullPath = this.#prefix + path + (qs.size ? `?${qs}` : "");
    const method = opts.method ?? "GET";
    const body = opts.json !== undefined
      ? new TextEncoder().encode(JSON.stringify(opts.json))
      : opts.body;
    const stream = await this.#connect(signal);
    return await new Promise<Response>((resolve, reject) => {
      let settled = false;
      const finish = (err: unknown, res?: Response) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        stream.destroy();
        if (err) reject(err);
        else resolve(res!);
      };
      const onAbort = () => {
        req.destroy();
        finish(signal.reason);
      };
      const req = http.request({
        method,
        path: fullPath,
        host: "d",
        headers: {
          ...(body
            ? {
              "Content-Type": opts.json !== undefined
                ? "application/json"
                : "application/octet-stream",
              "Content-Length": String(body.length),
            }
            : {}),
          Connection: "close",
        },
        createConnection: () => stream,
      } as unknown as http.RequestOptions, (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Uint8Array[] = [];
        const ok = opts.ok ? opts.ok.includes(status) : status >= 200 && status < 300;
        res.on("data", (c: Uint8Array) => {
          if (ok && opts.onChunk) {
            try {
              opts.onChunk(c);
            } catch (e) {
              req.destroy();
              finish(e);
            }
          } else chunks.push(c);
        });
        res.on("error", (e) => finish(this.#connError(method, path, e)));
        res.on(
          "aborted",
          () =>
            finish(new PodmanError(`${method} ${path}: response aborted (${this.describe})`, 0)),
        );
        res.on("end", () => {
          const all = Buffer.concat(chunks);
          if (!ok) {
            let msg = new TextDecoder().decode(all).trim();
            let cause: unknown = msg;
            try {
              const j = JSON.parse(msg);
              msg = j.message ?? msg;
              cause = j.cause ?? j;
            } catch { /* not json */ }
            finish(new PodmanError(`podman ${method} ${path}: ${status} ${msg}`, status, cause));
          } else finish(undefined, { status, body: new Uint8Array(all) });
        });
      });
      req.on("error", (e) => finish(this.#connError(method, path, e)));
      stream.once("close", () => {
        // Closed by `finish` itself (the usual end): nothing to report, and no timer left
        // running after the request is over.
        if (settled) return;
        // The transport died (e.g. the SSH connection dropped) before the response ended; a
        // turn later, so that an end already on its way is seen first.
        setTimeout(
          () =>
            finish(
              new PodmanError(
                `podman ${method} ${path}: connection to ${this.describe} closed`,
                0,
              ),
            ),
          0,
        );
      });
      signal.addEventListener("abort", onAbort, { once: true });
      if (body) req.end(body);
      else req.end();
    });
  }

  #connError(method: string, path: string, e: unknown): PodmanError {
    if (e instanceof PodmanError) return e;
    const m = e instanceof Error ? e.message : String(e);
    return new PodmanError(`podman ${method} ${path} (${this.describe}): ${m}`, 0, e);
  }

  async #json<T>(path: string, opts: RequestOptions): Promise<T> {
    const res = await this.#request(path, opts);
    return JSON.parse(new TextDecoder().decode(res.body)) as T;
  }

  /** `GET /info`. */
  async info(opts: { signal: AbortSignal }): Promise<PodmanInfo> {
    return await this.#json<PodmanInfo>("/info", opts);
  }

  /** The host's architecture from `info`, normalised (`amd64`→`x86_64`, `arm64`→`aarch64`). */
  async arch(opts: { signal: AbortSignal }): Promise<string> {
    return normaliseArch((await this.info(opts)).host.arch);
  }

  /** `GET /_ping`: true when the service answers. */
  async ping(opts: { signal: AbortSignal }): Promise<boolean> {
    await this.#request("/_ping", opts);
    return true;
  }

  /** Whether an image exists locally on the podman host. */
  async imageExists(name: string, opts: { signal: AbortSignal }): Promise<boolean> {
    const r = await this.#request(`/images/${encodeURIComponent(name)}/exists`, {
      ...opts,
      ok: [204, 404],
    });
    return r.status === 204;
  }

  /**
   * Pulls an image onto the podman host. libpod streams JSON progress lines and reports a
   * failed pull inside a 200 response (`{"error": ...}`), which becomes a {@link PodmanError}.
   */
  async pullImage(reference: string, opts: { signal: AbortSignal }): Promise<void> {
    let error: string | undefined;
    const lines = new LineSplitter((line) => {
      if (error !== undefined || !line.trim()) return;
      try {
        const j = JSON.parse(line);
        if (j?.error) error = String(j.error);
      } catch { /* not a JSON progress line */ }
    });
    await this.#request("/images/pull", {
      signal: opts.signal,
      method: "POST",
      query: { reference, quiet: "true" },
      onChunk: (c) => lines.push(c),
    });
    lines.end();
    if (error !== undefined) {
      throw new PodmanError(`podman pull ${reference}: ${error}`, 500, error);
    }
  }

  /** `GET /images/{name}/json` (image inspect). */
  async inspectImage(
    name: string,
    opts: { signal: AbortSignal },
  ): Promise<{ Id: string; Config?: { Labels?: Record<string, string> | null } }> {
    return await this.#json(`/images/${encodeURIComponent(name)}/json`, opts);
  }

  /** Creates a container from a SpecGenerator body; returns its id. */
  async createContainer(spec: unknown, opts: { signal: AbortSignal }): Promise<string> {
    const r = await this.#json<{ Id: string }>("/containers/create", {
      ...opts,
      method: "POST",
      json: spec,
    });
    return r.Id;
  }

  /** Starts a created container (304 = already running is fine). */
  async startContainer(id: string, opts: { signal: AbortSignal }): Promise<void> {
    await this.#request(`/containers/${encodeURIComponent(id)}/start`, {
      ...opts,
      method: "POST",
      ok: [204, 304],
    });
  }

  /** `GET /containers/{id}/json` (container inspect). */
  async inspectContainer(id: string, opts: { signal: AbortSignal }): Promise<unknown> {
    return await this.#json(`/containers/${encodeURIComponent(id)}/json`, opts);
  }

  /**
   * Streams a container's stdout and stderr (`follow` until it exits) as frames. Resolves with
   * the number of frames delivered when the stream ends.
   */
  async logs(
    id: string,
    opts: {
      signal: AbortSignal;
      follow?: boolean;
      onFrame: (stream: LogStream, payload: Uint8Array) => void;
    },
  ): Promise<number> {
    const demux = new LogDemuxer(opts.onFrame);
    await this.#request(`/containers/${encodeURIComponent(id)}/logs`, {
      signal: opts.signal,
      query: { follow: String(opts.follow ?? false), stdout: "true", stderr: "true" },
      onChunk: (c) => demux.push(c),
    });
    return demux.frames;
  }

  /** Waits until the container stops; resolves with its exit code. */
  async waitContainer(id: string, opts: { signal: AbortSignal }): Promise<number> {
    const r = await this.#request(`/containers/${encodeURIComponent(id)}/wait`, {
      ...opts,
      method: "POST",
    });
    const code = Number(new TextDecoder().decode(r.body).trim());
    if (!Number.isInteger(code)) {
      throw new PodmanError(`podman wait ${id}: unexpected answer`, r.status);
    }
    return code;
  }

  /** Stops a container (`timeout` seconds before SIGKILL); missing or stopped is fine. */
  async stopContainer(
    id: string,
    opts: { signal: AbortSignal; timeout?: number },
  ): Promise<void> {
    await this.#request(`/containers/${encodeURIComponent(id)}/stop`, {
      signal: opts.signal,
      method: "POST",
      query: { timeout: String(opts.timeout ?? 10) },
      ok: [204, 304, 404],
    });
  }

  /**
   * Removes a container with force and its anonymous volumes; a running one gets SIGKILL after
   * `stopTimeout` seconds (default 0: at once). Missing is fine.
   */
  async removeContainer(
    id: string,
    opts: { signal: AbortSignal; stopTimeout?: number },
  ): Promise<void> {
    await this.#request(`/containers/${encodeURIComponent(id)}`, {
      signal: opts.signal,
      method: "DELETE",
      query: { force: "true", v: "true", timeout: String(opts.stopTimeout ?? 0) },
      ok: [200, 204, 404],
    });
  }

  /** Lists containers (running or not) carrying every given label (`key=value`). */
  async listContainers(
    opts: { signal: AbortSignal; labels: Record<string, string | undefined> },
  ): Promise<ContainerSummary[]> {
    const filters = JSON.stringify({ label: labelFilter(opts.labels) });
    return await this.#json("/containers/json", {
      signal: opts.signal,
      query: { all: "true", filters },
    }) ?? [];
  }

  /** Creates a named volume with labels. */
  async createVolume(
    name: string,
    opts: { signal: AbortSignal; labels?: Record<string, string> },
  ): Promise<void> {
    await this.#request("/volumes/create", {
      signal: opts.signal,
      method: "POST",
      json: { Name: name, Label: opts.labels ?? {} },
    });
  }

  /** Removes a volume (force). Missing is fine. */
  async removeVolume(name: string, opts: { signal: AbortSignal }): Promise<void> {
    await this.#request(`/volumes/${encodeURIComponent(name)}`, {
      signal: opts.signal,
      method: "DELETE",
      query: { force: "true" },
      ok: [204, 404],
    });
  }

  /** Whether a named volume exists. */
  async volumeExists(name: string, opts: { signal: AbortSignal }): Promise<boolean> {
    const r = await this.#request(`/volumes/${encodeURIComponent(name)}/exists`, {
      ...opts,
      ok: [204, 404],
    });
    return r.status === 204;
  }

  /**
   * Unpacks an uncompressed tar into directory `path` of a container (which may be created and
   * never started: paths inside its volumes land in the volumes).
   */
  async putArchive(
    id: string,
    path: string,
    tar: Uint8Array,
    opts: { signal: AbortSignal },
  ): Promise<void> {
    await this.#request(`/containers/${encodeURIComponent(id)}/archive`, {
      signal: opts.signal,
      method: "PUT",
      query: { path },
      body: tar,
    });
  }

  /** A tar of `path` in a container (created or running), or `undefined` when it is absent. */
  async getArchive(
    id: string,
    path: string,
    opts: { signal: AbortSignal },
  ): Promise<Uint8Array | undefined> {
    const r = await this.#request(`/containers/${encodeURIComponent(id)}/archive`, {
      signal: opts.signal,
      query: { path },
      ok: [200, 404],
    });
    return r.status === 200 ? r.body : undefined;
  }

  /** Lists volumes carrying every given label. */
  async listVolumes(
    opts: { signal: AbortSignal; labels: Record<string, string | undefined> },
  ): Promise<VolumeSummary[]> {
    const filters = JSON.stringify({ label: labelFilter(opts.labels) });
    return await this.#json("/volumes/json", { signal: opts.signal, query: { filters } }) ?? [];
  }

  /** Creates a secret (file driver) holding `data`; returns its id. */
  async createSecret(
    name: string,
    data: string,
    opts: { signal: AbortSignal },
  ): Promise<string> {
    const r = await this.#json<{ ID: string }>("/secrets/create", {
      signal: opts.signal,
      method: "POST",
      query: { name, driver: "file" },
      body: new TextEncoder().encode(data),
    });
    return r.ID;
  }

  /** Removes a secret. Missing is fine. */
  async removeSecret(name: string, opts: { signal: AbortSignal }): Promise<void> {
    await this.#request(`/secrets/${encodeURIComponent(name)}`, {
      signal: opts.signal,
      method: "DELETE",
      ok: [204, 404],
    });
  }

  /** Lists secrets (names and ids; never their data). */
  async listSecrets(opts: { signal: AbortSignal }): Promise<SecretSummary[]> {
    return await this.#json("/secrets/json", opts) ?? [];
  }
}

function labelFilter(labels: Record<string, string | undefined>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
}
