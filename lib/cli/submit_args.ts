/**
 * `submit`'s command line: argv (and an env record) parsed into a typed {@link SubmitOptions}.
 * Pure: never reads `Deno.env`/`Deno.args`, prints nothing; `--help` surfaces as
 * {@link HelpShown}, bad flags as {@link UsageError}.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { UsageError } from "../errors/mod.ts";

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
