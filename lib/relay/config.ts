/**
 * Gangplank's minio config file (`--minio-config`): the JSON that tells workers and the
 * coordinator where the S3 endpoint is and how to sign for it. Written 0600, never
 * overwritten, atomically.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { GangplankError, UsageError } from "../errors/mod.ts";

/** The minio config JSON, with Gangplank's key names. */
export interface RelayConfig {
  /** Access key id. */
  accesskey: string;
  /** Secret key: never logged; the file is written 0600. */
  secretkey: string;
  /** Host name or address of the endpoint. */
  host: string;
  /** TCP port of the endpoint. */
  port: number;
  /** S3 region. */
  region: string;
  /** True: the server is already running elsewhere; only connect to it. */
  external_server: boolean;
  /** Use TLS. */
  secure: boolean;
}

/** A config file that cannot be used; names the file and the offending field. */
export class RelayConfigError extends UsageError {
  constructor(readonly file: string, readonly field: string | undefined, message: string) {
    super(`${file}${field ? `: field '${field}'` : ""}: ${message}`);
  }
}

/** Writing the config failed because the file already exists. */
export class RelayConfigExistsError extends UsageError {
  constructor(readonly file: string) {
    super(`${file}: refusing to overwrite an existing minio config file`);
  }
}

/** Validates a parsed config object; throws {@link RelayConfigError}. */
export function parseRelayConfig(value: unknown, file = "<config>"): RelayConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RelayConfigError(file, undefined, "expected a JSON object");
  }
  const o = value as Record<string, unknown>;
  const str = (k: string, required: boolean, def = ""): string => {
    const v = o[k];
    if (v === undefined || v === null) {
      if (required) throw new RelayConfigError(file, k, "is required");
      return def;
    }
    if (typeof v !== "string") throw new RelayConfigError(file, k, "must be a string");
    if (required && v === "") throw new RelayConfigError(file, k, "must not be empty");
    return v;
  };
  const bool = (k: string, def: boolean): boolean => {
    const v = o[k];
    if (v === undefined || v === null) return def;
    if (typeof v !== "boolean") throw new RelayConfigError(file, k, "must be true or false");
    return v;
  };
  const known = new Set([
    "accesskey",
    "secretkey",
    "host",
    "port",
    "region",
    "external_server",
    "secure",
  ]);
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw new RelayConfigError(file, k, "unknown field");
  }
  const port = o.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RelayConfigError(file, "port", "must be an integer between 1 and 65535");
  }
  return {
    accesskey: str("accesskey", true),
    secretkey: str("secretkey", true),
    host: str("host", true),
    port,
    region: str("region", false, "us-east-1") || "us-east-1",
    external_server: bool("external_server", true),
    secure: bool("secure", false),
  };
}

/** Reads and validates a config file. Errors are {@link RelayConfigError} (exit 2). */
export async function readRelayConfig(
  file: string,
  { signal }: { signal?: AbortSignal } = {},
): Promise<RelayConfig> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, { encoding: "utf8", signal });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new RelayConfigError(file, undefined, `cannot read: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new RelayConfigError(file, undefined, `invalid JSON: ${(e as Error).message}`);
  }
  return parseRelayConfig(value, file);
}

/**
 * Writes a config file with mode 0600 as 2-space-indented JSON. Atomic (temp file + link) and
 * exclusive: an existing file is never replaced ({@link RelayConfigExistsError}).
 */
export function writeRelayConfig(file: string, cfg: RelayConfig): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = fs.openSync(
      tmp,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL,
      0o600,
    );
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeSync(fd, JSON.stringify(cfg, null, 2) + "\n");
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // link() fails with EEXIST instead of replacing: exclusive and atomic at once.
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new RelayConfigExistsError(file);
      throw new GangplankError(`${file}: cannot write minio config: ${(e as Error).message}`);
    }
  } catch (e) {
    if (e instanceof GangplankError) throw e;
    throw new GangplankError(`${file}: cannot write minio config: ${(e as Error).message}`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return Promise.resolve();
}
