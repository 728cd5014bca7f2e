/**
 * What `submit` and `podman-run` were asked to do: {@link SubmitOptions}, made from a parsed
 * command line by {@link toSubmitOptions} (the backend chosen, the checks across flags done).
 *
 * @module
 */
import { UsageError } from "../errors/mod.ts";
import {
  ENV_LIFELINE,
  ENV_WORK_POD_JSON,
  ENV_WORK_POD_JSON_PARTS,
  isWorkSpecEnvName,
  SECRET_ENV_NAMES,
} from "../workspec/mod.ts";
import { attributeOf, type FlagDef, longNameOf, parseKeyValue } from "./flags.ts";
import { BACKENDS } from "./backends/mod.ts";

/** Which worker backend runs the stages. */
export type Backend = "local" | "podman" | "kube";
/** Output format of the dry run. */
export type OutputFormat = "table" | "json" | "yaml";
/** Which program's command line: `submit` (every backend) or `podman-run` (podman only). */
export type Program = "submit" | "podman-run";

/** Everything `submit` was asked to do, parsed and validated (no I/O done yet). */
export interface SubmitOptions {
  /** `run` (default; Gangplank's `pod`), `generate`, `version`, or `minio` (the relay). */
  command: "run" | "generate" | "version" | "minio";
  /** `minio`: the arguments for the relay. */
  relayArgs: string[];
  /** `-s/--spec`: JobSpec file; without it a spec is generated from the shorthand flags. */
  spec?: string;
  /** `-A/--build-artifact`, comma-split. */
  artifacts: string[];
  /** `--kolaTest`, comma-split. */
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
  /** `-a/--arch` or `$COSA_FORCE_ARCH`; absent: the workers' machines' architecture. */
  arch?: string;
  lenient: boolean;
  dryRun: boolean;
  output: OutputFormat;
  /** `generate --yaml-out FILE`. */
  yamlOut?: string;
  backend: Backend;
  /** Whether `--backend` (or `--podman`) was given. */
  backendGiven: boolean;
  /** `-w/--work-dir`: where artifacts land (`<workDir>/builds/...`). */
  workDir?: string;
  /** `-m/--minio-config`: external S3/MinIO config JSON instead of the embedded relay. */
  minioConfig?: string;
  /**
   * `--report FILE` (repeatable): write the run report, as a self-contained HTML page when
   * FILE ends in `.html`/`.htm`, as JSON otherwise.
   */
  reports: string[];
  /** `--resume DIR`: run again in the work dir of an earlier run, reusing what it produced. */
  resume?: string;
  /** `--timeout`: how long a stage may wait for its dependencies (ms; default 1 h). */
  timeoutMs: number;
  /** `--poll-interval`: how often a waiting stage re-checks its dependencies (ms; 15 s). */
  pollIntervalMs: number;
  /** `--cleanup`: remove what earlier runs left behind (containers, pods) and exit. */
  cleanup: boolean;
  /** `--run-id`: with `--cleanup`, only that run's leftovers. */
  runId?: string;
  /** Requirements nothing in the JobSpec produces are expected in the store. */
  assumeExisting: boolean;
  /** `-i/--image`: worker image (podman, kube) and the hop pod's image. */
  image?: string;
  /** `-e KEY=VALUE` (repeatable): added to every worker's environment. */
  workerEnv: Record<string, string>;
  /** `--env-file FILE` (repeatable): `KEY=VALUE` lines added to every worker's environment. */
  envFiles: string[];
  /** Every flag's value by attribute name (`workDir`, `kubeconfig`, ...): backends read theirs. */
  flags: Readonly<Record<string, unknown>>;
  /** One line per Gangplank spelling used (`note: --workDir is an old spelling of ...`). */
  notes: string[];
}

/** A command line as commander left it: the command, raw values by attribute, given flags. */
export interface ParsedArgs {
  command: SubmitOptions["command"];
  single: boolean;
  raw: Record<string, unknown>;
  given: Set<string>;
  defs: readonly FlagDef[];
  relayArgs: string[];
  /** Parsed by a subcommand (root options given before it are moved to it). */
  sub?: boolean;
}

