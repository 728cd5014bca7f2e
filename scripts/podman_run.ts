/**
 * `podman-run` (Gangplank's `gangplank pod --podman`): runs a JobSpec with every stage's
 * worker in a podman container, on this host or on a remote one over SSH
 * (`CONTAINER_HOST=ssh://user@host[:port]/run/user/1000/podman/podman.sock`).
 *
 * ```sh
 * deno task podman-run -s jobspec.yaml -w ./work                      # local podman socket
 * CONTAINER_HOST=ssh://core@builder/run/user/1000/podman/podman.sock \
 * CONTAINER_SSHKEY=~/.ssh/id_ed25519 deno task podman-run -A base -i quay.io/me/worker:latest
 * deno task podman-run --cleanup                                      # remove leftovers
 * ```
 *
 * Every flag of `submit` applies (`-s`, `-A`, `-a`, `--dry-run`, `--report`, ...); the podman
 * flags are listed by `--help`. Exit codes: 0 success, 1 failure, 2 bad input, 130 Ctrl-C.
 *
 * @module
 */
import { resolve } from "node:path";
import { exitCodeOf, InterruptedError, UsageError } from "../lib/errors/mod.ts";
import { newRunId, runJob } from "../lib/coordinator/mod.ts";
import {
  containerHostOf,
  createPodmanExecutor,
  parsePodmanRunArgs,
  PODMAN_HELP,
  type PodmanRunOptions,
} from "../lib/executors/podman_cli.ts";
import { planJob } from "../lib/plan/mod.ts";
import { bundle } from "./bundle.ts";
import { HelpShown, parseSubmitArgs, resolveSpec, type SubmitOptions } from "../lib/cli/mod.ts";
import { main as submitMain } from "./submit.ts";

async function newWorkDir(cwd: string): Promise<string> {
  return await Deno.makeTempDir({ dir: cwd, prefix: "gangplank-work-" });
}

/** The whole CLI; returns the exit code. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<number> {
  const err = (s: string) => console.error(s);
  const out = (s: string) => console.log(s);
  let podman: PodmanRunOptions;
  let opts: SubmitOptions;
  let rest: string[];
  try {
    ({ podman, rest } = parsePodmanRunArgs(argv, env));
    opts = parseSubmitArgs([...rest, "--backend", "podman"], env);
  } catch (e) {
    if (e instanceof HelpShown) {
      const text = e.text.replace(/^Usage: submit/m, "Usage: podman-run") + PODMAN_HELP;
      await Deno.stdout.write(new TextEncoder().encode(text));
      return 0;
    }
    err(`podman-run: ${(e as Error).message}`);
    return exitCodeOf(e);
  }
  if (opts.command !== "run" || opts.dryRun) {
    // generate / dry runs need no podman: exactly submit's behaviour.
    return await submitMain([...rest, "--backend", "podman"], env);
  }
  try {
    await using executor = createPodmanExecutor(podman, env, Deno.uid(), err);
    if (opts.cleanup) {
      const r = await executor.cleanup({
        runId: podman.runId,
        signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]),
      });
      out(
        `podman-run: removed ${r.containers.length} container(s), ${r.volumes.length} ` +
          `volume(s), ${r.secrets.length} secret(s) on ${executor.where}` +
          (podman.runId ? ` (run ${podman.runId})` : ""),
      );
      for (const c of r.containers) out(`  container ${c}`);
      for (const v of r.volumes) out(`  volume ${v}`);
      for (const s of r.secrets) out(`  secret ${s}`);
      return 0;
    }
    const spec = await resolveSpec(opts, err);
    const plan = planJob(spec, { assumeExisting: true });
    for (const w of plan.warnings) err(`warning: ${w}`);
    let workDir: string;
    if (opts.workDir) {
      workDir = resolve(opts.workDir);
      await Deno.mkdir(workDir, { recursive: true });
    } else {
      workDir = await newWorkDir(Deno.cwd());
      err(`podman-run: work dir ${workDir}`);
    }
    if (containerHostOf(podman, env, Deno.uid()).kind === "unix") {
      // Local hosts get the current worker bind-mounted: bundle it first.
      await bundle({ entries: ["work"], signal });
    }
    const runId = newRunId();
    const report = await runJob({
      spec,
      plan,
      workDir,
      executor,
      ...(podman.archGiven ? { arch: opts.arch } : {}),
      dependencyTimeoutMs: opts.timeoutMs,
      pollIntervalMs: opts.pollIntervalMs,
      log: out,
      signal,
      runId,
    });
    if (opts.report) {
      await Deno.writeTextFile(opts.report, JSON.stringify(report, null, 2) + "\n");
    }
    if (signal.aborted && signal.reason instanceof InterruptedError) {
      return signal.reason.exitCode;
    }
    return report.exitCode;
  } catch (e) {
    if (signal.aborted && signal.reason instanceof InterruptedError) {
      err(`podman-run: ${signal.reason.message}`);
      return signal.reason.exitCode;
    }
    err(`podman-run: ${e instanceof UsageError ? e.message : (e as Error).message ?? e}`);
    return exitCodeOf(e);
  }
}

if (import.meta.main) {
  const ctl = new AbortController();
  let interrupts = 0;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    Deno.addSignalListener(sig, () => {
      if (++interrupts > 1) {
        console.error("podman-run: second interrupt, exiting now (run --cleanup later)");
        Deno.exit(new InterruptedError(sig).exitCode);
      }
      console.error(`podman-run: ${sig}: stopping workers and removing containers...`);
      ctl.abort(new InterruptedError(sig));
    });
  }
  Deno.exit(await main(Deno.args, Deno.env.toObject(), ctl.signal));
}
