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
import { Command, Option } from "@commander-js/extra-typings";
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { stringify as toYaml } from "yaml";
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
import {
  formatIssue,
  GenerateError,
  generateJobSpec,
  type GenerateOptions,
  type JobSpec,
  JobSpecError,
  jobSpecToYaml,
  loadJobSpec,
  MetaUnavailableError,
  parseJobSpec,
  renderTemplate,
  TemplateError,
} from "../lib/jobspec/mod.ts";
import { type Plan, PlanError, planJob, type PlannedStage } from "../lib/plan/mod.ts";

// ---------------------------------------------------------------------------------------------
// Options

/** Which worker backend runs the stages. */
export type Backend = "local" | "podman" | "kube";
/** Output format of the dry run. */
export type OutputFormat = "table" | "json" | "yaml";

/** Everything `submit` was asked to do, parsed and validated (no I/O done yet). */
export interface SubmitOptions {
  /** `run` (default), or `generate` (print a JobSpec). */
  command: "run" | "generate";
  /** `-s/--spec`: JobSpec file; without it a spec is generated from the shorthand flags. */
  spec?: string;
  /** `-A/--build-artifact`, comma-split. */
  artifacts: string[];
  /** `--kolaTest/--kola-test`, comma-split. */
  kolaTests: string[];
  /** `--singleCmd` (repeatable; NOT split at commas). */
  singleCmd: string[];
  /** `--singleReq`, comma-split. */
  singleReq: string[];
  /** `--returnFiles` (repeatable). */
  returnFiles: string[];
  /** `--single` / `generateSinglePod`: one stage for everything. */
  single: boolean;
  /** `--bucket` when given explicitly (overrides the spec's). */
  bucket?: string;
  /** `--keyPathPrefix` when given explicitly (overrides the spec's). */
  keyPathPrefix?: string;
  gitRef: string;
  gitUrl: string;
  gitCommit?: string;
  /** `--repo` values, or `$COSA_YUM_REPOS` split on commas. */
  repos: string[];
  buildName?: string;
  versionSuffix?: string;
  isProduction: boolean;
  copyBuild?: string;
  /** `-a/--arch`: build architecture (default `$COSA_FORCE_ARCH` or this machine's). */
  arch: string;
  lenient: boolean;
  dryRun: boolean;
  output: OutputFormat;
  /** `generate --yaml-out FILE`. */
  yamlOut?: string;
  backend: Backend;
  /** `-w/--work-dir`: where artifacts land (`<workDir>/builds/...`). */
  workDir?: string;
  /** `-m/--minio-config`: external S3/MinIO config JSON instead of the embedded relay. */
  minioConfig?: string;
  /** `--report FILE`: write the run report as JSON. */
  report?: string;
  /** `--timeout`: how long a stage may wait for its dependencies (ms; default 1 h). */
  timeoutMs: number;
  /** `--poll-interval`: how often a waiting stage re-checks its dependencies (ms; 15 s). */
  pollIntervalMs: number;
  /** `--worker-path`: directories put first on local workers' PATH (e.g. a stand-in cosa). */
  workerPath: string[];
  /** `--cleanup`: remove what earlier runs left behind (containers, pods) and exit. */
  cleanup: boolean;
  /** Dry run only: requirements nothing produces are assumed to be in the store. */
  assumeExisting: boolean;
  /** `--image`: worker image (podman, kube) and the hop pod's image. */
  image?: string;
  /** `--kubeconfig` (kube backend; default `$KUBECONFIG`, or the pod's service account). */
  kubeconfig?: string;
  /** `--namespace` (kube backend). */
  namespace?: string;
  /** `--serviceaccount` (kube backend: worker pods' and the hop pod's service account). */
  serviceAccount?: string;
  /** `--remote-kubeconfig`: run the coordinator itself in a pod of that cluster (hop). */
  remoteKubeconfig?: string;
  /** `--unschedulable-timeout`: how long a worker pod may stay Unschedulable (ms; 2 min). */
  unschedulableTimeoutMs: number;
}

