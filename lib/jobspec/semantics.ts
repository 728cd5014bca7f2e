/**
 * Semantic checks of a converted JobSpec (what the types alone do not say): stage ids,
 * shorthands, kola tests, publish targets, repos, overrides, return files, templates, the
 * bucket and build ids; and the name rules the command line shares with them.
 *
 * @module
 */
import type { JobSpecIssue } from "./errors.ts";
import {
  buildArtifactCommand,
  KOLA_TESTS,
  kolaTestName,
  META_ARTIFACTS,
  PUBLISH_CLOUDS,
} from "./shorthands.ts";
import type { JobSpec } from "./types.ts";
import { checkRepoName } from "./repo.ts";
import { overrideWritePath } from "./override.ts";
import { checkTemplateSyntax } from "./template.ts";
import { closest } from "./suggest.ts";
import { CONTROL_CHARS, pathSegmentProblem } from "../names/mod.ts";
import { bucketNameProblem } from "../names/bucket.ts";

/** Where {@link checkSemantics} reports problems (the parser's context). */
export interface IssueSink {
  /** The problems so far (a stage with some is not checked further). */
  readonly errors: readonly JobSpecIssue[];
  /** Records a problem at `path`. */
  error(path: string, where: { line: number; col: number }, message: string): void;
  /** Position recorded for `path`, or the closest recorded parent. */
  where(path: string): { line: number; col: number };
}

