/**
 * `submit` and `podman-run` as functions of a {@link CliIo}: parse, resolve the JobSpec, plan,
 * then dry-run, generate, clean up, or run it with the chosen backend (from the registry,
 * loaded lazily). Every input is validated before a directory, container or pod is created.
 *
 * @module
 */
import { resolve } from "node:path";
import { UsageError } from "../errors/mod.ts";
import { type JobSpec, jobSpecToYaml } from "../jobspec/mod.ts";
import { RUN_STATE_FILE } from "../coordinator/resume.ts";
import { OverrideFetchError, overrideFilePath } from "../coordinator/overrides.ts";
import { type Plan, planJob } from "../plan/mod.ts";
import { runningInCluster } from "../kube/in_cluster.ts";
import { BACKENDS } from "./backends/mod.ts";
import type { BackendContext } from "./backends/types.ts";
import { dryRunDocument, formatDryRun } from "./dry_run.ts";
import { type CliIo, type CliMain, lines } from "./harness.ts";
import { parseKeyValue } from "./flags.ts";
import { resolveSpec } from "./resolve_spec.ts";
import { liveViewFor } from "./live.ts";
import type { LiveView } from "../log/live_view.ts";
import { writeOutputFile, writeReports } from "./reports.ts";
import { envDigestFor, loadResume, recheckResume, type ResumeInputs } from "./resume.ts";
import { checkWorkDirFree, lockWorkDir } from "./work_lock.ts";
import type { DryRunDocument } from "./dry_run.ts";
import { parseSubmitArgs, VERSION } from "./submit_args.ts";
import { isReservedEnv, type Program, type SubmitOptions } from "./submit_options.ts";
import { prepareWorkDir } from "./work_dir.ts";
import type { RemoteFile } from "../workspec/mod.ts";

/** What a caller inside the project adds to a `submit` command line. */
export interface SubmitExtras {
  /** Objects every stage's worker fetches, outside the job bucket (the BuildConfig payload). */
  workerFiles?: readonly RemoteFile[];
}

/** This machine's architecture in cosa's naming. */
function localArch(): string {
  const a: string = Deno.build.arch;
  return a === "amd64" ? "x86_64" : a === "arm64" ? "aarch64" : a;
}

/** Reads the `--env-file`s (`KEY=VALUE` lines; blank lines and `#` comments skipped). */
export async function readEnvFiles(
  files: readonly string[],
  cwd: string,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(resolve(cwd, f));
    } catch (e) {
      throw new UsageError(`--env-file ${f}: ${(e as Error).message}`);
    }
    text.split("\n").forEach((line, i) => {
      const t = line.trim();
      if (t === "" || t.startsWith("#")) return;
      let kv: [string, string];
      try {
        kv = parseKeyValue("--env-file", t.replace(/^export\s+/, ""));
      } catch {
        throw new UsageError(`--env-file ${f}:${i + 1}: expected KEY=VALUE`);
      }
      if (isReservedEnv(kv[0])) {
        throw new UsageError(`--env-file ${f}:${i + 1}: ${kv[0]}: set by gangplank itself`);
      }
      out[kv[0]] = kv[1];
    });
  }
  return out;
}

/** Refuses a `-w` that exists and is not a directory (before anything is created). */
async function checkWorkDir(dir: string): Promise<void> {
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new UsageError(`-w ${dir}: not a directory`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new UsageError(`-w ${dir}: ${(e as Error).message}`);
    }
  }
}

