/**
 * The worker entry point (Gangplank's "gangway"), run inside every worker process, container
 * or pod:
 *
 * ```sh
 * COSA_WORK_POD_JSON='{...}' COSA_RELAY_SECRET_KEY=... COSA_SRV_DIR=/srv deno run -A scripts/work.ts
 * ```
 *
 * Environment: `COSA_WORK_POD_JSON` (the WorkSpec, required), `COSA_RELAY_SECRET_FILE` (a
 * 0600 file holding the stage's relay secret key: removed, or emptied where it cannot be
 * removed, once read) or `COSA_RELAY_SECRET_KEY` (the key itself, for a worker started by
 * hand), `COSA_REGISTRY_SECRETS_FILE`/`COSA_REGISTRY_SECRETS` likewise; none is passed on to
 * the stage's commands. `COSA_SRV_DIR` (default `/srv`), `COSA_FORCE_ARCH`,
 * `COSA_TERMINATION_LOG` (default `/dev/termination-log`, written only if it exists).
 * The stage's commands get this process's environment minus the secret variables and the
 * WorkSpec.
 *
 * Its role is decided as Gangplank's `gangway` did: `COSA_WORK_POD_JSON` (or its parts) → a
 * worker; otherwise `BUILD` (an OpenShift Build object: the image runs as a custom-strategy
 * BuildConfig builder) → the BuildConfig coordinator (`scripts/buildconfig.ts`, loaded only
 * then: `buildconfig.js` next to a bundled `work.js`); neither → exit 2.
 *
 * Exit code: 0 on success; the failing command's exit code; 1 for fetch/upload failures; 2 for
 * a bad WorkSpec, Build or environment; 130/143 when interrupted by SIGINT/SIGTERM.
 *
 * @module
 */

import { statSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { InterruptedError, UsageError } from "../lib/errors/mod.ts";
import { type CliMain, runCli } from "../lib/cli/harness.ts";
import { processIo } from "./_harness.ts";
import { entryRole, ENV_BUILD } from "../lib/buildconfig/role.ts";
import { ArtifactStore, loadS3Client } from "../lib/relay/client/mod.ts";
import { longTransferProgress } from "../lib/progress/mod.ts";
import { consumeSecretFile, makeUndumpable } from "../lib/worker/secrets.ts";
import { ENV_LIFELINE, stopGroupWhenClosed } from "../lib/worker/lifeline.ts";
import {
  runWorker,
  summaryLine,
  terminationMessage,
  type WorkerResult,
} from "../lib/worker/mod.ts";
import {
  decodeWorkSpec,
  DEFAULT_SRV_DIR,
  DEFAULT_TERMINATION_LOG,
  ENV_FORCE_ARCH,
  ENV_REGISTRY_SECRETS,
  ENV_REGISTRY_SECRETS_FILE,
  ENV_RELAY_SECRET_FILE,
  ENV_RELAY_SECRET_KEY,
  ENV_SRV_DIR,
  ENV_TERMINATION_LOG,
  ENV_WORK_POD_JSON,
  ENV_WORK_POD_JSON_PARTS,
  extractMaxBytesOf,
  isWorkSpecEnvName,
  PROGRESS_PREFIX,
  receiveWorkSpec,
  SECRET_ENV_NAMES,
  secretFileVar,
  withRegistrySecrets,
} from "../lib/workspec/mod.ts";

/**
 * A secret in the 0600 file named by env var `fileVar` (how every executor delivers it: the
 * file is removed or emptied once read, before any stage command runs), or, for a worker
 * started by hand, directly in env var `direct` (which stays readable in
 * `/proc/<pid>/environ`). `undefined` when neither is set.
 */
async function readSecretEnv(
  env: Record<string, string>,
  direct: string,
  fileVar: string,
): Promise<string | undefined> {
  const file = env[fileVar];
  if (file) return (await consumeSecretFile(fileVar, file)).secret;
  return env[direct] || undefined;
}

async function readSecret(env: Record<string, string>): Promise<string> {
  const secret = await readSecretEnv(env, ENV_RELAY_SECRET_KEY, ENV_RELAY_SECRET_FILE);
  if (secret === undefined) {
    throw new UsageError(`neither ${ENV_RELAY_SECRET_KEY} nor ${ENV_RELAY_SECRET_FILE} is set`);
  }
  return secret;
}

/** The JobSpec's inline registry secrets, sent apart from the WorkSpec by the coordinator. */
async function readRegistrySecrets(env: Record<string, string>): Promise<Record<string, string>> {
  const text = await readSecretEnv(env, ENV_REGISTRY_SECRETS, ENV_REGISTRY_SECRETS_FILE);
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, string>;
  } catch { /* reported below, without the value */ }
  throw new UsageError(`${ENV_REGISTRY_SECRETS}: expected a JSON object`);
}