/** `--help` (or `--version`) was asked for: print `text` to stdout and exit 0. */
export class HelpShown extends Error {
  constructor(readonly text: string) {
    super("help shown");
  }
}

/** Parses a Go-style duration (`90m`, `1h30m`, `45s`, `500ms`) or plain seconds, to ms. */
export function parseDuration(s: string): number {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
  let total = 0;
  let i = 0;
  while (i < t.length) {
    re.lastIndex = i;
    const m = re.exec(t);
    if (!m) throw new UsageError(`invalid duration ${JSON.stringify(s)} (e.g. 1h, 90m, 30s)`);
    const n = Number(m[1]);
    total += n * (m[2] === "h" ? 3_600_000 : m[2] === "m" ? 60_000 : m[2] === "s" ? 1000 : 1);
    i = re.lastIndex;
  }
  if (t === "" || total <= 0) {
    throw new UsageError(`invalid duration ${JSON.stringify(s)}: must be positive`);
  }
  return Math.round(total);
}

function defaultArch(env: Record<string, string | undefined>): string {
  if (env.COSA_FORCE_ARCH) return env.COSA_FORCE_ARCH;
  // Deno reports x86_64/aarch64, the names cosa uses (Gangplank reported arm64).
  return Deno.build.arch;
}

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

function addCommonOptions<C extends Command<[], Record<string, unknown>>>(
  cmd: C,
  env: Record<string, string | undefined>,
): C {
  const rhcos = env.COSA_GANGPLANK_OS === "rhcos";
  cmd
    .option("-s, --spec <file>", "JobSpec YAML file (otherwise generated from -A/--kolaTest)")
    .option(
      "-A, --build-artifact <names>",
      "artifact shorthands, comma-separated or repeated; a+b builds both in one stage",
      collect,
      [] as string[],
    )
    .option("--kolaTest <names>", "kola test shorthands, comma-separated or repeated", collect)
    .addOption(new Option("--kola-test <names>", "alias of --kolaTest").argParser(collect))
    .option("--singleCmd <command>", "command for the first stage (repeatable)", collect)
    .option("--singleReq <artifacts>", "artifacts the first stage requires", collect)
    .option("--returnFiles <path>", "file (relative to /srv) the first stage returns", collect)
    .option("--single", "generate one stage for everything (generateSinglePod)")
    .option("--bucket <name>", "bucket of the build objects (default builder)")
    .option("--keyPathPrefix <prefix>", "key prefix inside the bucket")
    .option("--git-ref <ref>", "recipe git ref", rhcos ? "main" : "testing-devel")
    .option(
      "--git-url <url>",
      "recipe git URL",
      rhcos ? "https://github.com/openshift/os" : "https://github.com/coreos/fedora-coreos-config",
    )
    .option("--git-commit <sha>", "recipe git commit (cosa init --commit)")
    .option(
      "--repo <url>",
      "yum repo URL for recipe.repos (repeatable; env COSA_YUM_REPOS)",
      collect,
    )
    .option("--job-buildname <name>", "job.build_name")
    .option("--job-suffix <suffix>", "job.version_suffix")
    .option("--job-production", "job.is_production")
    .option("--copy-build <id>", "also send this build's metadata to every worker")
    .option("-a, --arch <arch>", "build architecture", defaultArch(env))
    .option("--lenient", "unknown JobSpec keys are warnings instead of errors")
    .option("--assume-existing", "dry run: requirements nothing produces come from the store")
    .option("--dry-run", "validate and print the plan; run nothing")
    .addOption(
      new Option("-o, --output <format>", "dry-run output").choices(["table", "json", "yaml"])
        .default("table"),
    )
    .addOption(
      new Option("--backend <backend>", "where workers run").choices(["local", "podman", "kube"])
        .default("local"),
    )
    .option("-w, --work-dir <dir>", "coordinator work dir; artifacts land in <dir>/builds")
    .option("-m, --minio-config <file>", "external S3/MinIO config JSON instead of the relay")
    .option("--report <file>", "write a JSON run report")
    .option("--timeout <duration>", "how long a stage waits for its dependencies", "1h")
    .option("--poll-interval <duration>", "how often a waiting stage re-checks", "15s")
    .option(
      "--worker-path <dir>",
      "directory put first on local workers' PATH, e.g. examples/fake-cosa (repeatable)",
      collect,
    )
    .option("--cleanup", "remove containers/pods left by earlier runs, then exit")
    .option("--image <image>", "worker image (podman, kube; also the hop pod's)")
    .option("--kubeconfig <file>", "kube: kubeconfig (default $KUBECONFIG or in-cluster)")
    .option("--namespace <ns>", "kube: namespace (default: the kubeconfig context's)")
    .option("--serviceaccount <sa>", "kube: service account of the worker/hop pods")
    .option(
      "--remote-kubeconfig <file>",
      "kube: run the coordinator itself in a pod of that cluster (hop) and follow it",
    )
    .option("--unschedulable-timeout <duration>", "kube: fail a pod Unschedulable this long", "2m");
  return cmd;
}