/** Runs `submit`'s or `podman-run`'s command line. */
async function submitLike(
  program: Program,
  io: CliIo,
  extras: SubmitExtras = {},
): Promise<number> {
  const out = lines(io.stdout);
  // While the live view draws on the terminal, messages go above its block (not under it).
  let live: LiveView | undefined;
  const err = (line: string) => live ? live.log(line) : io.stderr(`${line}\n`);
  const opts = parseSubmitArgs([...io.argv], io.env, program);
  for (const n of opts.notes) err(`${program}: ${n}`);
  if (opts.command === "version") {
    out(`${program} (gangplank on Deno) ${VERSION}`);
    return 0;
  }
  if (opts.command === "minio") {
    const { relay } = await import("./relay.ts");
    return await relay({ ...io, argv: opts.relayArgs });
  }
  // In a pod with a service account and no explicit --backend, workers are pods too.
  if (!opts.backendGiven && opts.backend === "local" && runningInCluster(io.env)) {
    opts.backend = "kube";
  }
  const ctx: BackendContext = {
    opts,
    env: io.env,
    uid: io.uid,
    ...(io.pid !== undefined ? { pid: io.pid } : {}),
    cwd: io.cwd,
    install: io.install,
    log: err,
    out,
    signal: io.signal,
  };
  if (opts.cleanup) {
    const runtime = await BACKENDS[opts.backend].load();
    return await runtime.cleanup(ctx);
  }
  const resume = opts.resume !== undefined
    ? await loadResume(opts, io.cwd, err, io.signal)
    : undefined;
  const spec = resume?.spec ?? await resolveSpec(resolvePaths(opts, io.cwd), err);
  if (opts.command === "generate") {
    const text = jobSpecToYaml(spec);
    if (opts.yamlOut) await writeOutputFile(resolve(io.cwd, opts.yamlOut), text);
    else io.stdout(text);
    return 0;
  }
  // Dry run and run plan alike: a requirement nothing produces is refused by both, unless
  // --assume-existing says the store has it.
  const plan: Plan = planJob(spec, { assumeExisting: opts.assumeExisting });
  const runtime = await BACKENDS[opts.backend].load();
  // Every input is checked (by the dry run too) before anything is created.
  const workerEnv = { ...(await readEnvFiles(opts.envFiles, io.cwd)), ...opts.workerEnv };
  opts.workerEnv = workerEnv;
  const relay = opts.minioConfig
    ? await readMinioConfig(resolve(io.cwd, opts.minioConfig), io.signal)
    : undefined;
  if (opts.workDir && !resume) {
    const dir = resolve(io.cwd, opts.workDir);
    await checkWorkDir(dir);
    // Refused at once when another run holds it (taken for real once the dir exists, below).
    if (!opts.dryRun) {
      await checkWorkDirFree(dir, { flag: `-w ${opts.workDir}`, signal: io.signal });
    }
  }
  await checkLocalOverrides(spec, io.cwd);
  if (opts.dryRun) {
    const problems: string[] = [];
    const doc = dryRunDocument(
      {
        ...opts,
        arch: opts.arch ?? (opts.backend === "local" ? localArch() : "(the workers')"),
        ...(resume && !opts.spec ? { spec: `${resume.workDir}/${RUN_STATE_FILE}` } : {}),
      },
      spec,
      plan,
      problems,
    );
    if (problems.length) {
      for (const p of problems) err(p);
      return 2;
    }
    const relayAt = runtime.relay?.(ctx)?.advertised;
    if (relayAt) doc.relay = relayAt;
    const resources = await runtime.dryRunResources?.(ctx, plan);
    if (resources !== undefined) doc.resources = resources;
    if (resume) doc.resume = await resumePreview(opts, io, plan, spec, resume);
    io.stdout(formatDryRun(doc, opts.output));
    return 0;
  }
  for (const w of plan.warnings) err(`warning: ${w}`);
  const hop = await runtime.runElsewhere?.(ctx, spec);
  if (hop !== undefined) return hop;
  // Declared first, released last: the work dir stays locked until the executor has cleaned up.
  await using locked = new AsyncDisposableStack();
  await using executor = await runtime.createExecutor(ctx);
  const workDir = resume?.workDir ?? await prepareWorkDir(opts.workDir, io.cwd);
  const { newRunId, runJob } = await import("../coordinator/run.ts");
  const runId = newRunId();
  locked.use(
    await lockWorkDir(workDir, { runId, ...(io.pid !== undefined ? { pid: io.pid } : {}) }, {
      flag: resume ? `--resume ${opts.resume}` : opts.workDir ? `-w ${opts.workDir}` : "-w",
      warn: err,
      signal: io.signal,
    }),
  );
  if (resume) await recheckResume(resume);
  err(`${program}: work dir ${workDir}`);
  const envDigest = await envDigestFor(workerEnv, io.env, { create: true, warn: err });
  const relayAt = runtime.relay?.(ctx);
  if (relayAt?.advertised) err(`${program}: workers reach the relay at ${relayAt.advertised}`);
  using view = liveViewFor({ ...io, plan, runId, write: io.stdout });
  live = view;
  // Interrupted: the block goes at once; the rest of the run prints plain lines.
  const onAbort = () => view?.close();
  io.signal.addEventListener("abort", onAbort, { once: true });
  using _ = { [Symbol.dispose]: () => io.signal.removeEventListener("abort", onAbort) };
  const report = await runJob({
    runId,
    ...(resume ? { resume: resume.state } : {}),
    ...(view ? { observer: view } : {}),
    spec,
    plan,
    workDir,
    executor,
    ...(relay ? { relay } : {}),
    ...(relayAt?.host ? { relayHost: relayAt.host } : {}),
    ...(relayAt?.port ? { relayPort: relayAt.port } : {}),
    ...(opts.arch ? { arch: opts.arch } : {}),
    workerEnv,
    envDigest,
    overridesBaseDir: io.cwd,
    ...(extras.workerFiles?.length ? { workerFiles: extras.workerFiles } : {}),
    dependencyTimeoutMs: opts.timeoutMs,
    pollIntervalMs: opts.pollIntervalMs,
    log: view ? (line) => view.log(line) : out,
    signal: io.signal,
  });
  view?.close();
  live = undefined;
  await writeReports(opts.reports.map((r) => resolve(io.cwd, r)), report);
  await runtime.afterRun?.(ctx, { workDir, exitCode: report.exitCode });
  if (report.exitCode !== 0 && report.error) err(`${program}: ${report.error.message}`);
  return report.exitCode;
}

