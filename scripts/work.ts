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
 * BuildConfig builder) → the BuildConfig coordinator, which reads the binary input on stdin,
 * finds the JobSpec (payload, `COSA_JOBSPEC_URL`/`_REF`/`_FILE`, `<srv>/jobspec.yaml`), adds
 * the implied stages (`COSA_CMDS`, `*.cosa.sh`), and runs it with the kube backend in-cluster,
 * pushing new OSTrees to the Build's `spec.output.to` (lib/buildconfig); neither → exit 2.
 *
 * Exit code: 0 on success; the failing command's exit code; 1 for fetch/upload failures; 2 for
 * a bad WorkSpec, Build or environment; 130/143 when interrupted by SIGINT/SIGTERM.
 *
 * @module
 */

import { stat, writeFile } from "node:fs/promises";
import { InterruptedError, UsageError } from "../lib/errors/mod.ts";
import { type CliMain, runCli } from "../lib/cli/harness.ts";
import { processIo } from "./_harness.ts";
import { entryRole, ENV_BUILD, parseBuild, prepareBuildConfig } from "../lib/buildconfig/mod.ts";
import { submitWith } from "../lib/cli/submit.ts";
import { kubeClientFor } from "../lib/executors/kube_cli.ts";
import { ArtifactStore } from "../lib/relay/client/mod.ts";
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

/** `git clone` for a JobSpec repository (`COSA_JOBSPEC_URL`): no prompt, a one-line error. */
async function gitClone(argv: string[], signal: AbortSignal): Promise<void> {
  const o = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: { GIT_TERMINAL_PROMPT: "0" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal,
  }).output();
  if (!o.success) {
    const last = new TextDecoder().decode(o.stderr).trim().split("\n").pop() ?? "";
    throw new UsageError(`COSA_JOBSPEC_URL: git clone failed: ${last}`);
  }
}

/**
 * The BuildConfig role (env `BUILD`, an OpenShift custom-strategy build): prepares the JobSpec
 * (binary input on stdin, implied stages, recipe, the output image) and runs it as `submit`
 * does, with the kube backend in-cluster: workers are pods of the build's namespace, run by
 * its service account, from this pod's image.
 */
const buildConfig: CliMain = async (io) => {
  const log = (line: string) => io.stdout(`${line}\n`);
  const build = parseBuild(io.env[ENV_BUILD] ?? "");
  const srvDir = build.contextDir ?? (io.env[ENV_SRV_DIR] || DEFAULT_SRV_DIR);
  log(
    `gangplank: OpenShift build ${build.namespace ? `${build.namespace}/` : ""}${build.name}` +
      (build.output ? `, output ${build.output.kind} ${build.output.name}` : ""),
  );
  const prepared = await prepareBuildConfig({
    build,
    env: io.env,
    srvDir,
    stdin: () => Deno.stdin.readable,
    clone: gitClone,
    // ImageStreamTag outputs: the stream's repository, read with this pod's service account.
    imageStreamRepository: (ns, name, signal) =>
      kubeClientFor({}, io.env).imageStreamRepository(ns, name, { signal }),
    log,
    signal: io.signal,
  });
  if (!prepared) {
    log(
      "gangplank: no work to do: set COSA_CMDS, give a JobSpec with stages, or send " +
        "*.cosa.sh scripts as binary input",
    );
    return 0;
  }
  await using _spec = prepared;
  const sa = io.env[ENV_BUILD_WORKER_SA] || build.serviceAccount;
  return await submitWith({
    ...io,
    argv: [
      "--spec",
      prepared.specPath,
      "--backend",
      "kube",
      "-w",
      prepared.workDir,
      "--worker-source",
      io.env[ENV_BUILD_WORKER_SOURCE] || "image",
      ...(sa ? ["--serviceaccount", sa] : []),
    ],
  }, { workerFiles: prepared.workerFiles });
};

/** Worker pods' service account in BuildConfig mode (default: the Build's). */
const ENV_BUILD_WORKER_SA = "COSA_WORKER_SERVICE_ACCOUNT";
/** `--worker-source` of the BuildConfig role (default `image`: this pod's image). */
const ENV_BUILD_WORKER_SOURCE = "COSA_WORKER_SOURCE";

/**
 * The entry's role (Gangplank's `gangway`): a worker with `COSA_WORK_POD_JSON`, else the
 * BuildConfig coordinator with `BUILD`, else exit 2 naming both.
 */
const gangway: CliMain = (io) => entryRole(io.env) === "worker" ? work(io) : buildConfig(io);

/** Runs the worker with the current process environment; resolves with its exit code. */
export async function main(): Promise<number> {
  takeLifeline(() => Deno.stdin.readable.getReader());
  using io = processIo("work", import.meta.url);
  return await runCli("work", gangway, io);
}

if (import.meta.main) {
  Deno.exit(await main());
}
