/**
 * The pure side of the command-line tools (`scripts/submit.ts`, `scripts/podman_run.ts`):
 * argument parsing into typed options, resolving the JobSpec to run, the dry-run document and
 * table, and the local workers' base environment. Nothing here reads `Deno.env`/`Deno.args`,
 * installs signal handlers, prints or exits: the scripts do, and pass argv/env in.
 *
 * @example
 * ```ts
 * import { dryRunDocument, formatDryRun, parseSubmitArgs, resolveSpec } from "./mod.ts";
 * import { planJob } from "../plan/mod.ts";
 * const opts = parseSubmitArgs(["-s", "jobspec.yaml", "--dry-run"], { COSA_FORCE_ARCH: "x86_64" });
 * const spec = await resolveSpec(opts, (line) => console.error(line));
 * const problems: string[] = [];
 * const doc = dryRunDocument(opts, spec, planJob(spec, {}), problems);
 * console.log(formatDryRun(doc, opts.output));
 * ```
 * @module
 */
export {
  type Backend,
  HelpShown,
  type OutputFormat,
  parseDuration,
  parseSubmitArgs,
  type SubmitOptions,
} from "./submit_args.ts";
export { problemLines, resolveSpec } from "./resolve_spec.ts";
export {
  type DryRunDocument,
  dryRunDocument,
  dryRunTable,
  formatDryRun,
  type ShownCommand,
} from "./dry_run.ts";
export { workerBaseEnv } from "./worker_env.ts";
