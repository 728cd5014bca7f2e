/**
 * `submit`: the coordinator CLI (Gangplank's `gangplank pod` / `generate`).
 *
 * ```sh
 * deno run -A scripts/submit.ts --spec jobspec.yaml --dry-run          # validate + show the plan
 * deno run -A scripts/submit.ts -A base,qemu+metal --dry-run -o yaml   # generated spec's plan
 * deno run -A scripts/submit.ts generate -A base --yaml-out job.yaml   # write a JobSpec
 * ```
 *
 * Exit codes: 0 success / valid, 2 invalid input (one line per problem on stderr), 1 failure.
 *
 * @module
 */
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { exitCodeOf, InterruptedError, UsageError } from "../lib/errors/mod.ts";
import { newRunId, runJob as runCoordinator } from "../lib/coordinator/mod.ts";
import type { Executor } from "../lib/executors/types.ts";
import { LocalExecutor } from "../lib/executors/local.ts";
import {
  createKubeExecutor,
  kubeCleanup,
  kubeDryRunResources,
  runHopFromCli,
  runningInCluster,
} from "../lib/executors/kube_cli.ts";
import { createPodmanExecutor, parsePodmanRunArgs } from "../lib/executors/podman_cli.ts";
import { readRelayConfig } from "../lib/relay/config.ts";
import { type JobSpec, jobSpecToYaml } from "../lib/jobspec/mod.ts";
import { type Plan, planJob } from "../lib/plan/mod.ts";
import {
  dryRunDocument,
  formatDryRun,
  HelpShown,
  parseSubmitArgs,
  problemLines,
  resolveSpec,
  type SubmitOptions,
  workerBaseEnv,
} from "../lib/cli/mod.ts";

// ---------------------------------------------------------------------------------------------
// Backends

/** What the chosen backend would create for this plan; `undefined` when nothing to show. */
// deno-lint-ignore require-await
async function dryRunResources(
  opts: SubmitOptions,
  plan: Plan,
  _spec: JobSpec,
): Promise<unknown | undefined> {
  if (opts.backend === "kube") {
    return kubeDryRunResources(
      { ...opts, arch: opts.arch },
      plan.groups.flatMap((g) => g.stages).map((s) => ({ id: s.id, index: s.index })),
    );
  }
  return undefined;
}

/** Creates the executor for `--backend`. Other backends add their case here. */
export function createExecutor(
  opts: SubmitOptions,
  env: Record<string, string | undefined>,
): Executor {
  switch (opts.backend) {
    case "local":
      return new LocalExecutor({
        baseEnv: workerBaseEnv(env),
        pathPrefix: opts.workerPath.map((p) => resolve(p)),
      });
    case "kube":
      return createKubeExecutor(
        { ...opts, relayHost: env.POD_IP || undefined },
        env,
        (m) => console.error(m),
      );
    case "podman":
      // CONTAINER_HOST / CONTAINER_SSHKEY and the defaults; `podman-run` has the podman flags.
      return createPodmanExecutor(
        parsePodmanRunArgs([], env).podman,
        env,
        Deno.uid(),
        (m) => console.error(m),
      );
    default:
      throw new UsageError(`--backend ${opts.backend}: not available in this build`);
  }
}

// ---------------------------------------------------------------------------------------------
// Run (here, or hopped into a cluster)