type RawOpts = Record<string, unknown>;

function toOptions(
  command: SubmitOptions["command"],
  o: RawOpts,
  env: Record<string, string | undefined>,
  single: boolean,
): SubmitOptions {
  const list = (k: string) => (o[k] as string[] | undefined) ?? [];
  const str = (k: string) => o[k] as string | undefined;
  const envRepos = (env.COSA_YUM_REPOS ?? "").split(",").map((r) => r.trim()).filter(Boolean);
  return {
    command,
    spec: str("spec"),
    artifacts: list("buildArtifact"),
    kolaTests: list("kolaTest"),
    singleCmd: list("singleCmd"),
    singleReq: list("singleReq"),
    returnFiles: list("returnFiles"),
    single: single || !!o.single,
    bucket: str("bucket"),
    keyPathPrefix: str("keyPathPrefix"),
    gitRef: str("gitRef")!,
    gitUrl: str("gitUrl")!,
    gitCommit: str("gitCommit"),
    repos: list("repo").length ? list("repo") : envRepos,
    buildName: str("jobBuildname"),
    versionSuffix: str("jobSuffix"),
    isProduction: !!o.jobProduction,
    copyBuild: str("copyBuild"),
    arch: str("arch")!,
    lenient: !!o.lenient,
    dryRun: !!o.dryRun,
    output: str("output") as OutputFormat,
    yamlOut: str("yamlOut"),
    backend: str("backend") as Backend,
    workDir: str("workDir"),
    minioConfig: str("minioConfig"),
    report: str("report"),
    timeoutMs: parseDuration(str("timeout") ?? "1h"),
    pollIntervalMs: parseDuration(str("pollInterval") ?? "15s"),
    workerPath: list("workerPath"),
    cleanup: !!o.cleanup,
    assumeExisting: !!o.assumeExisting,
    image: str("image"),
    kubeconfig: str("kubeconfig"),
    namespace: str("namespace"),
    serviceAccount: str("serviceaccount"),
    remoteKubeconfig: str("remoteKubeconfig"),
    unschedulableTimeoutMs: parseDuration(str("unschedulableTimeout") ?? "2m"),
  };
}

/**
 * Parses `submit`'s argv (without the script name) into {@link SubmitOptions}. Pure: reads only
 * `env` (COSA_YUM_REPOS, COSA_GANGPLANK_OS, COSA_FORCE_ARCH), prints nothing.
 *
 * @throws {HelpShown} for `--help`; {@link UsageError} for bad flags.
 */
