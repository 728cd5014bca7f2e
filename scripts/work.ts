/**
 * The worker entry point (Gangplank's "gangway"), run inside every worker process, container
 * or pod:
 *
 * ```sh
 * COSA_WORK_POD_JSON='{...}' COSA_RELAY_SECRET_KEY=... COSA_SRV_DIR=/srv deno run -A scripts/work.ts
 * ```
 *
 * Environment: `COSA_WORK_POD_JSON` (the WorkSpec, required), `COSA_RELAY_SECRET_KEY` or
 * `COSA_RELAY_SECRET_FILE` (the relay's secret key, or a 0600 file holding it; neither is
 * passed on to the stage's commands), `COSA_SRV_DIR` (default `/srv`), `COSA_FORCE_ARCH`,
 * `COSA_TERMINATION_LOG` (default `/dev/termination-log`, written only if it exists).
 * The stage's commands get this process's environment minus the secret variables and the
 * WorkSpec.
 *
 * Exit code: 0 on success; the failing command's exit code; 1 for fetch/upload failures; 2 for
 * a bad WorkSpec or environment; 130/143 when interrupted by SIGINT/SIGTERM.
 *
 * @module
 */

import { readFile, stat, writeFile } from "node:fs/promises";
import { exitCodeOf, InterruptedError, UsageError } from "../lib/errors/mod.ts";
import { ArtifactStore } from "../lib/relay/client.ts";
import {
  runWorker,
  summaryLine,
  terminationMessage,
  type WorkerResult,
} from "../lib/worker/mod.ts";
import {
  decodeWorkSpec,
  DEFAULT_SRV_DIR,
  ENV_FORCE_ARCH,
  ENV_REGISTRY_SECRETS,
  ENV_REGISTRY_SECRETS_FILE,
  ENV_RELAY_SECRET_FILE,
  ENV_RELAY_SECRET_KEY,
  ENV_SRV_DIR,
  ENV_WORK_POD_JSON,
  SECRET_ENV_NAMES,
  withRegistrySecrets,
} from "../lib/workspec/mod.ts";

/**
 * A secret given directly in env var `direct`, or in a 0600 file named by env var `fileVar`
 * (how the podman backend passes it). `undefined` when neither is set.
 */
async function readSecretEnv(
  env: Record<string, string>,
  direct: string,
  fileVar: string,
): Promise<string | undefined> {
  if (env[direct]) return env[direct];
  const file = env[fileVar];
  if (!file) return undefined;
  let st;
  try {
    st = await stat(file);
  } catch (e) {
    throw new UsageError(`${fileVar}: ${file}: ${(e as Error).message}`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new UsageError(
      `${fileVar}: ${file} is readable by others (mode ${
        (st.mode & 0o777).toString(8)
      }); it must be 0600`,
    );
  }
  const secret = (await readFile(file, "utf8")).trim();
  if (!secret) throw new UsageError(`${fileVar}: ${file} is empty`);
  return secret;
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

/** Env var overriding where the Kubernetes termination message is written. */
const ENV_TERMINATION_LOG = "COSA_TERMINATION_LOG";
const DEFAULT_TERMINATION_LOG = "/dev/termination-log";

/**
 * Writes the outcome (exit code, build id, artifacts, message) where Kubernetes shows it in the
 * pod status. Gangplank meant to (its condition was inverted, §12.1.17). Only when the file
 * already exists (Kubernetes creates it); at most 4 KiB.
 */
async function writeTerminationLog(path: string, result: WorkerResult): Promise<void> {
  try {
    await stat(path);
  } catch {
    return;
  }
  try {
    await writeFile(path, terminationMessage(result));
  } catch (e) {
    console.error(`work: cannot write ${path}: ${(e as Error).message}`);
  }
}

/** Runs the worker with the current process environment; resolves with its exit code. */
export async function main(): Promise<number> {
  const env = Deno.env.toObject();
  const log = (line: string) => console.log(line);
  const text = env[ENV_WORK_POD_JSON];
  if (!text) {
    console.error(`work: ${ENV_WORK_POD_JSON} is not set: this is not a worker`);
    return 2;
  }
  let interrupted: InterruptedError | undefined;
  const ac = new AbortController();
  const onSignal = (sig: "SIGINT" | "SIGTERM") => () => {
    if (!interrupted) {
      interrupted = new InterruptedError(sig);
      console.error(`work: ${sig} received, stopping`);
      ac.abort(interrupted);
    }
  };
  const handlers = [["SIGINT", onSignal("SIGINT")], ["SIGTERM", onSignal("SIGTERM")]] as const;
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    const received = decodeWorkSpec(text);
    const secretKey = await readSecret(env);
    const ws = {
      ...received,
      jobspec: withRegistrySecrets(received.jobspec, await readRegistrySecrets(env)),
    };
    // The secret and the WorkSpec stay with this process; commands never see them.
    for (const n of [...SECRET_ENV_NAMES, ENV_WORK_POD_JSON]) Deno.env.delete(n);
    const commandEnv = { ...env };
    for (const n of [...SECRET_ENV_NAMES, ENV_WORK_POD_JSON]) delete commandEnv[n];
    const srvDir = env[ENV_SRV_DIR] || DEFAULT_SRV_DIR;
    try {
      if (!(await stat(srvDir)).isDirectory()) throw new Error("not a directory");
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
    }, { log: (m) => log(`gangway: relay: ${m}`) });
    const result = await runWorker(ws, {
      srvDir,
      env: commandEnv,
      secretKey,
      store,
      log,
      signal: ac.signal,
      ...(env[ENV_FORCE_ARCH] ? { arch: env[ENV_FORCE_ARCH] } : {}),
    });
    log(summaryLine(result));
    await writeTerminationLog(env[ENV_TERMINATION_LOG] || DEFAULT_TERMINATION_LOG, result);
    if (interrupted) return interrupted.exitCode;
    if (result.exitCode !== 0) console.error(`work: ${result.message ?? "failed"}`);
    else log(`gangway: finished execution`);
    return result.exitCode;
  } catch (e) {
    if (interrupted) return interrupted.exitCode;
    console.error(`work: ${e instanceof Error ? e.message : String(e)}`);
    return exitCodeOf(e);
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
