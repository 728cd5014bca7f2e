/**
 * The flag tables of `submit` and `podman-run`: one {@link FlagDef} row per flag, in the groups
 * the help shows ({@link specFlags}, {@link RUN_FLAGS}, {@link BACKEND_FLAG},
 * {@link WORKER_FLAGS}, `generate`'s own), and {@link runFlags}, every flag a program's run
 * accepts (with each backend's own, from `backends/`).
 *
 * @module
 */
import { type FlagDef, type FlagGroup, parseDuration } from "./flags.ts";
import { BACKENDS } from "./backends/mod.ts";
import type { Program } from "./submit_options.ts";
import { DEFAULT_DENO_IMAGE } from "../podspec/stock_worker.ts";

/** Flags that choose or generate the JobSpec (every command). */
export function specFlags(env: Readonly<Record<string, string | undefined>>): FlagDef[] {
  const rhcos = env.COSA_GANGPLANK_OS === "rhcos";
  const g: FlagGroup = "spec";
  return [
    {
      flags: "-s, --spec <file>",
      help: "JobSpec YAML file (else generated from -A etc.)",
      group: g,
    },
    {
      flags: "-A, --build-artifact <names>",
      help: "artifact shorthands, comma-separated or repeated; a+b builds both in one stage",
      group: g,
      repeat: true,
    },
    {
      flags: "--kolaTest <names>",
      help: "kola test shorthands, comma-separated or repeated",
      group: g,
      repeat: true,
      old: ["--kola-test"],
    },
    {
      flags: "--singleCmd <command>",
      help: "command of the first stage (repeatable)",
      group: g,
      repeat: true,
    },
    {
      flags: "--singleReq <artifacts>",
      help: "artifacts the first stage requires",
      group: g,
      repeat: true,
    },
    {
      flags: "--returnFiles <path>",
      help: "file (relative to /srv) the first stage returns (repeatable)",
      group: g,
      repeat: true,
    },
    { flags: "--single", help: "generate one stage for everything (generateSinglePod)", group: g },
    { flags: "--bucket <name>", help: "bucket of the build objects (default builder)", group: g },
    { flags: "--keyPathPrefix <prefix>", help: "key prefix inside the bucket", group: g },
    {
      flags: "--git-ref <ref>",
      help: "recipe git ref",
      group: g,
      default: rhcos ? "main" : "testing-devel",
    },
    {
      flags: "--git-url <url>",
      help: "recipe git URL",
      group: g,
      default: rhcos
        ? "https://github.com/openshift/os"
        : "https://github.com/coreos/fedora-coreos-config",
    },
    { flags: "--git-commit <sha>", help: "recipe git commit (cosa init --commit)", group: g },
    {
      flags: "--repo <url>",
      help: "yum repo URL for recipe.repos (repeatable; env COSA_YUM_REPOS)",
      group: g,
      repeat: true,
    },
    { flags: "--job-buildname <name>", help: "job.build_name", group: g },
    { flags: "--job-suffix <suffix>", help: "job.version_suffix", group: g },
    { flags: "--job-production", help: "job.is_production", group: g, old: ["--job-producution"] },
    {
      flags: "--copy-build <id>",
      help: "also send this build's metadata to every worker",
      group: g,
    },
    { flags: "--lenient", help: "unknown JobSpec keys are warnings instead of errors", group: g },
  ];
}

/** `generate`'s own flags. */
export const GENERATE_FLAGS: readonly FlagDef[] = [
  {
    flags: "--yaml-out <file>",
    help: "write the JobSpec to this file instead of stdout",
    group: "generate",
  },
];

/** `generateSinglePod`'s own flags (Gangplank's aliases). */
export const SINGLE_POD_FLAGS: readonly FlagDef[] = [
  ...GENERATE_FLAGS,
  { flags: "--cmd <command>", help: "alias of --singleCmd", group: "generate", repeat: true },
  { flags: "--req <artifacts>", help: "alias of --singleReq", group: "generate", repeat: true },
];