export function parseSubmitArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): SubmitOptions {
  let out = "";
  let err = "";
  let result: SubmitOptions | undefined;
  const configure = <C extends Command<[], Record<string, unknown>>>(c: C): C => {
    c.exitOverride().configureOutput({
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
      outputError: () => {},
    });
    return c;
  };
  const program = configure(addCommonOptions(
    new Command("submit")
      .description(
        "Run a JobSpec's stages in workers (local processes, podman, Kubernetes) and gather " +
          "their artifacts in <work-dir>/builds.",
      )
      .allowExcessArguments(false)
      // options after a subcommand's name belong to the subcommand
      .enablePositionalOptions(),
    env,
  )).action((_o, cmd) => {
    result = toOptions("run", cmd.opts() as RawOpts, env, false);
  });
  for (const [name, single] of [["generate", false], ["generateSinglePod", true]] as const) {
    const sub = configure(addCommonOptions(
      new Command(name)
        .description(
          single
            ? "Print a single-stage JobSpec generated from the flags"
            : "Print a JobSpec generated from the flags (-A, --kolaTest, ...)",
        )
        .option("--yaml-out <file>", "write the JobSpec to this file instead of stdout")
        .addOption(new Option("--cmd <command>", "alias of --singleCmd").argParser(collect))
        .addOption(new Option("--req <artifacts>", "alias of --singleReq").argParser(collect))
        .allowExcessArguments(false),
      env,
    )).action((_o, cmd) => {
      const o = cmd.opts() as RawOpts;
      o.singleCmd = [...((o.singleCmd as string[]) ?? []), ...((o.cmd as string[]) ?? [])];
      o.singleReq = [...((o.singleReq as string[]) ?? []), ...((o.req as string[]) ?? [])];
      result = toOptions("generate", o, env, single);
    });
    program.addCommand(sub as unknown as Command);
  }
  try {
    program.parse(argv, { from: "user" });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version") {
      throw new HelpShown(out);
    }
    if (e instanceof UsageError) throw e;
    const msg = (err || (e as Error).message).trim().replace(/^error: /, "");
    throw new UsageError(msg.split("\n")[0]);
  }
  if (!result) throw new UsageError("nothing to do");
  return result;
}

// ---------------------------------------------------------------------------------------------
// Resolving the JobSpec

/** Problems for stderr, one line each. */
function problemLines(e: unknown): string[] {
  if (e instanceof JobSpecError) return e.issues.map(formatIssue);
  if (e instanceof GenerateError) return e.problems;
  if (e instanceof PlanError) return e.problems.map((p) => p.message);
  return [(e as Error).message ?? String(e)];
}

/**
 * The JobSpec to run: the `--spec` file, or one generated from the flags; then the CLI
 * defaults applied (§2.3 step 4).
 */
