/**
 * Test harness for the relay server tests: runs `scripts/relay.ts` as a subprocess the way a
 * user does, reads the config it writes, and gives npm:minio and curl clients for it.
 * Credentials reach curl through a config on stdin (`-K -`), never through argv.
 *
 * @module
 */

import * as Minio from "minio";
import { ROOT } from "../_helpers/mod.ts";
import { startService } from "../_helpers/procs.ts";
import type { RelayConfig } from "../../lib/relay/mod.ts";

/** A relay subprocess under test. */
export interface RelayProcess extends AsyncDisposable {
  cfg: RelayConfig;
  url: string;
  pid: number;
  child: Deno.ChildProcess;
  /** A fresh minio client (no socket pooling leaks: agent is closed on dispose). */
  minio(opts?: { partSize?: number; secretKey?: string }): Minio.Client;
  /** Sends SIGTERM and waits; returns exit code and collected stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts `scripts/relay.ts -d dir -m cfgPath ...extra` and waits for the config file. */
export async function startRelayProcess(
  dir: string,
  cfgPath: string,
  extra: string[] = [],
): Promise<RelayProcess> {
  const svc = await startService(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/scripts/relay.ts`, "-d", dir, "-m", cfgPath, ...extra],
    env: { NO_COLOR: "1" },
    ready: async () => ((await Deno.stat(cfgPath).catch(() => undefined))?.size ?? 0) > 0,
    timeoutMs: 20_000,
    what: "relay config file",
  });
  const child = svc.child;
  const cfg = JSON.parse(await Deno.readTextFile(cfgPath)) as RelayConfig;
  const url = `http://${cfg.host}:${cfg.port}`;
  const stop = (signal: Deno.Signal = "SIGTERM") => svc.stop(signal);
  return {
    cfg,
    url,
    pid: child.pid,
    child,
    minio: (opts = {}) =>
      new Minio.Client({
        endPoint: cfg.host,
        port: cfg.port,
        useSSL: false,
        accessKey: cfg.accesskey,
        secretKey: opts.secretKey ?? cfg.secretkey,
        region: cfg.region,
        partSize: opts.partSize,
        // Fresh connection per request: nothing keeps sockets open after a test.
        transportAgent: undefined,
      }),
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** Result of {@link curl}. */
export interface CurlResult {
  status: number;
  body: string;
  headers: Record<string, string>;
  code: number;
  stderr: string;
}

/**
 * Runs curl with SigV4 (`--aws-sigv4 aws:amz:<region>:s3`) against the relay. Credentials go
 * through `-K -` on stdin. `auth: false` sends an unsigned request.
 */
export async function curl(
  relay: { cfg: RelayConfig },
  args: string[],
  opts: { auth?: boolean; secretKey?: string; timeoutMs?: number } = {},
): Promise<CurlResult> {
  const hdrFile = await Deno.makeTempFile({ prefix: "gp-curl-h-" });
  try {
    const sig = opts.auth === false
      ? []
      : ["-K", "-", "--aws-sigv4", `aws:amz:${relay.cfg.region}:s3`];
    const child = new Deno.Command("curl", {
      args: ["-s", "-S", "-D", hdrFile, "-w", "\n%{http_code}", ...sig, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    if (opts.auth !== false) {
      await w.write(
        new TextEncoder().encode(
          `user = "${relay.cfg.accesskey}:${opts.secretKey ?? relay.cfg.secretkey}"\n`,
        ),
      );
    }
    await w.close();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, opts.timeoutMs ?? 30_000);
    const out = await child.output();
    clearTimeout(timer);
    const stdout = new TextDecoder().decode(out.stdout);
    const nl = stdout.lastIndexOf("\n");
    const headers: Record<string, string> = {};
    const rawHeaders = await Deno.readTextFile(hdrFile);
    // Keep the last response's headers (after a 100 Continue).
    const blocks = rawHeaders.split(/\r?\n\r?\n/).filter((b) => b.trim() !== "");
    for (const line of (blocks[blocks.length - 1] ?? "").split(/\r?\n/).slice(1)) {
      const i = line.indexOf(":");
      if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    return {
      status: Number(stdout.slice(nl + 1)),
      body: stdout.slice(0, nl),
      headers,
      code: out.code,
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(hdrFile).catch(() => {});
  }
}

/** Reads a minio object stream into a Buffer. */
export async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

/** The S3 error code in an XML error body. */
export function s3Code(body: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
}
