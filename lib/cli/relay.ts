/**
 * `relay` (Gangplank's `gangplank minio`) as a function of a {@link CliIo}: serve a directory
 * as an S3 endpoint until interrupted, writing the minio config (mode 0600, never overwriting)
 * once listening.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import * as fs from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../errors/mod.ts";
import { addFlags, commanderMessage, type FlagDef, foldAliases } from "./flags.ts";
import { type CliMain, HelpShown, lines } from "./harness.ts";

/** The relay's flags. */
export const RELAY_FLAGS: readonly FlagDef[] = [
  { flags: "-d, --dir <dir>", help: "directory to serve (required)", group: "relay" },
  {
    flags: "-m, --minio-config <file>",
    help: "write the minio config JSON here, mode 0600 (required)",
    group: "relay",
    old: ["--minioCfgFile"],
  },
  {
    flags: "--host <addr>",
    help: "bind address (0.0.0.0 or a pod IP only when needed)",
    group: "relay",
    default: "127.0.0.1",
  },
  {
    flags: "--port <n>",
    help: "port (default: a free port)",
    group: "relay",
    parse: (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) {
        throw new UsageError(`--port: '${v}' is not a port number`);
      }
      return n;
    },
  },
  {
    flags: "--bucket-dir <name=dir>",
    help: "store bucket <name> in <dir> below --dir (repeatable)",
    group: "relay",
    repeat: true,
    parse: (v) => {
      const eq = v.indexOf("=");
      if (eq <= 0 || eq === v.length - 1) {
        throw new UsageError(`--bucket-dir: expected name=dir, got '${v}'`);
      }
      return v;
    },
  },
  {
    flags: "--abort-uploads-after <hours>",
    help: "at start, abort multipart uploads older than this (default 24)",
    group: "relay",
    parse: (v) => {
      const n = Number(v);
      if (v.trim() === "" || !Number.isFinite(n) || n < 0) {
        throw new UsageError(`--abort-uploads-after: '${v}' is not a number of hours`);
      }
      return n;
    },
  },
];

function parse(argv: readonly string[]) {
  let out = "";
  let err = "";
  const cmd = new Command("relay")
    .description("Serve a directory as an S3 endpoint (bucket = top-level folder).")
    .exitOverride()
    .configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) })
    .allowExcessArguments(false) as unknown as Command<[], Record<string, unknown>>;
  const aliases = addFlags(cmd, RELAY_FLAGS);
  try {
    cmd.parse([...argv], { from: "user" });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version") {
      throw new HelpShown(out);
    }
    if (e instanceof UsageError) throw e;
    throw new UsageError(commanderMessage(err, e));
  }
  const raw = { ...cmd.opts() };
  const notes = foldAliases(raw, aliases, RELAY_FLAGS);
  if (raw.dir === undefined) throw new UsageError("-d/--dir is required");
  if (raw.minioConfig === undefined) throw new UsageError("-m/--minio-config is required");
  const bucketDirs: Record<string, string> = {};
  for (const v of (raw.bucketDir as string[] | undefined) ?? []) {
    bucketDirs[v.slice(0, v.indexOf("="))] = v.slice(v.indexOf("=") + 1);
  }
  return {
    dir: String(raw.dir),
    minioConfig: String(raw.minioConfig),
    host: String(raw.host),
    port: (raw.port as number | undefined) ?? 0,
    bucketDirs,
    abortUploadsAfterHours: raw.abortUploadsAfter as number | undefined,
    notes,
  };
}

/** `relay`: serves `-d DIR` until the signal is aborted; exit 0 when stopped. */
export const relay: CliMain = async (io) => {
  const err = lines(io.stderr);
  const opts = parse(io.argv);
  for (const n of opts.notes) err(`relay: ${n}`);
  const dir = resolve(io.cwd, opts.dir);
  const cfgFile = resolve(io.cwd, opts.minioConfig);
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new UsageError(`--dir: ${opts.dir} is not a directory`);
  if (fs.existsSync(cfgFile)) {
    throw new UsageError(
      `--minio-config: ${opts.minioConfig} already exists; refusing to overwrite`,
    );
  }
  if (io.signal.aborted) return 0;
  // Straight from the server modules: lib/relay/mod.ts also loads the npm:minio client.
  const { startRelay } = await import("../relay/server.ts");
  const { writeRelayConfig } = await import("../relay/config.ts");
  const server = await startRelay({
    root: dir,
    hostname: opts.host,
    port: opts.port,
    bucketDirs: opts.bucketDirs,
    ...(opts.abortUploadsAfterHours !== undefined
      ? { abortUploadsAfterMs: opts.abortUploadsAfterHours * 3600 * 1000 }
      : {}),
    log: err,
    signal: io.signal,
  });
  try {
    await writeRelayConfig(cfgFile, server.config());
  } catch (e) {
    await server.close();
    throw e;
  }
  const host = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  lines(io.stdout)(
    `relay: listening on http://${host}:${server.port} (config: ${opts.minioConfig})`,
  );
  await new Promise<void>((done) => {
    if (io.signal.aborted) done();
    io.signal.addEventListener("abort", () => done(), { once: true });
  });
  await server.close();
  const reason = io.signal.reason as { signal?: string } | undefined;
  err(`relay: stopped${reason?.signal ? ` (${reason.signal})` : ""}`);
  return 0;
};
