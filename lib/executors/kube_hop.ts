/**
 * Hop mode from the submitting side (`--remote-kubeconfig`): checks the remote cluster, makes
 * the local work dir, runs the coordinator in a hop pod, streams its log to the terminal and
 * `<workDir>/logs/hop.log`, and when the coordinator is done fetches its results (logs, the
 * report and, unless `--no-fetch`, `builds/`) into the work dir, as if the run had been local.
 * The hop pod's own side is lib/kube's `serveHopResults`.
 *
 * @module
 */

import { rename, rm } from "node:fs/promises";
import { UsageError } from "../errors/mod.ts";
import { runHop } from "../kube/mod.ts";
import { fetchHopResults, HOP_RESULTS_READY } from "../kube/hop_results.ts";
import { hopPodName } from "../podspec/mod.ts";
import { checkKubeTarget, kubeClientFor, type KubeCliOptions } from "./kube_cli.ts";
import { DEFAULT_FS_GROUP } from "./kube.ts";

/** Options of {@link runHopFromCli}. */
export interface RunHopFromCliOptions extends KubeCliOptions {
  runId: string;
  jobspecYaml: string;
  args: string[];
  timeoutSeconds: number;
  /** The coordinator command in the image (default: lib/podspec's COORDINATOR_COMMAND). */
  hopCommand?: readonly string[];
  /** Makes the local work dir (called once the cluster checks passed). */
  prepareWorkDir: () => Promise<string>;
  /** Leave `builds/` in the cluster (`--no-fetch`). */
  noFetch?: boolean;
  signal: AbortSignal;
  onLine: (line: string) => void;
  log: (msg: string) => void;
}

/** Moves `from` to `to`, merging directories entry by entry (existing files replaced). */
async function moveInto(from: string, to: string): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(from);
  } catch {
    return;
  }
  if (st.isDirectory) {
    try {
      if ((await Deno.lstat(to)).isDirectory) {
        for await (const e of Deno.readDir(from)) {
          await moveInto(`${from}/${e.name}`, `${to}/${e.name}`);
        }
        return;
      }
    } catch { /* `to` does not exist */ }
  }
  await rm(to, { recursive: true, force: true });
  await rename(from, to);
}

/**
 * Runs the hop pod to its end and returns the coordinator's exit code (1 with the cluster's
 * reason when it never ran, or when its results could not be fetched).
 *
 * @throws {UsageError} for bad input (checked before anything is created).
 */
export async function runHopFromCli(opts: RunHopFromCliOptions): Promise<number> {
  if (!opts.remoteKubeconfig) throw new UsageError("hop mode needs --remote-kubeconfig");
  if (!opts.image) throw new UsageError("--remote-kubeconfig needs --image");
  if (!opts.serviceAccount) throw new UsageError("--remote-kubeconfig needs --serviceaccount");
  const target = { kubeconfig: opts.remoteKubeconfig, namespace: opts.namespace };
  await checkKubeTarget({ ...target, serviceAccount: opts.serviceAccount }, {}, opts.signal);
  const client = kubeClientFor(target, {});
  let fsGroup = typeof opts.fsGroup === "number" ? opts.fsGroup : undefined;
  if (opts.fsGroup === undefined) {
    const groups = await client.apiGroups({ signal: opts.signal });
    if (!groups.includes("security.openshift.io")) fsGroup = DEFAULT_FS_GROUP;
  }
  const workDir = await opts.prepareWorkDir();
  opts.log(`work dir ${workDir}`);
  await Deno.mkdir(`${workDir}/logs`, { recursive: true });
  using hopLog = await Deno.open(`${workDir}/logs/hop.log`, {
    write: true,
    create: true,
    truncate: true,
  });
  const enc = new TextEncoder();
  const token = crypto.randomUUID();
  const staging = `${workDir}/.gangplank-hop-results`;
  let fetching: Promise<unknown> | undefined;
  const out = await runHop(client, {
    runId: opts.runId,
    ...(fsGroup !== undefined ? { fsGroup } : {}),
    ...(opts.runAsUser !== undefined ? { runAsUser: opts.runAsUser } : {}),
    image: opts.image,
    serviceAccount: opts.serviceAccount,
    args: opts.args,
    timeoutSeconds: opts.timeoutSeconds,
    command: opts.hopCommand,
    jobspecYaml: opts.jobspecYaml,
    resultsToken: token,
    onLine: (line) => {
      hopLog.writeSync(enc.encode(line + "\n"));
      if (line.startsWith(HOP_RESULTS_READY)) {
        fetching ??= fetchHopResults({
          kc: client.kc,
          namespace: client.namespace,
          pod: hopPodName(opts.runId),
          token,
          dest: staging,
          signal: opts.signal,
        }).then(() => undefined, (e) => e);
        return;
      }
      opts.onLine(line);
    },
    log: opts.log,
    signal: opts.signal,
  });
  if (out.reason) opts.log(`hop pod: ${out.reason}`);
  const fetchError = await fetching;
  if (fetching && fetchError === undefined) {
    for (const p of [...(opts.noFetch ? [] : ["builds"]), "logs", "report.json"]) {
      await moveInto(`${staging}/${p}`, `${workDir}/${p}`);
    }
    opts.log(
      `results of the hop run in ${workDir}` +
        (opts.noFetch ? " (builds/ left in the cluster)" : ""),
    );
  } else if (fetching) {
    opts.log(`cannot fetch the hop pod's results: ${(fetchError as Error).message}`);
  }
  await rm(staging, { recursive: true, force: true });
  if (fetching && fetchError !== undefined && out.exitCode === 0) return 1;
  return out.exitCode < 0 ? 1 : out.exitCode;
}