const RESERVED_ENV = new Set([
  ENV_WORK_POD_JSON,
  ENV_WORK_POD_JSON_PARTS,
  ENV_LIFELINE,
  ...SECRET_ENV_NAMES,
  "COSA_SRV_DIR",
]);
/** Worker env names gangplank sets itself (`-e`, `--env-file` refuse them). */
export const isReservedEnv = (k: string): boolean => RESERVED_ENV.has(k) || isWorkSpecEnvName(k);

/**
 * The {@link SubmitOptions} of a parsed command line: the backend (given, or implied by its
 * own flags), worker environment, defaults, and the checks across flags (a backend's flags
 * with another backend, `--run-id` without `--cleanup`, `-o` without `--dry-run`).
 */
export function toSubmitOptions(
  p: ParsedArgs,
  env: Readonly<Record<string, string | undefined>>,
  program: Program,
): SubmitOptions {
  const o = p.raw;
  const notes = (o.__notes as string[] | undefined) ?? [];
  delete o.__notes;
  const list = (k: string) => (o[k] as string[] | undefined) ?? [];
  const str = (k: string) => o[k] as string | undefined;
  const envRepos = (env.COSA_YUM_REPOS ?? "").split(",").map((r) => r.trim()).filter(Boolean);
  const workerEnv: Record<string, string> = {};
  for (const kv of list("env")) {
    const [k, v] = parseKeyValue("-e", kv);
    if (isReservedEnv(k)) throw new UsageError(`-e ${k}: set by gangplank itself; not allowed`);
    workerEnv[k] = v;
  }
  // Without --backend, a backend's own flags choose it (Gangplank's `pod -R kubeconfig` hops
  // into a cluster); flags of two backends at once stay an error below.
  const implied = Object.values(BACKENDS).filter((b) =>
    b.flags.some((d) => p.given.has(attributeOf(d)))
  );
  const backend =
    (program === "podman-run"
      ? "podman"
      : !p.given.has("backend") && implied.length === 1
      ? implied[0].name
      : str("backend") ?? "local") as Backend;
  // A backend's own flags apply to it only.
  for (const b of Object.values(BACKENDS)) {
    if (b.name === backend) continue;
    for (const d of b.flags) {
      if (p.given.has(attributeOf(d))) {
        throw new UsageError(
          `${longNameOf(d)} applies to --backend ${b.name}; this run uses --backend ${backend}`,
        );
      }
    }
  }
  // Flags that only mean something together with another one.
  if (p.given.has("runId") && !o.cleanup) {
    throw new UsageError("--run-id applies to --cleanup only");
  }
  if (p.given.has("output") && !o.dryRun) {
    throw new UsageError(`-o ${o.output}: applies to --dry-run only (a run reports with --report)`);
  }
  return {
    command: p.command,
    relayArgs: p.relayArgs,
    spec: str("spec"),
    artifacts: list("buildArtifact"),
    kolaTests: list("kolaTest"),
    singleCmd: list("singleCmd"),
    singleReq: list("singleReq"),
    returnFiles: list("returnFiles"),
    single: p.single || !!o.single,
    bucket: str("bucket"),
    keyPathPrefix: str("keyPathPrefix"),
    gitRef: str("gitRef") ?? "testing-devel",
    gitUrl: str("gitUrl") ?? "https://github.com/coreos/fedora-coreos-config",
    gitCommit: str("gitCommit"),
    repos: list("repo").length ? list("repo") : envRepos,
    buildName: str("jobBuildname"),
    versionSuffix: str("jobSuffix"),
    isProduction: !!o.jobProduction,
    copyBuild: str("copyBuild"),
    arch: str("arch") ?? (env.COSA_FORCE_ARCH || undefined),
    lenient: !!o.lenient,
    dryRun: !!o.dryRun,
    output: (str("output") ?? "table") as OutputFormat,
    yamlOut: str("yamlOut"),
    backend,
    backendGiven: p.given.has("backend") || implied.length > 0,
    workDir: str("workDir"),
    minioConfig: str("minioConfig"),
    reports: list("report"),
    ...(str("resume") !== undefined ? { resume: str("resume") } : {}),
    timeoutMs: (o.timeout as number | undefined) ?? 3_600_000,
    pollIntervalMs: (o.pollInterval as number | undefined) ?? 15_000,
    cleanup: !!o.cleanup,
    runId: str("runId"),
    assumeExisting: !!o.assumeExisting,
    image: str("image"),
    workerEnv,
    envFiles: list("envFile"),
    flags: o,
    notes,
  };
}
