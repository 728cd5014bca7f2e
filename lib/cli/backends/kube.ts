/**
 * `--backend kube`: every stage's worker is a Kubernetes/OpenShift pod. With
 * `--remote-kubeconfig` the coordinator itself runs in a pod of that cluster (hop mode).
 *
 * @module
 */
import type { KubeCliOptions } from "../../executors/kube_cli.ts";
import { kubeRelayPlan } from "../../executors/kube_relay.ts";
import { runningInCluster } from "../../kube/in_cluster.ts";
import { jobSpecToYaml } from "../../jobspec/mod.ts";
import { type FlagDef, parseDuration, parseHostPort, parseId } from "../flags.ts";
import type { SubmitOptions } from "../submit_args.ts";
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
    unschedulableTimeoutMs: (f.unschedulableTimeout as number | undefined) ?? 120_000,
    runId: opts.runId,
  };
}

const load = async () => await import("../../executors/kube_cli.ts");

const runtime: BackendRuntime = {
  async createExecutor(ctx) {
    const { createKubeExecutor } = await load();
    kubeRelayPlan(kubeOptions(ctx.opts), runningInCluster(ctx.env)); // refuses before creating
    return createKubeExecutor(
      { ...kubeOptions(ctx.opts), relayHost: ctx.env.POD_IP || undefined },
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
    const { kubeDryRunResources } = await load();
    return kubeDryRunResources(
      { ...kubeOptions(ctx.opts), arch: ctx.opts.arch },
      plan.groups.flatMap((g) => g.stages).map((s) => ({ id: s.id, index: s.index })),
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
    const { runHopFromCli } = await load();
    const { newRunId } = await import("../../coordinator/run.ts");
    const o = ctx.opts;
    const args = ["--backend", "kube", "--image", k.image ?? ""];
    if (o.arch) args.push("-a", o.arch);
    if (k.serviceAccount) args.push("--serviceaccount", k.serviceAccount);
    args.push("--timeout", `${o.timeoutMs}ms`, "--poll-interval", `${o.pollIntervalMs}ms`);
    if (o.assumeExisting) args.push("--assume-existing");
    // -e values are ordinary (non-secret) settings by definition; they travel in the hop's args.
    for (const [key, v] of Object.entries(o.workerEnv)) args.push("-e", `${key}=${v}`);
    return await runHopFromCli({
      ...k,
      runId: newRunId(),
      jobspecYaml: jobSpecToYaml(spec, { header: false }),
      args,
      timeoutSeconds: 6 * 3600,
      signal: ctx.signal,
      onLine: (line) => ctx.out(`[hop] ${line}`),
      log: (m) => ctx.log(`submit: ${m}`),
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
