/**
 * The command lines of `submit` and `podman-run`: argv (and an env record) parsed into a typed
 * {@link SubmitOptions}. Every flag is a row of a table ({@link SPEC_FLAGS}, {@link RUN_FLAGS},
 * {@link WORKER_FLAGS}, and each backend's own in `backends/`); each command shows only the
 * groups that apply to it. Gangplank's spellings (`--workDir`, `-N`, `--podman`, ...) are
 * accepted with a note, and its subcommands (`pod`, `minio`, `generate`, `generateSinglePod`,
 * `version`) are understood.
 *
 * Pure: never reads `Deno.env`/`Deno.args`, prints nothing; `--help` surfaces as
 * {@link HelpShown}, bad flags as {@link UsageError} (one line, with a "did you mean").
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { UsageError } from "../errors/mod.ts";
import { closest } from "../jobspec/suggest.ts";
import {
  ENV_LIFELINE,
  ENV_WORK_POD_JSON,
  ENV_WORK_POD_JSON_PARTS,
  isWorkSpecEnvName,
  SECRET_ENV_NAMES,
} from "../workspec/mod.ts";
import {
  addFlags,
  attributeOf,
  commanderMessage,
  type FlagDef,
  type FlagGroup,
  foldAliases,
  longNameOf,
  parseDuration,
  parseKeyValue,
} from "./flags.ts";
import { BACKENDS } from "./backends/mod.ts";
import meta from "../../deno.json" with { type: "json" };

export { parseDuration };

/** Version of this program (deno.json's). */
export const VERSION: string = meta.version;

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

/** `--help` (or `--version`) was asked for: print `text` to stdout and exit 0. */
export class HelpShown extends Error {
  constructor(readonly text: string) {
    super("help shown");
  }
}

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
];

/** Gangplank flags with no counterpart here, and what to do instead. */
const RETIRED: Readonly<Record<string, string>> = {
  "--forwardMinioSSH": "the relay is forwarded over --remote's SSH connection on its own",
  "--sshUser": "give the user in --remote ssh://user@host/... (or CONTAINER_HOST)",
  "--setWorkDirCtx": "label the work dir yourself (chcon -R -t container_file_t DIR)",
};

/** Gangplank subcommands that are not subcommands here. */
const REDIRECTS: Readonly<Record<string, string>> = {
  podless: "Gangplank's podless mode is `submit --backend local` (the default)",
  run: "there is no `run` subcommand: put the command in a JobSpec stage or --singleCmd",
};

const EXAMPLES: Record<Program, string> = {
  "submit": `
Examples:
  submit -s jobspec.yaml --dry-run               validate and show the plan
  submit -s jobspec.yaml -w ./work               run with local workers
  submit -A base,qemu --backend podman -i IMAGE  generated JobSpec, podman workers
  submit generate -A base --yaml-out job.yaml    write a JobSpec
`,
  "podman-run": `
Examples:
  podman-run -s jobspec.yaml -w ./work           local podman socket
  CONTAINER_HOST=ssh://core@builder/run/user/1000/podman/podman.sock \\
  CONTAINER_SSHKEY=~/.ssh/id_ed25519 podman-run -A base -i quay.io/me/worker:latest
  podman-run --cleanup                            remove what killed runs left
`,
};

const SUB_EXAMPLES: Record<string, string> = {
  generate: `
Examples:
  submit generate -A base,qemu+metal --kolaTest basicQemu   print a JobSpec
  submit generate -A base --yaml-out job.yaml               write it to a file
`,
  generateSinglePod: `
Examples:
  submit generateSinglePod -A base --cmd "cosa buildextend-live" --req ostree
`,
};

/** Every flag a program's run accepts. */
function runFlagsOf(program: Program, env: Readonly<Record<string, string | undefined>>) {
  const backends = program === "podman-run" ? [BACKENDS.podman] : Object.values(BACKENDS);
  return [
    ...specFlags(env),
    ...RUN_FLAGS,
    ...(program === "submit" ? [BACKEND_FLAG] : []),
    ...WORKER_FLAGS,
    ...backends.flatMap((b) => b.flags),
  ];
}

interface Parsed {
  command: SubmitOptions["command"];
  single: boolean;
  raw: Record<string, unknown>;
  given: Set<string>;
  defs: readonly FlagDef[];
  relayArgs: string[];
  /** Parsed by a subcommand (root options given before it are moved to it). */
  sub?: boolean;
}

/**
 * Parses `submit`'s (or `podman-run`'s) argv, without the script name, into
 * {@link SubmitOptions}. Pure: reads only `env` (COSA_YUM_REPOS, COSA_GANGPLANK_OS,
 * COSA_FORCE_ARCH), prints nothing.
 *
 * @throws {HelpShown} for `--help`/`--version`; {@link UsageError} for bad flags (one line).
 */
