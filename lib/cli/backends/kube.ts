/**
 * `--backend kube`: every stage's worker is a Kubernetes/OpenShift pod. With
 * `--remote-kubeconfig` the coordinator itself runs in a pod of that cluster (hop mode).
 *
 * @module
 */
import { resolve } from "node:path";
import type { KubeCliOptions } from "../../executors/kube_cli.ts";
import { UsageError } from "../../errors/mod.ts";
import { bundlePartCount } from "../../podspec/stock_worker.ts";
import { HOP_TOKEN_FILE_ENV, HOP_WORK_DIR } from "../../podspec/hop.ts";
import { prepareWorkDir } from "../work_dir.ts";
import { lockWorkDir } from "../work_lock.ts";
import { kubeRelayPlan } from "../../executors/kube_relay.ts";
import { runningInCluster } from "../../kube/in_cluster.ts";
import { jobSpecToYaml } from "../../jobspec/mod.ts";
import { workerSourceOptions } from "./worker_source.ts";
import { type FlagDef, parseDuration, parseHostPort, parseId } from "../flags.ts";
import type { SubmitOptions } from "../submit_options.ts";
import type { BackendDef, BackendRuntime } from "./types.ts";

/** Flags of the kube backend. */
export const KUBE_FLAGS: readonly FlagDef[] = [
  {
    flags: "--kubeconfig <file>",
    help: "kubeconfig (default $KUBECONFIG, or the pod's service account in a cluster)",
    group: "kube",
  },
  {
    flags: "--namespace <ns>",
    help: "namespace (default: the kubeconfig context's)",
    group: "kube",
    old: ["-N"],
  },
  { flags: "--serviceaccount <sa>", help: "service account of the worker/hop pods", group: "kube" },
  {
    flags: "--remote-kubeconfig <file>",
    help: "run the coordinator itself in a pod of that cluster (hop) and follow it",
    group: "kube",
    old: ["-R", "--remoteKubeConfig"],
  },
  {
    flags: "--relay-address <host[:port]>",
    help: "outside the cluster: an address of this machine worker pods reach the relay at",
    group: "kube",
    parse: (v) => parseHostPort(v, "--relay-address"),
  },
  {
    flags: "--fs-group <gid>",
    help: "pods' fsGroup (default 1000; OpenShift: its own); none to leave it unset",
    group: "kube",
    parse: (v) => parseId(v, "--fs-group", true),
  },
  {
    flags: "--run-as-user <uid>",
    help: "pods' runAsUser (default: the image's user)",
    group: "kube",
    parse: (v) => parseId(v, "--run-as-user", false),
  },
  {
    flags: "--no-fetch",
    help: "hop: leave builds/ in the cluster (logs and the report still come back)",
    group: "kube",
  },
  {
    flags: "--serve-results",
    help: "hop pod: after the run, serve its results to the submitting side (set by hop mode)",
    group: "kube",
  },
  {
    flags: "--unschedulable-timeout <duration>",
    help: "fail a pod that stays Unschedulable this long",
    group: "kube",
    default: "2m",
    parse: parseDuration,
  },
];

/** The kube options of a parsed command line. */
export function kubeOptions(opts: SubmitOptions): KubeCliOptions & {
  unschedulableTimeoutMs: number;
  runId?: string;
} {
  const f = opts.flags;
  const str = (k: string) => (f[k] === undefined ? undefined : String(f[k]));
  return {
    kubeconfig: str("kubeconfig"),
    namespace: str("namespace"),
    image: opts.image,
    serviceAccount: str("serviceaccount"),
    remoteKubeconfig: str("remoteKubeconfig"),
    relayAddress: f.relayAddress as KubeCliOptions["relayAddress"],
    minioConfig: opts.minioConfig,
    fsGroup: f.fsGroup as KubeCliOptions["fsGroup"],
    runAsUser: f.runAsUser as number | undefined,
    ...workerSourceOptions(f),
    unschedulableTimeoutMs: (f.unschedulableTimeout as number | undefined) ?? 120_000,
    runId: opts.runId,
  };
}

/** The arguments of the coordinator in the hop pod (after `--spec <file>`). */
function hopArgs(o: SubmitOptions): string[] {
  const k = kubeOptions(o);
  const args = ["--backend", "kube", "--image", k.image ?? ""];
  if (o.arch) args.push("-a", o.arch);
  if (k.serviceAccount) args.push("--serviceaccount", k.serviceAccount);
  if (k.fsGroup !== undefined) args.push("--fs-group", String(k.fsGroup));
  if (k.runAsUser !== undefined) args.push("--run-as-user", String(k.runAsUser));
  if (k.workerSource) args.push("--worker-source", k.workerSource);
  if (k.denoImage) args.push("--deno-image", k.denoImage);
  args.push("--timeout", `${o.timeoutMs}ms`, "--poll-interval", `${o.pollIntervalMs}ms`);
  // The pod's coordinator works in its emptyDir and serves the results back when done.
  args.push("-w", HOP_WORK_DIR, "--report", `${HOP_WORK_DIR}/report.json`, "--serve-results");
  if (o.flags.fetch === false) args.push("--no-fetch");
  if (o.assumeExisting) args.push("--assume-existing");
  // -e values are ordinary (non-secret) settings by definition; they travel in the hop's args.
  for (const [key, v] of Object.entries(o.workerEnv)) args.push("-e", `${key}=${v}`);
  return args;
}

const load = async () => await import("../../executors/kube_cli.ts");

