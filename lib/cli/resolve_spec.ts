/**
 * The JobSpec a `submit` run works on: the `--spec` file or one generated from the shorthand
 * flags, with the CLI overrides applied; and the one-line-per-problem text of its errors.
 *
 * @module
 */
import {
  buildIdProblem,
  formatIssue,
  generateJobSpec,
  type GenerateOptions,
  jobBucketProblem,
  type JobSpec,
  jobSpecToYaml,
  loadJobSpec,
  parseJobSpec,
} from "../jobspec/mod.ts";
import { ProblemListError, UsageError } from "../errors/mod.ts";
import type { SubmitOptions } from "./submit_options.ts";

/**
 * What to print on stderr for a failed spec/plan, one line per problem: JobSpec issues as
 * `file:line:col: message`, generator and planner problems as they are, anything else by its
 * message.
 */
export function problemLines(e: unknown): string[] {
  if (e instanceof ProblemListError) return [...e.lines];
  return [(e as Error).message ?? String(e)];
}

/** True for errors that are a list of located problems (JobSpec, generator, plan). */
export function isProblemList(e: unknown): boolean {
  return e instanceof ProblemListError;
}

/** The flags given that only make sense for a generated JobSpec (`-A`, `--kolaTest`, ...). */
export function generatorFlagsGiven(opts: SubmitOptions): string[] {
  return [
    opts.artifacts.length && "-A",
    opts.kolaTests.length && "--kolaTest",
    opts.singleCmd.length && "--singleCmd",
    opts.singleReq.length && "--singleReq",
    opts.returnFiles.length && "--returnFiles",
  ].filter((f): f is string => typeof f === "string");
}

/**
 * The JobSpec to run: the `--spec` file, or one generated from the flags; then the CLI
 * defaults applied (§2.3 step 4). Warnings (lenient unknown keys) go to `warn`,
 * one line each.
 *
 * @throws {JobSpecError} / {GenerateError} for an invalid spec (both {@link UsageError}s).
 */
export async function resolveSpec(
  opts: SubmitOptions,
  warn: (line: string) => void,
): Promise<JobSpec> {
  let spec: JobSpec;
  if (opts.spec) {
    const ignored = generatorFlagsGiven(opts);
    if (ignored.length) {
      // Gangplank logged these as ignored; an input is honoured or refused, never dropped.
      throw new UsageError(
        `${ignored.join(", ")}: only for a generated JobSpec; not with --spec ${opts.spec}`,
      );
    }
    const r = await loadJobSpec(opts.spec, { lenient: opts.lenient });
    for (const w of r.warnings) warn(`warning: ${formatIssue(w)}`);
    spec = r.spec;
    if (!spec.recipe.repos && opts.repos.length) {
      spec.recipe.repos = opts.repos.map((url) => ({ url }));
    }
    if (opts.copyBuild) spec["copy-build"] = opts.copyBuild;
  } else {
    if (
      !opts.artifacts.length && !opts.kolaTests.length && !opts.singleCmd.length &&
      !opts.singleReq.length && !opts.returnFiles.length
    ) {
      throw new UsageError(
        "nothing to run: give --spec FILE, or -A/--kolaTest/--singleCmd to generate a JobSpec " +
          "(see --help)",
      );
    }
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
  // Flags applied after the file was validated get the same checks.
  for (
    const [flag, problem] of [
      ["--bucket", opts.bucket && jobBucketProblem(opts.bucket)],
      ["--copy-build", opts.copyBuild && buildIdProblem(opts.copyBuild)],
    ]
  ) {
    if (problem) throw new UsageError(`${flag}: ${problem}`);
  }
  return spec;
}
