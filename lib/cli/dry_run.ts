/**
 * The dry-run view of a plan: the document printed by `-o json|yaml` ({@link DryRunDocument})
 * and its readable table ({@link dryRunTable}). Pure: no I/O.
 *
 * @module
 */
import {
  type JobSpec,
  MetaUnavailableError,
  renderTemplate,
  TemplateError,
} from "../jobspec/mod.ts";
import type { Plan, PlannedStage } from "../plan/mod.ts";
import { stringify as toYaml } from "yaml";
import type { Backend, OutputFormat } from "./submit_options.ts";
import {
  encodeWorkSpec,
  KUBE_SECRET_MAX_BYTES,
  withoutRegistrySecrets,
  type WorkSpecTransport,
  workSpecTransport,
} from "../workspec/mod.ts";

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
    /**
     * How the largest stage's WorkSpec reaches its worker: in `COSA_WORK_POD_JSON`, or (too
     * large for the environment) as part files. `bytes` is without the stage's input files.
     */
    workSpec: WorkSpecTransport;
  };
  /** Where workers reach the relay (`--backend kube`). */
  relay?: string;
  /** What the backend would create (e.g. pods for `--backend kube`). */
  resources?: unknown;
  /** `--resume`: which stages run again and why, which are skipped. */
  resume?: {
    /** The run being resumed. */
    runId: string;
    workDir: string;
    stages: { id: string; run: boolean; reason: string }[];
  };
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

/**
 * Builds the dry-run document of `plan`; commands are rendered against `spec` (those using
 * `.Meta` are marked as rendered on the worker) and template problems are added to `problems`.
 */
export function dryRunDocument(
  opts: { spec?: string; arch: string; backend: Backend },
  spec: JobSpec,
  plan: Plan,
  problems: string[],
): DryRunDocument {
  const workSpec = largestWorkSpec(spec, plan);
  if (opts.backend === "kube" && workSpec.bytes > KUBE_SECRET_MAX_BYTES) {
    problems.push(
      `the WorkSpec (${workSpec.bytes} bytes, mostly the JobSpec) does not fit in a Kubernetes ` +
        `Secret (at most ${KUBE_SECRET_MAX_BYTES} bytes): shrink the JobSpec's inline scripts, ` +
        `or use the local or podman backend`,
    );
  }
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
      workSpec,
    },
  };
}

/** The transport of the largest stage's WorkSpec (no input files, a placeholder relay). */
function largestWorkSpec(spec: JobSpec, plan: Plan): WorkSpecTransport {
  const jobspec = withoutRegistrySecrets(spec).spec;
  let largest = "";
  for (const s of plan.groups.flatMap((g) => g.stages)) {
    const encoded = encodeWorkSpec({
      remotefiles: [],
      jobspec,
      executeStages: [s.id],
      return: { bucket: spec.minio.bucket ?? "builder", key_prefix: spec.minio.key_prefix ?? "" },
      relay: { host: "127.0.0.1", port: 1, region: "us-east-1", secure: false, accesskey: "x" },
    });
    if (encoded.length > largest.length) largest = encoded;
  }
  return workSpecTransport(largest);
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
  if (doc.relay) lines.push(`Relay     workers reach it at ${doc.relay}`);
  const ws = p.workSpec;
  lines.push(
    `WorkSpec  ${(ws.bytes / 1024).toFixed(0)} KiB, ` +
      (ws.via === "env"
        ? "in COSA_WORK_POD_JSON"
        : `too large for the environment: as ${ws.parts} part file(s) ` +
          "(local 0600 files, podman secrets, Kubernetes Secret keys)"),
  );
  lines.push(`Plan      ${p.groups.length} group(s), ${nStages} stage(s)`);
  const resume = new Map(doc.resume?.stages.map((s) => [s.id, s]));
  if (doc.resume) {
    const n = doc.resume.stages.filter((s) => s.run).length;
    lines.push(
      `Resume    run ${doc.resume.runId} in ${doc.resume.workDir}: ${n} stage(s) run, ${
        doc.resume.stages.length - n
      } skipped`,
    );
  }
  for (const g of p.groups) {
    lines.push("");
    lines.push(
      `Group ${g.order}: ` +
        (g.stages.length === 1 ? "1 stage" : `${g.stages.length} stages in parallel`),
    );
    for (const s of g.stages) {
      lines.push(`  Stage ${JSON.stringify(s.id)}${s.description ? ` - ${s.description}` : ""}`);
      const r = resume.get(s.id);
      if (r) lines.push(`    resume:    ${r.run ? "runs" : "skipped"}: ${r.reason}`);
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

/** The dry-run document as printed for `-o json|yaml|table`. */
export function formatDryRun(doc: DryRunDocument, output: OutputFormat): string {
  return output === "json"
    ? JSON.stringify(doc, null, 2) + "\n"
    : output === "yaml"
    ? toYaml(doc, { lineWidth: 0 })
    : dryRunTable(doc);
}