/** `--dry-run --resume`: which stages would run again, and why (the store is only read). */
async function resumePreview(
  opts: SubmitOptions,
  io: CliIo,
  plan: Plan,
  spec: JobSpec,
  resume: ResumeInputs,
): Promise<NonNullable<DryRunDocument["resume"]>> {
  const relay = opts.minioConfig
    ? await readMinioConfig(resolve(io.cwd, opts.minioConfig), io.signal)
    : undefined;
  const { previewResume } = await import("../coordinator/run.ts");
  const envDigest = await envDigestFor(opts.workerEnv, io.env, { create: false, warn: () => {} });
  const decisions = await previewResume({
    spec,
    envDigest,
    plan,
    workDir: resume.workDir,
    state: resume.state,
    ...(relay ? { relay } : {}),
    signal: io.signal,
  });
  return {
    runId: resume.state.runId,
    workDir: resume.workDir,
    stages: [...decisions].map(([id, d]) => ({ id, run: d.run, reason: d.reason })),
  };
}

/** `-m`: the external S3 endpoint's config; an unreadable or invalid file is bad input. */
async function readMinioConfig(file: string, signal: AbortSignal) {
  const { readRelayConfig } = await import("../relay/config.ts");
  try {
    return await readRelayConfig(file, { signal });
  } catch (e) {
    if (e instanceof UsageError || signal.aborted) throw e;
    throw new UsageError(`-m ${file}: ${(e as Error).message}`);
  }
}

/** Every `file://` override is a readable file (http ones are fetched when the run starts). */
async function checkLocalOverrides(spec: JobSpec, cwd: string): Promise<void> {
  for (const s of spec.stages) {
    for (const o of s.overrides ?? []) {
      if (!o.uri.startsWith("file://")) continue;
      const path = overrideFilePath(o.uri, cwd);
      try {
        if (!(await Deno.stat(path)).isFile) throw new Error("not a regular file");
      } catch (e) {
        throw new OverrideFetchError(s.id ?? "", o.uri, `${path}: ${(e as Error).message}`);
      }
    }
  }
}

/** The options with the JobSpec path resolved against the caller's directory. */
function resolvePaths(opts: SubmitOptions, cwd: string): SubmitOptions {
  return opts.spec ? { ...opts, spec: resolve(cwd, opts.spec) } : opts;
}

/**
 * `submit`: runs a JobSpec's stages in workers (local processes, podman containers, pods).
 * Exit codes: 0 success / valid, 2 invalid input (one line per problem on stderr), 1 failure,
 * 130/143 interrupted.
 */
export const submit: CliMain = (io) => submitLike("submit", io);

/** {@link submit} with {@link SubmitExtras} (the BuildConfig role's payload). */
export function submitWith(io: CliIo, extras: SubmitExtras): Promise<number> {
  return submitLike("submit", io, extras);
}

/** `podman-run`: `submit --backend podman`, with the podman flags only. */
export const podmanRun: CliMain = (io) => submitLike("podman-run", io);