export async function resolveSpec(
  opts: SubmitOptions,
  warn: (line: string) => void,
): Promise<JobSpec> {
  let spec: JobSpec;
  if (opts.spec) {
    const ignored = [
      opts.artifacts.length && "-A",
      opts.kolaTests.length && "--kolaTest",
      opts.singleCmd.length && "--singleCmd",
      opts.singleReq.length && "--singleReq",
      opts.returnFiles.length && "--returnFiles",
    ].filter(Boolean);
    if (ignored.length) warn(`warning: --spec given: ${ignored.join(", ")} ignored`);
    const r = await loadJobSpec(opts.spec, { lenient: opts.lenient });
    for (const w of r.warnings) warn(`warning: ${formatIssue(w)}`);
    spec = r.spec;
    if (!spec.recipe.repos && opts.repos.length) {
      spec.recipe.repos = opts.repos.map((url) => ({ url }));
    }
    if (opts.copyBuild) spec["copy-build"] = opts.copyBuild;
  } else {
    const g: GenerateOptions = {
      artifacts: opts.artifacts,
      kolaTests: opts.kolaTests,
      singleStage: opts.single,
      singleCmd: opts.singleCmd,
      singleReq: opts.singleReq,
      returnFiles: opts.returnFiles,
      repos: opts.repos,
      gitRef: opts.gitRef,
      gitUrl: opts.gitUrl,
      gitCommit: opts.gitCommit,
      bucket: opts.bucket,
      keyPrefix: opts.keyPathPrefix,
      buildName: opts.buildName,
      versionSuffix: opts.versionSuffix,
      isProduction: opts.isProduction,
      copyBuild: opts.copyBuild,
    };
    spec = generateJobSpec(g);
    // Validate the generated spec exactly like a file (round trip through YAML).
    spec = parseJobSpec(jobSpecToYaml(spec, { header: false }), { file: "<generated>" }).spec;
  }
  if (opts.bucket) spec.minio.bucket = opts.bucket;
  if (opts.keyPathPrefix !== undefined) spec.minio.key_prefix = opts.keyPathPrefix;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Dry run

/** A command as shown in a dry run: rendered when possible. */
export interface ShownCommand {
  command: string;
  /** True when it uses `.Meta` and is only rendered on the worker. */
  renderedOnWorker?: boolean;
}

/** The dry-run document (`-o json|yaml`). Backends may add `resources`. */
export interface DryRunDocument {
  plan: {
    spec: string;
    arch: string;
    backend: Backend;
    bucket: string;
    keyPrefix: string;
    recipe: { git_url?: string; git_ref?: string; git_commit?: string };
    groups: {
      order: number;
      stages: {
        id: string;
        description?: string;
        waitsFor: string[];
        after: string[];
        requires: PlannedStage["requires"];
        requests: PlannedStage["requests"];
        builds: string[];
        returns: PlannedStage["returns"];
        concurrent: boolean;
        postAlways: boolean;
        commands: { prep: ShownCommand[]; main: ShownCommand[]; post: ShownCommand[] };
      }[];
    }[];
    warnings: string[];
  };
  /** What the backend would create (e.g. pods for `--backend kube`). */
  resources?: unknown;
}

function showCommands(cmds: string[], spec: JobSpec, problems: string[], where: string) {
  return cmds.map((c): ShownCommand => {
    try {
      return { command: renderTemplate(c, { JobSpec: spec }) };
    } catch (e) {
      if (e instanceof MetaUnavailableError) return { command: c, renderedOnWorker: true };
      if (e instanceof TemplateError) problems.push(`${where}: ${e.message}`);
      else throw e;
      return { command: c };
    }
  });
}

/** Builds the dry-run document; template problems are added to `problems`. */
export function dryRunDocument(
  opts: SubmitOptions,
  spec: JobSpec,
  plan: Plan,
  problems: string[],
): DryRunDocument {
  return {
    plan: {
      spec: opts.spec ?? "<generated>",
      arch: opts.arch,
      backend: opts.backend,
      bucket: spec.minio.bucket ?? "builder",
      keyPrefix: spec.minio.key_prefix ?? "",
      recipe: {
        git_url: spec.recipe.git_url,
        git_ref: spec.recipe.git_ref,
        git_commit: spec.recipe.git_commit,
      },
      groups: plan.groups.map((g) => ({
        order: g.order,
        stages: g.stages.map((s) => {
          const w = `stage ${JSON.stringify(s.id)}`;
          return {
            id: s.id,
            description: s.description,
            waitsFor: s.waitsFor,
            after: s.after,
            requires: s.requires,
            requests: s.requests,
            builds: s.builds,
            returns: s.returns,
            concurrent: s.concurrent,
            postAlways: s.postAlways,
            commands: {
              prep: showCommands(s.commands.prep, spec, problems, w),
              main: showCommands(s.commands.main, spec, problems, w),
              post: showCommands(s.commands.post, spec, problems, w),
            },
          };
        }),
      })),
      warnings: plan.warnings,
    },
  };
}

function inputsText(i: { artifacts: string[]; cache: boolean; cacheRepo: boolean }): string {
  const parts = [...i.artifacts];
  if (i.cache) parts.push("cache");
  if (i.cacheRepo) parts.push("repo cache");
  return parts.length ? parts.join(", ") : "-";
}

/** The dry-run document as a readable table. */
export function dryRunTable(doc: DryRunDocument): string {
  const p = doc.plan;
  const lines: string[] = [];
  const nStages = p.groups.reduce((n, g) => n + g.stages.length, 0);
  lines.push(`JobSpec   ${p.spec}`);
  lines.push(
    `Recipe    ${p.recipe.git_url ?? "-"} @ ${p.recipe.git_ref ?? "-"}` +
      (p.recipe.git_commit ? ` (${p.recipe.git_commit})` : ""),
  );
  lines.push(`Store     bucket ${p.bucket}${p.keyPrefix ? `, prefix ${p.keyPrefix}` : ""}`);
  lines.push(`Workers   ${p.backend}, arch ${p.arch}`);
  lines.push(`Plan      ${p.groups.length} group(s), ${nStages} stage(s)`);
  for (const g of p.groups) {
    lines.push("");
    lines.push(
      `Group ${g.order}: ` +
        (g.stages.length === 1 ? "1 stage" : `${g.stages.length} stages in parallel`),
    );
    for (const s of g.stages) {
      lines.push(`  Stage ${JSON.stringify(s.id)}${s.description ? ` - ${s.description}` : ""}`);
      if (s.after.length) lines.push(`    after:     ${s.after.join(", ")}`);
      if (s.waitsFor.length) lines.push(`    waits for: ${s.waitsFor.join(", ")} (same group)`);
      lines.push(`    requires:  ${inputsText(s.requires)}`);
      lines.push(`    requests:  ${inputsText(s.requests)}`);
      lines.push(`    builds:    ${s.builds.length ? s.builds.join(", ") : "-"}`);
      const ret = [
        ...s.returns.artifacts,
        ...(s.returns.cache ? ["cache"] : []),
        ...(s.returns.cacheRepo ? ["repo cache"] : []),
        ...s.returns.files.map((f) => `file ${f}`),
      ];
      lines.push(`    returns:   ${ret.length ? ret.join(", ") : "-"}`);
      const show = (label: string, cs: ShownCommand[]) => {
        cs.forEach((c, i) => {
          const text = c.command.replace(/\n+$/, "").split("\n").join("\n" + " ".repeat(15));
          lines.push(
            `    ${(i === 0 ? label : "").padEnd(10)} ${text}` +
              (c.renderedOnWorker ? "   (rendered on the worker)" : ""),
          );
        });
      };
      show("prep:", s.commands.prep);
      show(s.concurrent ? "main (||):" : "main:", s.commands.main);
      show(s.postAlways ? "post (always):" : "post:", s.commands.post);
    }
  }
  if (p.warnings.length) {
    lines.push("");
    for (const w of p.warnings) lines.push(`warning: ${w}`);
  }
  return lines.join("\n") + "\n";
}

// --- dry-run resources: backends add what they would create (e.g. kube pods) ---
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

// --- run: implemented by the coordinator (lib/coordinator) ---

/**
 * The environment a local worker starts from: what deno, the worker and cosa need, never the
 * whole coordinator environment (`FAKE_COSA_*` are the stand-in cosa's test switches).
 */
export function workerBaseEnv(env: Record<string, string | undefined>): Record<string, string> {
  const keep = ["PATH", "HOME", "DENO_DIR", "TMPDIR", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"];
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (keep.includes(k) || k.startsWith("FAKE_COSA_"))) out[k] = v;
  }
  return out;
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
      return createPodmanExecutor(parsePodmanRunArgs([], env).podman, env, (m) => console.error(m));
    default:
      throw new UsageError(`--backend ${opts.backend}: not available in this build`);
  }
}

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
      const text = opts.output === "json"
        ? JSON.stringify(doc, null, 2) + "\n"
        : opts.output === "yaml"
        ? toYaml(doc, { lineWidth: 0 })
        : dryRunTable(doc);
      await Deno.stdout.write(new TextEncoder().encode(text));
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