const runtime: BackendRuntime = {
  async createExecutor(ctx) {
    const { checkKubeTarget, createKubeExecutor, readWorkerBundle } = await load();
    const k = kubeOptions(ctx.opts);
    kubeRelayPlan(k, runningInCluster(ctx.env)); // refuses before creating anything
    await checkKubeTarget(k, ctx.env, ctx.signal);
    let bundle;
    if (k.workerSource !== "image") {
      const path = ctx.install.workerBundle ??
        (ctx.install.bundleWorker ? await ctx.install.bundleWorker(ctx.signal) : undefined);
      if (!path) {
        throw new UsageError(
          "--worker-source stock needs the bundled worker work.js next to this program " +
            "(deno task bundle), or --worker-source image with an image that has it",
        );
      }
      bundle = await readWorkerBundle(path);
    }
    return createKubeExecutor(
      { ...k, relayHost: ctx.env.POD_IP || undefined, ...(bundle ? { bundle } : {}) },
      ctx.env,
      ctx.log,
    );
  },
  async cleanup(ctx) {
    const { kubeCleanup } = await load();
    await kubeCleanup(
      kubeOptions(ctx.opts),
      ctx.env,
      AbortSignal.any([ctx.signal, AbortSignal.timeout(120_000)]),
      ctx.out,
    );
    return 0;
  },
  async dryRunResources(ctx, plan) {
    const { kubeDryRunResources, readWorkerBundle } = await load();
    const k = kubeOptions(ctx.opts);
    // The bundle's sha256 when a bundled worker is at hand (never built just for a dry run).
    const read = k.workerSource !== "image" && ctx.install.workerBundle
      ? await readWorkerBundle(ctx.install.workerBundle)
      : undefined;
    const bundle = read
      ? { sha256: read.sha256, parts: bundlePartCount(read.gzip.length) }
      : undefined;
    return kubeDryRunResources(
      { ...k, arch: ctx.opts.arch, ...(bundle ? { bundle } : {}) },
      plan.groups.flatMap((g) => g.stages).map((s) => ({ id: s.id, index: s.index })),
      hopArgs(ctx.opts),
    );
  },
  // In a cluster, worker pods reach the embedded relay at this pod's IP; outside, at
  // --relay-address (or the -m endpoint); never at a loopback address.
  relay(ctx) {
    const k = kubeOptions(ctx.opts);
    if (k.remoteKubeconfig) return { advertised: "the hop pod's IP (in the cluster)" };
    const p = kubeRelayPlan(k, runningInCluster(ctx.env));
    return {
      advertised: p.advertised,
      ...(p.listenHost ? { host: p.listenHost } : {}),
      ...(p.listenPort ? { port: p.listenPort } : {}),
    };
  },
  async runElsewhere(ctx, spec) {
    const k = kubeOptions(ctx.opts);
    if (!k.remoteKubeconfig) return undefined;
    const { runHopFromCli } = await import("../../executors/kube_hop.ts");
    const { newRunId } = await import("../../coordinator/run.ts");
    const o = ctx.opts;
    let workDir: string | undefined;
    const runId = newRunId();
    // The local work dir (logs, fetched results) is locked like a local run's, until the end.
    await using held = new AsyncDisposableStack();
    const code = await runHopFromCli({
      ...k,
      runId,
      jobspecYaml: jobSpecToYaml(spec, { header: false }),
      args: hopArgs(o),
      timeoutSeconds: 6 * 3600,
      prepareWorkDir: async () => {
        const dir = await prepareWorkDir(o.workDir, ctx.cwd);
        held.use(
          await lockWorkDir(dir, { runId, ...(ctx.pid !== undefined ? { pid: ctx.pid } : {}) }, {
            flag: `-w ${o.workDir ?? dir}`,
            warn: ctx.log,
            signal: ctx.signal,
          }),
        );
        return (workDir = dir);
      },
      noFetch: o.flags.fetch === false,
      signal: ctx.signal,
      onLine: (line) => ctx.out(`[hop] ${line}`),
      log: (m) => ctx.log(`submit: ${m}`),
    });
    // --report here: written from the report the hop pod's coordinator sent back.
    if (workDir && o.reports.length) {
      const { writeReports } = await import("../reports.ts");
      try {
        const report = JSON.parse(await Deno.readTextFile(`${workDir}/report.json`));
        await writeReports(o.reports.map((r) => resolve(ctx.cwd, r)), report);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        ctx.log("submit: no report came back from the hop pod");
      }
    }
    return code;
  },
  // In the hop pod (--serve-results): hand the run's results to the submitting side.
  async afterRun(ctx, run) {
    if (!ctx.opts.flags.serveResults) return;
    const { serveHopResults } = await import("../../kube/hop_results.ts");
    const file = ctx.env[HOP_TOKEN_FILE_ENV];
    const token = file ? (await Deno.readTextFile(file)).trim() : "";
    if (!token) {
      throw new UsageError(`--serve-results needs the token file named by $${HOP_TOKEN_FILE_ENV}`);
    }
    await serveHopResults({
      workDir: run.workDir,
      paths: [...(ctx.opts.flags.fetch === false ? [] : ["builds"]), "logs", "report.json"],
      token,
      log: ctx.out,
      signal: ctx.signal,
    });
  },
};

/** The kube backend. */
export const kubeBackend: BackendDef = {
  name: "kube",
  summary: "workers are Kubernetes/OpenShift pods",
  flags: KUBE_FLAGS,
  load: () => Promise.resolve(runtime),
};
