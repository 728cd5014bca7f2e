/**
 * `deno task relay`: serve a directory as an S3 endpoint until SIGINT/SIGTERM (Gangplank's
 * `gangplank minio`). Writes the minio config (mode 0600, never overwriting) once listening.
 *
 * Usage: deno task relay -d DIR -m FILE [--host ADDR] [--port N] [--bucket-dir name=dir]...
 *
 * @module
 */

import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import * as fs from "node:fs";
// Straight from the server modules: lib/relay/mod.ts also loads the npm:minio client.
import { startRelay } from "../lib/relay/server.ts";
import { writeRelayConfig } from "../lib/relay/config.ts";
import { exitCodeOf, UsageError } from "../lib/errors/mod.ts";

function parseArgs(argv: string[]) {
  const program = new Command()
    .name("relay")
    .description("Serve a directory as an S3 endpoint (bucket = top-level folder).")
    .requiredOption("-d, --dir <dir>", "directory to serve")
    .requiredOption("-m, --minio-config <file>", "write the minio config JSON here (0600)")
    .option("--host <addr>", "bind address (0.0.0.0 or a pod IP only when needed)", "127.0.0.1")
    .addOption(
      new Option("--port <n>", "port (default: a free port)").argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 65535) {
          throw new UsageError(`--port: '${v}' is not a port number`);
        }
        return n;
      }),
    )
    .option(
      "--bucket-dir <name=dir>",
      "store bucket <name> in <dir> below --dir (repeatable)",
      (v: string, acc: Record<string, string>) => {
        const eq = v.indexOf("=");
        if (eq <= 0 || eq === v.length - 1) {
          throw new UsageError(`--bucket-dir: expected name=dir, got '${v}'`);
        }
        return { ...acc, [v.slice(0, eq)]: v.slice(eq + 1) };
      },
      {} as Record<string, string>,
    )
    .exitOverride()
    .configureOutput({
      writeErr: () => {},
      writeOut: (s) => Deno.stdout.writeSync(new TextEncoder().encode(s)),
    })
    .allowExcessArguments(false);
  program.parse(argv, { from: "user" });
  return program.opts();
}

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseArgs(Deno.args);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.help") return 0;
      console.error(`relay: ${e.message.replace(/^error: /, "")}`);
      return 2;
    }
    if (e instanceof UsageError) {
      console.error(`relay: ${e.message}`);
      return 2;
    }
    throw e;
  }
  try {
    const st = fs.statSync(opts.dir, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new UsageError(`--dir: ${opts.dir} is not a directory`);
    if (fs.existsSync(opts.minioConfig)) {
      throw new UsageError(
        `--minio-config: ${opts.minioConfig} already exists; refusing to overwrite`,
      );
    }
    const ac = new AbortController();
    let signalName: string | undefined;
    const onSignal = (name: Deno.Signal) => () => {
      signalName = name;
      ac.abort();
    };
    const handlers: [Deno.Signal, () => void][] = [
      ["SIGINT", onSignal("SIGINT")],
      ["SIGTERM", onSignal("SIGTERM")],
    ];
    for (const [s, h] of handlers) Deno.addSignalListener(s, h);
    try {
      if (ac.signal.aborted) return 0;
      const relay = await startRelay({
        root: opts.dir,
        hostname: opts.host,
        port: opts.port ?? 0,
        bucketDirs: opts.bucketDir,
        log: (m) => console.error(m),
        signal: ac.signal,
      });
      try {
        await writeRelayConfig(opts.minioConfig, relay.config());
      } catch (e) {
        await relay.close();
        throw e;
      }
      const host = relay.hostname.includes(":") ? `[${relay.hostname}]` : relay.hostname;
      console.log(`relay: listening on http://${host}:${relay.port} (config: ${opts.minioConfig})`);
      await new Promise<void>((resolve) => {
        if (ac.signal.aborted) resolve();
        ac.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await relay.close();
      console.error(`relay: stopped (${signalName})`);
      return 0;
    } finally {
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    }
  } catch (e) {
    console.error(`relay: ${e instanceof Error ? e.message : String(e)}`);
    return exitCodeOf(e);
  }
}

if (import.meta.main) Deno.exit(await main());