/** Flags of a run (both programs). */
export const RUN_FLAGS: readonly FlagDef[] = [
  {
    flags: "-a, --arch <arch>",
    help: "build architecture (default $COSA_FORCE_ARCH, else the workers' machines')",
    group: "run",
  },
  { flags: "--dry-run", help: "validate and print the plan; run nothing", group: "run" },
  {
    flags: "-o, --output <format>",
    help: "dry-run output",
    group: "run",
    choices: ["table", "json", "yaml"],
    default: "table",
  },
  {
    flags: "--assume-existing",
    help: "requirements nothing in the JobSpec produces are expected in the store",
    group: "run",
  },
  {
    flags: "-w, --work-dir <dir>",
    help: "work dir; artifacts land in <dir>/builds (default: a new ./gangplank-run-<time>)",
    group: "run",
    old: ["--workDir"],
  },
  {
    flags: "-m, --minio-config <file>",
    help: "external S3/MinIO config JSON instead of the embedded relay",
    group: "run",
    old: ["--minioCfgFile"],
  },
  {
    flags: "--report <file>",
    help: "write the run report: an HTML page when <file> ends in .html, else JSON (repeatable)",
    group: "run",
    repeat: true,
  },
  {
    flags: "--resume <work-dir>",
    help: "run again in an earlier run's work dir; stages whose outputs are intact are skipped",
    group: "run",
  },
  {
    flags: "--timeout <duration>",
    help: "how long a stage waits for its dependencies",
    group: "run",
    default: "1h",
    parse: parseDuration,
  },
  {
    flags: "--poll-interval <duration>",
    help: "how often a waiting stage re-checks",
    group: "run",
    default: "15s",
    parse: parseDuration,
  },
  {
    flags: "--cleanup",
    help: "remove what runs killed earlier left behind, then exit",
    group: "run",
  },
  { flags: "--run-id <id>", help: "with --cleanup: only what that run left", group: "run" },
];

/** `submit --backend` (podman-run has none). */
export const BACKEND_FLAG: FlagDef = {
  flags: "--backend <backend>",
  help: "where workers run",
  group: "run",
  choices: ["local", "podman", "kube"],
  default: "local",
  old: [{ flag: "--podman", sets: "podman" }],
};

/** Flags every backend honours. */
export const WORKER_FLAGS: readonly FlagDef[] = [
  {
    flags: "-i, --image <image>",
    help: "worker image (podman, kube; also the hop pod's)",
    group: "workers",
  },
  {
    flags: "-e, --env <KEY=VALUE>",
    help: "added to every worker's environment (repeatable)",
    group: "workers",
    repeat: true,
  },
  {
    flags: "--env-file <file>",
    help: "KEY=VALUE lines added to every worker's environment (repeatable)",
    group: "workers",
    repeat: true,
  },
  {
    flags: "--worker-source <source>",
    help: "podman, kube: stock: deno from --deno-image (local podman: this deno) + the run's " +
      "worker bundle, on any glibc image (default); image: the image's own deno and worker " +
      "(Containerfile)",
    group: "workers",
    choices: ["stock", "image"],
  },
  {
    flags: "--deno-image <image>",
    help: "podman, kube: image the stock source copies deno from (default " +
      `${DEFAULT_DENO_IMAGE}; local podman: only when given)`,
    group: "workers",
  },
];

/** Every flag a program's run accepts: the spec, run and worker flags and its backends' own. */
export function runFlags(
  program: Program,
  env: Readonly<Record<string, string | undefined>> = {},
): readonly FlagDef[] {
  const backends = program === "podman-run" ? [BACKENDS.podman] : Object.values(BACKENDS);
  return [
    ...specFlags(env),
    ...RUN_FLAGS,
    ...(program === "submit" ? [BACKEND_FLAG] : []),
    ...WORKER_FLAGS,
    ...backends.flatMap((b) => b.flags),
  ];
}
