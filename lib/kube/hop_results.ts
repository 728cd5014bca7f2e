/**
 * Hop mode brings the run home: when the coordinator in the hop pod has finished, it packs its
 * work dir's `logs/`, the run report and (unless `--no-fetch`) `builds/` into one tar.gz and
 * serves it on a port of the pod; the submitting side fetches it through the API server's pod
 * proxy (`pods/<name>:<port>/proxy/`, the user's own credentials) and extracts it safely into
 * its `-w`, then says it is done and the pod exits with the coordinator's code. A per-run token
 * (from the hop pod's Secret) guards the port.
 *
 * @module
 */

import * as http from "node:http";
import * as https from "node:https";
import type * as k8s from "@kubernetes/client-node";
import { extractTarGz, packTarGz } from "../archive/mod.ts";

/** Port the hop pod serves its results on. */
export const HOP_RESULTS_PORT = 8377;
/** Header carrying the results token (the API server's proxy keeps Authorization for itself). */
export const HOP_TOKEN_HEADER = "x-gangplank-token";
/** The line the hop coordinator prints when its results are ready (the marker). */
export const HOP_RESULTS_READY = "gangplank-hop: results ready";

/** Options of {@link serveHopResults}. */
export interface ServeHopResultsOptions {
  workDir: string;
  /** Paths under `workDir` to send (`builds`, `logs`, the report...); missing ones are skipped. */
  paths: string[];
  token: string;
  port?: number;
  /** How long to wait for the fetch before giving up (default 15 minutes). */
  timeoutMs?: number;
  log: (line: string) => void;
  signal: AbortSignal;
}

/**
 * Packs the results and serves them until the submitting side says it is done (or the
 * timeout): `GET /results.tar.gz`, then `POST /done`.
 */
export async function serveHopResults(opts: ServeHopResultsOptions): Promise<void> {
  const present: string[] = [];
  for (const p of opts.paths) {
    try {
      await Deno.stat(`${opts.workDir}/${p}`);
      present.push(p);
    } catch { /* not produced */ }
  }
  const archive = `${opts.workDir}/.gangplank-hop-results.tar.gz`;
  await packTarGz({
    root: opts.workDir,
    paths: present,
    dest: archive,
    signal: opts.signal,
  });
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const server = http.createServer((req, res) => {
    if (req.headers[HOP_TOKEN_HEADER] !== opts.token) {
      res.writeHead(403).end("forbidden\n");
      return;
    }
    if (req.method === "GET" && req.url?.startsWith("/results.tar.gz")) {
      res.writeHead(200, { "content-type": "application/gzip" });
      Deno.open(archive).then(async (f) => {
        try {
          for await (const chunk of f.readable) {
            if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
          }
        } finally {
          res.end();
        }
      }).catch(() => res.destroy());
    } else if (req.method === "POST" && req.url === "/done") {
      res.writeHead(200).end("bye\n");
      resolve();
    } else {
      res.writeHead(404).end("not found\n");
    }
  });
  await new Promise<void>((r) => server.listen(opts.port ?? HOP_RESULTS_PORT, "0.0.0.0", r));
  opts.log(`${HOP_RESULTS_READY} (${present.join(", ") || "nothing"})`);
  const timer = setTimeout(resolve, opts.timeoutMs ?? 15 * 60_000);
  const onAbort = () => resolve();
  opts.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await done;
  } finally {
    clearTimeout(timer);
    opts.signal.removeEventListener("abort", onAbort);
    await new Promise((r) => server.close(r));
    server.closeAllConnections?.();
    await Deno.remove(archive).catch(() => {});
  }
}

/** Options of {@link fetchHopResults}. */
export interface FetchHopResultsOptions {
  kc: k8s.KubeConfig;
  namespace: string;
  pod: string;
  token: string;
  /** Where the results are extracted (the local `-w`). */
  dest: string;
  port?: number;
  signal: AbortSignal;
}

async function proxyRequest(
  o: FetchHopResultsOptions,
  method: string,
  path: string,
): Promise<http.IncomingMessage> {
  const server = new URL(o.kc.getCurrentCluster()!.server);
  const opts: https.RequestOptions = {
    method,
    hostname: server.hostname,
    port: server.port || 443,
    path: `${server.pathname.replace(/\/$/, "")}/api/v1/namespaces/${o.namespace}/pods/` +
      `${o.pod}:${o.port ?? HOP_RESULTS_PORT}/proxy${path}`,
    headers: { [HOP_TOKEN_HEADER]: o.token },
    signal: o.signal,
  };
  await o.kc.applyToHTTPSOptions(opts);
  return await new Promise((resolve, reject) => {
    const req = (server.protocol === "http:" ? http : https).request(opts, resolve);
    req.on("error", reject);
    req.end();
  });
}

/**
 * Fetches the hop pod's results through the API server's pod proxy, extracts them into `dest`
 * (refusing unsafe entries), then tells the pod it may exit.
 */
export async function fetchHopResults(o: FetchHopResultsOptions): Promise<void> {
  const res = await proxyRequest(o, "GET", "/results.tar.gz");
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`fetching the hop pod's results: HTTP ${res.statusCode}`);
  }
  await extractTarGz(res, o.dest, { signal: o.signal });
  const done = await proxyRequest(o, "POST", "/done");
  done.resume();
}