export function parseSubmitArgs(
  argv: string[],
  env: Readonly<Record<string, string | undefined>>,
  program: Program = "submit",
): SubmitOptions {
  for (const a of argv) {
    if (a === "--") break;
    const name = a.replace(/=.*$/, "");
    if (RETIRED[name]) {
      throw new UsageError(`${name}: Gangplank's flag is not needed: ${RETIRED[name]}`);
    }
  }
  let out = "";
  let err = "";
  let parsed: Parsed | undefined;
  const configure = <C extends Command<[], Record<string, unknown>>>(c: C): C => {
    c.exitOverride().configureOutput({
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
      outputError: () => {},
    });
    return c;
  };
  const runDefs = runFlagsOf(program, env);
  const root = configure(
    new Command(program)
      .description(
        program === "submit"
          ? "Run a JobSpec's stages in workers (local processes, podman, Kubernetes) and " +
            "gather their artifacts in <work-dir>/builds."
          : "Run a JobSpec's stages in podman containers, here or over SSH " +
            "(submit's podman backend).",
      )
      .allowExcessArguments(false)
      .enablePositionalOptions()
      .version(`${program} (gangplank on Deno) ${VERSION}`, "--version", "print the version"),
  );
  const rootAliases = addFlags(root as unknown as Command<[], Record<string, unknown>>, runDefs);
  root.addHelpText("after", EXAMPLES[program]);
  const given = (c: Command<[], Record<string, unknown>>) =>
    new Set(Object.keys(c.opts()).filter((k) => c.getOptionValueSource(k) === "cli"));
  root.action((_o, cmd) => {
    const c = cmd as unknown as Command<[], Record<string, unknown>>;
    const raw = { ...c.opts() };
    const g = given(c);
    for (const a of rootAliases) if (raw[a.attr] !== undefined) g.add(a.target);
    parsed = { command: "run", single: false, raw, given: g, defs: runDefs, relayArgs: [] };
    parsed.raw.__notes = foldAliases(raw, rootAliases, runDefs);
  });
  const subs: {
    name: string;
    describe: string;
    defs: readonly FlagDef[];
    command: SubmitOptions["command"];
    single?: boolean;
  }[] = [
    {
      name: "generate",
      describe: "Print a JobSpec generated from the flags (-A, --kolaTest, ...)",
      defs: [...specFlags(env), ...GENERATE_FLAGS],
      command: "generate",
    },
    {
      name: "generateSinglePod",
      describe: "Print a single-stage JobSpec generated from the flags",
      defs: [...specFlags(env), ...SINGLE_POD_FLAGS],
      command: "generate",
      single: true,
    },
  ];
  if (program === "submit") {
    subs.push({
      name: "pod",
      describe: "Run the JobSpec (Gangplank's `pod`; the same as no subcommand)",
      defs: runDefs,
      command: "run",
    });
  }
  for (const s of subs) {
    const sub = configure(
      new Command(s.name).description(s.describe).allowExcessArguments(false),
    ) as unknown as Command<[], Record<string, unknown>>;
    const aliases = addFlags(sub, s.defs);
    if (SUB_EXAMPLES[s.name]) sub.addHelpText("after", SUB_EXAMPLES[s.name]);
    sub.action((_o, cmd) => {
      const c = cmd as unknown as Command<[], Record<string, unknown>>;
      const raw = { ...c.opts() };
      const g = given(c);
      for (const a of aliases) if (raw[a.attr] !== undefined) g.add(a.target);
      const notes = foldAliases(raw, aliases, s.defs);
      if (s.single) {
        raw.singleCmd = [...((raw.singleCmd as string[]) ?? []), ...((raw.cmd as string[]) ?? [])];
        raw.singleReq = [...((raw.singleReq as string[]) ?? []), ...((raw.req as string[]) ?? [])];
      }
      raw.__notes = notes;
      parsed = {
        command: s.command,
        single: !!s.single,
        raw,
        given: g,
        defs: s.defs,
        relayArgs: [],
        sub: true,
      };
    });
    root.addCommand(sub as unknown as Command);
  }
  root.addCommand(
    configure(
      new Command("version").description("Print the version").allowExcessArguments(false),
    ).action(() => {
      parsed = {
        command: "version",
        single: false,
        raw: {},
        given: new Set(),
        defs: [],
        relayArgs: [],
        sub: true,
      };
    }) as unknown as Command,
  );
  if (program === "submit") {
    const minio = new Command("minio")
      .description("Serve a directory as an S3 endpoint (Gangplank's `minio`: the relay)")
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments(true)
      .argument("[args...]")
      .exitOverride()
      .action((args: string[]) => {
        parsed = {
          command: "minio",
          single: false,
          raw: {},
          given: new Set(),
          defs: [],
          relayArgs: args,
          sub: true,
        };
      });
    root.addCommand(minio as unknown as Command);
  }
  try {
    root.parse(argv, { from: "user" });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version") {
      throw new HelpShown(out);
    }
    if (e instanceof UsageError) throw e;
    if (code === "commander.excessArguments") throw unknownCommand(root, argv);
    throw new UsageError(commanderMessage(err, e));
  }
  if (!parsed) throw new UsageError("nothing to do");
  // Options given before a subcommand belong to it, if it has them.
  const p = parsed as Parsed;
  if (p.sub) {
    const before = given(root as unknown as Command<[], Record<string, unknown>>);
    for (const attr of before) {
      const def = runDefs.find((d) => attributeOf(d) === attr);
      const name = def ? longNameOf(def) : `--${attr}`;
      if (!p.defs.some((d) => attributeOf(d) === attr)) {
        throw new UsageError(`${name} does not apply to this command (see its --help)`);
      }
      p.raw[attr] = (root.opts() as Record<string, unknown>)[attr];
      p.given.add(attr);
    }
  }
  return toOptions(p, env, program);
}

function unknownCommand(root: Command<[], Record<string, unknown>>, argv: string[]): UsageError {
  const operand = root.args[0] ?? argv.find((a) => !a.startsWith("-")) ?? "";
  if (REDIRECTS[operand]) return new UsageError(`${operand}: ${REDIRECTS[operand]}`);
  const names = root.commands.map((c) => c.name());
  const hint = closest(operand, names);
  return new UsageError(
    `unknown command '${operand}'` + (hint ? ` (did you mean ${hint}?)` : "") +
      ` (commands: ${names.join(", ")})`,
  );
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

function toOptions(
  p: Parsed,
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

/** For tests and help: the flag table of a program's run. */
export function runFlags(
  program: Program,
  env: Readonly<Record<string, string | undefined>> = {},
): readonly FlagDef[] {
  return runFlagsOf(program, env);
}
