/**
 * The command lines of `submit` and `podman-run`: argv (and an env record) parsed into a typed
 * {@link SubmitOptions}. Every flag is a row of a table (`submit_flags.ts`, and each backend's
 * own in `backends/`); each command shows only the groups that apply to it. Gangplank's spellings (`--workDir`, `-N`, `--podman`, ...) are
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
  addFlags,
  attributeOf,
  commanderMessage,
  type FlagDef,
  foldAliases,
  longNameOf,
} from "./flags.ts";
import { HelpShown } from "./harness.ts";
import { GENERATE_FLAGS, runFlags, SINGLE_POD_FLAGS, specFlags } from "./submit_flags.ts";
import {
  type ParsedArgs,
  type Program,
  type SubmitOptions,
  toSubmitOptions,
} from "./submit_options.ts";
import meta from "../../deno.json" with { type: "json" };

/** Version of this program (deno.json's). */
export const VERSION: string = meta.version;

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
  CONTAINER_SSHKEY=~/.ssh/id_ed25519 podman-run -A base   stock cosa image there; deno from
                                                  --deno-image, the worker uploaded once
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
  let parsed: ParsedArgs | undefined;
  const configure = <C extends Command<[], Record<string, unknown>>>(c: C): C => {
    c.exitOverride().configureOutput({
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
      outputError: () => {},
    });
    return c;
  };
  const runDefs = runFlags(program, env);
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
  const p = parsed as ParsedArgs;
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
  return toSubmitOptions(p, env, program);
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