/** Semantic checks over the converted spec. */
export function checkSemantics(ctx: IssueSink, spec: JobSpec): void {
  const err = (path: string, message: string) => ctx.error(path, ctx.where(path), message);
  const ids = new Map<string, number>();
  spec.stages.forEach((stage, i) => {
    const p = `stages[${i}]`;
    if (stage.id === undefined || stage.id.trim() === "") {
      err(stage.id === undefined ? p : `${p}.id`, "stage id must not be empty");
    } else if (CONTROL_CHARS.test(stage.id)) {
      // It starts every console line of the stage: a newline in it forges whole lines.
      err(`${p}.id`, "stage id must not contain control characters (newline, escape, ...)");
    } else if (ids.has(stage.id)) {
      const first = ctx.where(`stages[${ids.get(stage.id)}].id`);
      err(
        `${p}.id`,
        `duplicate stage id ${JSON.stringify(stage.id)} (first used at line ${first.line})`,
      );
    } else ids.set(stage.id, i);
    (stage.build_artifacts ?? []).forEach((a, j) => {
      try {
        buildArtifactCommand(a, spec);
      } catch (e) {
        err(`${p}.build_artifacts[${j}]`, (e as Error).message);
      }
    });
    for (const list of ["require_artifacts", "request_artifacts"] as const) {
      (stage[list] ?? []).forEach((a, j) => {
        if (META_ARTIFACTS.includes(a)) return;
        const hint = a.toLowerCase() === "base"
          ? "; base is a build shorthand, the artifacts it produces are ostree and qemu"
          : closest(a, META_ARTIFACTS)
          ? `; did you mean ${closest(a, META_ARTIFACTS)}?`
          : "";
        err(`${p}.${list}[${j}]`, `${JSON.stringify(a)} is not a known meta.json artifact${hint}`);
      });
    }
    (stage.kola_tests ?? []).forEach((t, j) => {
      if (!kolaTestName(t)) {
        err(
          `${p}.kola_tests[${j}]`,
          `unknown kola test ${JSON.stringify(t)} (known: ${Object.keys(KOLA_TESTS).join(", ")})`,
        );
      }
    });
    (stage.publish_artifacts ?? []).forEach((c, j) => {
      const name = c.toLowerCase();
      if (!PUBLISH_CLOUDS.includes(name)) {
        err(
          `${p}.publish_artifacts[${j}]`,
          `cannot publish ${JSON.stringify(c)} (publishable: ${PUBLISH_CLOUDS.join(", ")})`,
        );
      } else if (!spec.clouds_cfgs?.[name as "aws"]) {
        err(`${p}.publish_artifacts[${j}]`, `clouds_cfgs.${name} is not configured`);
      } else if (name === "aliyun" && spec.clouds_cfgs.aliyun?.public) {
        err(`${p}.publish_artifacts[${j}]`, "aliyun cannot publish public images");
      }
    });
    (stage.return_files ?? []).forEach((f, j) => {
      const problem = relativePathProblem(f);
      if (problem) err(`${p}.return_files[${j}]`, problem);
    });
    (stage.overrides ?? []).forEach((o, j) => {
      if (o.uri === undefined) return; // already reported as missing
      if (!/^(file|https?):\/\/./.test(o.uri)) {
        err(`${p}.overrides[${j}].uri`, `uri must start with file://, http:// or https://`);
        return;
      }
      if (o.rpm && o.tarball) {
        err(`${p}.overrides[${j}]`, "an override is either rpm or tarball, not both");
        return;
      }
      try {
        overrideWritePath(o, "");
      } catch (e) {
        err(`${p}.overrides[${j}]`, (e as Error).message);
      }
    });
    for (const list of ["prep_commands", "commands", "post_commands"] as const) {
      (stage[list] ?? []).forEach((c, j) => {
        try {
          checkTemplateSyntax(c);
        } catch (e) {
          err(`${p}.${list}[${j}]`, (e as Error).message);
        }
      });
    }
    const nothing = !stage.build_artifacts?.length && !stage.commands?.length &&
      !stage.prep_commands?.length && !stage.post_commands?.length &&
      !stage.kola_tests?.length && !stage.publish_artifacts?.length;
    // A broken or misspelt key is the likelier cause: report only that.
    const stageHasErrors = ctx.errors.some((e) => e.path.startsWith(`${p}.`));
    if (nothing && !stageHasErrors) {
      err(
        p,
        "stage has nothing to run (no build_artifacts, commands, prep/post commands, kola_tests or publish_artifacts)",
      );
    }
  });
  (spec.recipe.repos ?? []).forEach((r, i) => {
    const p = `recipe.repos[${i}]`;
    if (r.name !== undefined) {
      const problem = checkRepoName(r.name);
      if (problem) err(`${p}.name`, problem);
    }
    if (r.url === undefined && r.inline === undefined) err(p, "a repo needs url or inline");
    if (r.url !== undefined && r.inline !== undefined) {
      err(p, "a repo has either url or inline, not both");
    }
    if (r.url !== undefined && !/^https?:\/\/./.test(r.url)) {
      err(`${p}.url`, "url must start with http:// or https://");
    }
  });
  if (spec.minio.bucket !== undefined) {
    const problem = jobBucketProblem(spec.minio.bucket);
    if (problem) err("minio.bucket", problem);
  }
  if (spec["copy-build"] !== undefined) {
    const problem = buildIdProblem(spec["copy-build"]);
    if (problem) err("copy-build", problem);
  }
  if (spec.minio.key_prefix !== undefined && spec.minio.key_prefix !== "") {
    const problem = relativePathProblem(spec.minio.key_prefix);
    if (problem) err("minio.key_prefix", problem);
  }
}

/**
 * Why `name` cannot be the job's bucket (`minio.bucket`, `--bucket`), or undefined if it can:
 * the relay serves each bucket as a directory of the work dir, and S3's naming rules (no `/`,
 * no `..`, lowercase) keep it there and keep it valid on any S3 endpoint.
 */
export function jobBucketProblem(name: string): string | undefined {
  const problem = bucketNameProblem(name);
  return problem && `${JSON.stringify(name)} is not an S3 bucket name: ${problem}`;
}

/** Why `id` cannot be a build id (`copy-build`), or undefined if it can (one path segment). */
export function buildIdProblem(id: string): string | undefined {
  const problem = pathSegmentProblem(id);
  return problem && `build id ${JSON.stringify(id)} ${problem}`;
}

/** Why `p` is not a safe relative path, or undefined if it is. */
export function relativePathProblem(p: string): string | undefined {
  if (p === "") return "path must not be empty";
  if (p.startsWith("/")) return `path ${JSON.stringify(p)} must be relative`;
  if (p.includes("\0")) return "path must not contain NUL";
  if (p.split("/").some((s) => s === "..")) return `path ${JSON.stringify(p)} must not contain ..`;
  return undefined;
}