/**
 * Writes the outcome (exit code, build id, artifacts, message) where Kubernetes shows it in the
 * pod status. Gangplank meant to (its condition was inverted, §12.1.17). Only when the file
 * already exists (Kubernetes creates it); at most 4 KiB.
 */
async function writeTerminationLog(
  path: string,
  result: WorkerResult,
  err: (line: string) => void,
): Promise<void> {
  try {
    await stat(path);
  } catch {
    return;
  }
  try {
    await writeFile(path, terminationMessage(result));
  } catch (e) {
    err(`work: cannot write ${path}: ${(e as Error).message}`);
  }
}

/** The worker's logic (signals and exit code mapping by the harness). */
const work: CliMain = async (io) => {
  const env = Object.fromEntries(
    Object.entries(io.env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const log = (line: string) => io.stdout(`${line}\n`);
  const err = (line: string) => io.stderr(`${line}\n`);
  // The WorkSpec: in the environment, or (too large for it) in part files read like secrets.
  let text: string | undefined;
  try {
    text = await receiveWorkSpec(env, (name) => readSecretEnv(env, name, secretFileVar(name)));
  } catch (e) {
    throw e instanceof RangeError ? new UsageError(e.message) : e;
  }
  if (!text) {
    throw new UsageError(
      `${ENV_WORK_POD_JSON} is not set (nor ${ENV_WORK_POD_JSON_PARTS}): this is not a worker`,
    );
  }
  const interrupted = () =>
    io.signal.aborted && io.signal.reason instanceof InterruptedError
      ? io.signal.reason
      : undefined;
  const received = decodeWorkSpec(text);
  // Before the secrets are read: no other process of this user (the stage's commands) can
  // read this one's memory or environment through /proc or ptrace.
  if (!makeUndumpable()) log("gangway: warning: cannot make the worker non-dumpable (no FFI/libc)");
  const secretKey = await readSecret(env);
  const ws = {
    ...received,
    jobspec: withRegistrySecrets(received.jobspec, await readRegistrySecrets(env)),
  };
  // The secret and the WorkSpec stay with this process; commands never see them.
  const hidden = [...SECRET_ENV_NAMES, ...Object.keys(env).filter(isWorkSpecEnvName)];
  for (const n of hidden) Deno.env.delete(n);
  const commandEnv = { ...env };
  for (const n of hidden) delete commandEnv[n];
  const srvDir = env[ENV_SRV_DIR] || DEFAULT_SRV_DIR;
  const extractMaxBytes = extractMaxBytesOf(env);
  try {
    if (!statSync(srvDir).isDirectory()) throw new Error("not a directory");
  } catch (e) {
    throw new UsageError(`${ENV_SRV_DIR}: ${srvDir}: ${(e as Error).message}`);
  }
  await using store = ArtifactStore.fromConfig({
    accesskey: ws.relay.accesskey,
    secretkey: secretKey,
    host: ws.relay.host,
    port: ws.relay.port,
    region: ws.relay.region,
    secure: ws.relay.secure,
    external_server: true,
  }, {
    log: (m) => log(`gangway: relay: ${m}`),
    // Long transfers report progress for the coordinator's live view (not its log).
    progress: longTransferProgress((line) => log(`${PROGRESS_PREFIX}${line}`)),
  });
  const result = await runWorker(ws, {
    srvDir,
    env: commandEnv,
    secretKey,
    store,
    log,
    signal: io.signal,
    ...(env[ENV_FORCE_ARCH] ? { arch: env[ENV_FORCE_ARCH] } : {}),
    extractMaxBytes,
  });
  log(summaryLine(result));
  await writeTerminationLog(env[ENV_TERMINATION_LOG] || DEFAULT_TERMINATION_LOG, result, err);
  const stopped = interrupted();
  if (stopped) return stopped.exitCode;
  if (result.exitCode !== 0) err(`work: ${result.message ?? "failed"}`);
  else log(`gangway: finished execution`);
  return result.exitCode;
};

/**
 * When `COSA_LIFELINE=stdin` (set by the local executor): removes it from the environment (the
 * stage's commands never see it) and stops this process group once `reader` — the read end of
 * the stdin the coordinator holds open while it lives — reaches end-of-file. Used by
 * {@link main} and by the pre-started worker host (which has read the launch line already).
 */
export function takeLifeline(reader: () => ReadableStreamDefaultReader<Uint8Array>): void {
  const on = Deno.env.get(ENV_LIFELINE) === "stdin";
  Deno.env.delete(ENV_LIFELINE);
  if (!on) return;
  void stopGroupWhenClosed(reader(), {
    pgid: Deno.pid,
    kill: Deno.kill,
    onGone: () => console.error("work: the coordinator is gone (stdin closed), stopping"),
  });
}

/**
 * Loads what most stages need later but this module does not load up front (the S3 client):
 * the pre-started worker host calls it while it waits for its launch, so a stage that moves
 * files does not wait for it and one that moves none never did.
 */
export async function warmUp(): Promise<void> {
  await loadS3Client();
}

/**
 * The module of the BuildConfig role, next to this one (`buildconfig.js` beside a bundled
 * `work.js`). Computed, so that `deno bundle` leaves it out of the worker bundle; `deno compile`
 * takes it in with `--include` (scripts/compile.ts).
 */
const BUILDCONFIG_MODULE = import.meta.url.endsWith(".js")
  ? "./buildconfig.js"
  : "./buildconfig.ts";

/** Whether this process runs as the BuildConfig coordinator: `BUILD` set, no WorkSpec. */
function isBuildConfigRole(env: Record<string, string | undefined>): boolean {
  try {
    return entryRole(env) === "buildconfig";
  } catch {
    return false; // neither: the worker role refuses it, naming both (exit 2)
  }
}

/**
 * The entry's role (Gangplank's `gangway`): a worker with `COSA_WORK_POD_JSON`, else (with
 * `BUILD`) the BuildConfig coordinator, loaded and run in its place by {@link main}, else exit
 * 2 naming both.
 */
const gangway: CliMain = (io) => {
  entryRole(io.env); // throws (exit 2) when neither is set
  return work(io);
};

/** Runs the worker (or the BuildConfig role) with this process's environment; its exit code. */
export async function main(): Promise<number> {
  if (isBuildConfigRole(Deno.env.toObject())) {
    let role: typeof import("./buildconfig.ts");
    try {
      role = await import(BUILDCONFIG_MODULE);
    } catch (e) {
      console.error(
        `work: ${ENV_BUILD} is set but the BuildConfig role ${
          new URL(BUILDCONFIG_MODULE, import.meta.url).pathname
        } cannot be loaded: ${(e as Error).message.split("\n")[0]}`,
      );
      return 1;
    }
    return await role.main();
  }
  takeLifeline(() => Deno.stdin.readable.getReader());
  using io = processIo("work", import.meta.url);
  return await runCli("work", gangway, io);
}

if (import.meta.main) {
  Deno.exit(await main());
}
