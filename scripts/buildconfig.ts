/**
 * The BuildConfig role of the worker entry (Gangplank's `gangway` with `BUILD` set and no
 * WorkSpec: the image runs as an OpenShift custom-strategy BuildConfig builder). It reads the
 * binary input on stdin, finds the JobSpec (payload, `COSA_JOBSPEC_URL`/`_REF`/`_FILE`,
 * `<srv>/jobspec.yaml`), adds the implied stages (`COSA_CMDS`, `*.cosa.sh`), and runs it as
 * `submit` does with the kube backend in-cluster, pushing new OSTrees to the Build's
 * `spec.output.to` (lib/buildconfig).
 *
 * `scripts/work.ts` loads this module only in that role, so the worker (and its bundle,
 * `dist/work.js`) carries none of the coordinator; bundled, it is `dist/buildconfig.js` next to
 * `work.js`. It runs on its own too: `BUILD='{...}' deno run -A scripts/buildconfig.ts`.
 *
 * Environment: `BUILD` (the Build object, required), `COSA_WORKER_SERVICE_ACCOUNT` (the worker
 * pods' service account; default the Build's), `COSA_WORKER_SOURCE` (`--worker-source`, default
 * `image`: this pod's image), `COSA_SRV_DIR` (default `/srv`; the Build's context dir wins).
 *
 * Exit code: as `submit`'s; 2 for a bad Build or environment; 130/143 when interrupted.
 *
 * @module
 */

import { UsageError } from "../lib/errors/mod.ts";
import { type CliMain, runCli } from "../lib/cli/harness.ts";
import { processIo } from "./_harness.ts";
import { ENV_BUILD, parseBuild, prepareBuildConfig } from "../lib/buildconfig/mod.ts";
import { submitWith } from "../lib/cli/submit.ts";
import { kubeClientFor } from "../lib/executors/kube_cli.ts";
import { DEFAULT_SRV_DIR, ENV_SRV_DIR } from "../lib/workspec/mod.ts";

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
export const buildConfig: CliMain = async (io) => {
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

/** Runs the BuildConfig role with the current process environment; resolves with its exit code. */
export async function main(): Promise<number> {
  using io = processIo("work", import.meta.url);
  return await runCli("work", buildConfig, io);
}

if (import.meta.main) {
  Deno.exit(await main());
}