/** A new work dir `./gangplank-run-<yyyymmdd-hhmmss>[-n]`, or `--work-dir` (created if missing). */
async function prepareWorkDir(given: string | undefined, now = new Date()): Promise<string> {
  if (given) {
    const dir = resolve(given);
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  }
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  for (let i = 1; i < 100; i++) {
    const dir = resolve(`gangplank-run-${stamp}${i > 1 ? `-${i}` : ""}`);
    try {
      await Deno.mkdir(dir);
      return dir;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
  throw new UsageError("cannot create a fresh work dir in the current directory");
}

/**
 * Runs the plan for real; returns the exit code. SIGINT/SIGTERM/SIGHUP abort the run: workers
 * are stopped, the relay closed, temp dirs removed, exit 130/143/129.
 */
async function runJob(opts: SubmitOptions, plan: Plan, spec: JobSpec): Promise<number> {
  if (opts.cleanup && opts.backend === "local") {
    // Local workers are child processes and temp dirs of one run, gone when it ends.
    console.log("submit: --cleanup: the local backend leaves nothing behind between runs");
    return 0;
  }
  const env = Deno.env.toObject();
  const ctl = new AbortController();
  const onSignal = (sig: "SIGINT" | "SIGTERM" | "SIGHUP") => () => {
    if (ctl.signal.aborted) return;
    console.error(`submit: ${sig} received: stopping workers and the relay`);
    ctl.abort(new InterruptedError(sig));
  };
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    const relay = opts.minioConfig
      ? await readRelayConfig(opts.minioConfig, { signal: ctl.signal })
      : undefined;
    const workDir = await prepareWorkDir(opts.workDir);
    console.log(`submit: work dir ${workDir}`);
    await using executor = createExecutor(opts, env);
    const report = await runCoordinator({
      spec,
      plan,
      workDir,
      executor,
      ...(relay ? { relay } : {}),
      // In a cluster, worker pods reach the embedded relay at this pod's IP.
      ...(opts.backend === "kube" && runningInCluster(env) ? { relayHost: "0.0.0.0" } : {}),
      arch: opts.arch,
      dependencyTimeoutMs: opts.timeoutMs,
      pollIntervalMs: opts.pollIntervalMs,
      log: (line) => console.log(line),
      signal: ctl.signal,
    });
    if (opts.report) await writeAtomically(opts.report, JSON.stringify(report, null, 2) + "\n");
    if (report.exitCode !== 0 && report.error) console.error(`submit: ${report.error.message}`);
    return report.exitCode;
  } catch (e) {
    if (ctl.signal.aborted) {
      console.error(`submit: interrupted`);
      return exitCodeOf(ctl.signal.reason);
    }
    throw e;
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

/**
 * Hop mode (`--remote-kubeconfig`): the coordinator runs in a pod of that cluster; its log is
 * followed here and its exit code is ours. Ctrl-C deletes the pod and its JobSpec Secret.
 */
async function runHop(opts: SubmitOptions, spec: JobSpec): Promise<number> {
  const ctl = new AbortController();
  const onSignal = (sig: "SIGINT" | "SIGTERM" | "SIGHUP") => () => {
    if (!ctl.signal.aborted) ctl.abort(new InterruptedError(sig));
  };
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    const args = ["--backend", "kube", "--image", opts.image ?? "", "-a", opts.arch];
    if (opts.serviceAccount) args.push("--serviceaccount", opts.serviceAccount);
    return await runHopFromCli({
      ...opts,
      runId: newRunId(),
      jobspecYaml: jobSpecToYaml(spec, { header: false }),
      args,
      timeoutSeconds: 6 * 3600,
      signal: ctl.signal,
      onLine: (line) => console.log(`[hop] ${line}`),
      log: (m) => console.error(`submit: ${m}`),
    });
  } catch (e) {
    if (ctl.signal.aborted) return exitCodeOf(ctl.signal.reason);
    throw e;
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${Deno.pid}`);
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new UsageError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** The whole CLI; returns the exit code. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
): Promise<number> {
  const err = (s: string) => console.error(s);
  let opts: SubmitOptions;
  try {
    opts = parseSubmitArgs(argv, env);
  } catch (e) {
    if (e instanceof HelpShown) {
      await Deno.stdout.write(new TextEncoder().encode(e.text));
      return 0;
    }
    err(`submit: ${(e as Error).message}`);
    return exitCodeOf(e);
  }
  // In a pod with a service account and no explicit --backend, workers are pods too.
  if (
    opts.backend === "local" && runningInCluster(env) &&
    !argv.some((a) => a === "--backend" || a.startsWith("--backend="))
  ) {
    opts.backend = "kube";
  }
  try {
    if (opts.cleanup && opts.backend === "kube") {
      await kubeCleanup(opts, env, AbortSignal.timeout(120_000), (m) => console.log(m));
      return 0;
    }
    const spec = await resolveSpec(opts, err);
    if (opts.command === "generate") {
      const text = jobSpecToYaml(spec);
      if (opts.yamlOut) await writeAtomically(opts.yamlOut, text);
      else await Deno.stdout.write(new TextEncoder().encode(text));
      return 0;
    }
    if (opts.dryRun) {
      const plan = planJob(spec, { assumeExisting: opts.assumeExisting });
      const problems: string[] = [];
      const doc = dryRunDocument(opts, spec, plan, problems);
      if (problems.length) {
        for (const p of problems) err(p);
        return 2;
      }
      const resources = await dryRunResources(opts, plan, spec);
      if (resources !== undefined) doc.resources = resources;
      await Deno.stdout.write(new TextEncoder().encode(formatDryRun(doc, opts.output)));
      return 0;
    }
    const plan = planJob(spec, { assumeExisting: true });
    for (const w of plan.warnings) err(`warning: ${w}`);
    if (opts.remoteKubeconfig) return await runHop(opts, spec);
    return await runJob(opts, plan, spec);
  } catch (e) {
    if (e instanceof UsageError) {
      for (const line of problemLines(e)) err(line);
      return exitCodeOf(e);
    }
    err(`submit: ${(e as Error).stack ?? e}`);
    return exitCodeOf(e);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.toObject()));
}
