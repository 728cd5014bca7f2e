/**
 * JobSpecs generated from CLI shorthands (`-A base,qemu+metal --kolaTest basicBios`), as
 * Gangplank's `generate` did (§3.8), with its bugs fixed: artifacts keep a deterministic order
 * (template order, then given order), no stage waits on a later group, `-A ostree` does not
 * require qemu, caches are only required when an earlier stage returns them, kola tests are
 * not duplicated in single-stage mode, `--kolaTest metal4k` is the kola test, and stage ids
 * are deterministic.
 *
 * @module
 */
import { Document, isScalar, isSeq, visit } from "yaml";
import { GenerateError } from "./errors.ts";
import {
  buildArtifactCommand,
  isValidArtifactShortHand,
  KOLA_TESTS,
  kolaTestName,
  producedArtifacts,
} from "./shorthands.ts";
import { relativePathProblem } from "./parse.ts";
import {
  DEFAULT_BUCKET,
  DEFAULT_GIT_REF,
  DEFAULT_GIT_URL,
  type FieldType,
  type JobSpec,
  JOBSPEC_TYPE,
  type Stage,
  STAGE_TYPE,
} from "./types.ts";

/** Options of {@link generateJobSpec} (the `generate` flags). */
export interface GenerateOptions {
  /** `-A` values: comma-separated or repeated; `a+b` puts several artifacts in one stage. */
  artifacts: string[];
  /** `--kolaTest` values: comma-separated or repeated. */
  kolaTests: string[];
  /** One stage for everything (`generateSinglePod`); implied by singleCmd/singleReq. */
  singleStage?: boolean;
  /** Commands appended to the first stage (never split at commas). */
  singleCmd?: string[];
  /** Artifacts the first stage requires (comma-separated or repeated). */
  singleReq?: string[];
  /** Files (relative to /srv) the first stage returns. */
  returnFiles?: string[];
  /** Repo URLs added to `recipe.repos`. */
  repos?: string[];
  /** `recipe.git_ref`. */
  gitRef?: string;
  /** `recipe.git_url`. */
  gitUrl?: string;
  /** `recipe.git_commit`. */
  gitCommit?: string;
  /** `minio.bucket`. */
  bucket?: string;
  /** `minio.key_prefix`. */
  keyPrefix?: string;
  /** `job.build_name`. */
  buildName?: string;
  /** `job.version_suffix`. */
  versionSuffix?: string;
  /** `job.is_production`. */
  isProduction?: boolean;
  /** `copy-build`. */
  copyBuild?: string;
  /** Only used by {@link jobSpecToYaml}; accepted here for convenience. */
  now?: Date;
  /** Stage ids. Default `ExecOrder <order> Stage <n>` (n = 1-based position). */
  idFor?: (order: number, n: number) => string;
}

interface Tmpl {
  order: number;
  build: string[];
  require: string[];
  request: string[];
  requireCache?: boolean;
  requestCache?: boolean;
  kola?: string;
}

function artifactTemplate(noun: string): Tmpl {
  switch (noun) {
    case "base":
    case "ostree":
      return { order: 1, build: [noun], require: [], request: [], requestCache: true };
    case "finalize":
      return { order: 999, build: ["finalize"], require: [], request: [] };
    case "live":
      return { order: 4, build: ["live"], require: ["ostree", "metal", "metal4k"], request: [] };
    case "extensions":
      return { order: 2, build: [noun], require: ["ostree"], request: [], requireCache: true };
    case "qemu":
    case "metal":
    case "metal4k":
      return { order: 3, build: [noun], require: ["ostree"], request: [] };
    default:
      return { order: 5, build: [noun], require: ["qemu"], request: [] };
  }
}

function kolaTemplate(key: string): Tmpl {
  const k = KOLA_TESTS[key];
  return {
    order: k.executionOrder,
    build: [],
    require: [...k.requireArtifacts],
    request: [],
    kola: key,
  };
}

const splitList = (xs: string[] | undefined): string[] =>
  (xs ?? []).flatMap((x) => x.split(",")).map((x) => x.trim()).filter((x) => x !== "");
const uniq = <T>(xs: T[]): T[] => [...new Set(xs)];

interface Draft {
  stage: Stage;
  order: number;
  produces: string[];
  cache: boolean;
}

function mergeTemplates(parts: Tmpl[]): Draft {
  // Deterministic order: by template order, then the order given (stable sort).
  const sorted = parts.map((t, i) => ({ t, i })).sort((a, b) => a.t.order - b.t.order || a.i - b.i)
    .map((x) => x.t);
  let build = uniq(sorted.flatMap((t) => t.build));
  if (build.includes("base")) build = build.filter((b) => b !== "ostree" && b !== "qemu");
  const produces = uniq(build.flatMap(producedArtifacts));
  const require = uniq(sorted.flatMap((t) => t.require)).filter((r) => !produces.includes(r));
  const request = uniq(sorted.flatMap((t) => t.request)).filter(
    (r) => !produces.includes(r) && !require.includes(r),
  );
  const kola = uniq(sorted.flatMap((t) => t.kola ? [t.kola] : []));
  const requireCache = sorted.some((t) => t.requireCache);
  const requestCache = !requireCache && sorted.some((t) => t.requestCache);
  const stage: Stage = { id: "" };
  if (build.length) stage.build_artifacts = build;
  if (require.length) stage.require_artifacts = require;
  if (request.length) stage.request_artifacts = request;
  if (kola.length) stage.kola_tests = kola;
  if (requireCache) {
    stage.require_cache = true;
    stage.require_cache_repo = true;
  }
  if (requestCache) {
    stage.request_cache = true;
    stage.request_cache_repo = true;
  }
  return { stage, order: Math.min(...sorted.map((t) => t.order)), produces, cache: false };
}

/**
 * Builds a JobSpec from CLI shorthands (§3.8, with the fixes listed in the module doc).
 * `delay_meta_merge` and `job.strict` are always true.
 *
 * @throws {GenerateError} listing every invalid artifact, kola test, requirement or path.
 * @example generateJobSpec({ artifacts: ["base", "qemu+metal"], kolaTests: [] })
 */
export function generateJobSpec(opts: GenerateOptions): JobSpec {
  const problems: string[] = [];
  const artifacts = splitList(opts.artifacts);
  const tests = splitList(opts.kolaTests);
  const singleReq = splitList(opts.singleReq);
  const singleCmd = (opts.singleCmd ?? []).filter((c) => c.trim() !== "");
  const returnFiles = (opts.returnFiles ?? []).filter((f) => f !== "");

  const parseGroup = (entry: string): Tmpl[] => {
    if (!isValidArtifactShortHand(entry)) {
      problems.push(`artifact ${entry} is an invalid artifact`);
      return [];
    }
    return entry.toLowerCase().split("+").flatMap((p) => {
      const noun = p === "iso" || p.startsWith("live-") ? "live" : p;
      try {
        buildArtifactCommand(noun, {});
      } catch (e) {
        problems.push(`artifact ${p}: ${(e as Error).message}`);
        return [];
      }
      return [artifactTemplate(noun)];
    });
  };
  const kolaTmpls = tests.flatMap((t) => {
    const key = kolaTestName(t);
    if (!key) {
      problems.push(
        `kola test ${t} is an invalid kola name (known: ${Object.keys(KOLA_TESTS).join(", ")})`,
      );
      return [];
    }
    return [kolaTemplate(key)];
  });
  for (const f of returnFiles) {
    const p = relativePathProblem(f);
    if (p) problems.push(`--returnFiles ${f}: ${p}`);
  }

  const single = !!opts.singleStage || singleCmd.length > 0 || singleReq.length > 0;
  let groups: Tmpl[][];
  if (single) {
    const all = [...artifacts.flatMap(parseGroup), ...kolaTmpls];
    groups = all.length ? [all] : [];
  } else {
    groups = [...artifacts.map(parseGroup), ...kolaTmpls.map((t) => [t])];
  }
  if (problems.length) throw new GenerateError(problems);

  const drafts = groups.filter((g) => g.length).map(mergeTemplates);
  if (!drafts.length) drafts.push({ stage: { id: "" }, order: 1, produces: [], cache: false });

  const first = drafts[0];
  for (const r of singleReq.flatMap((r) => r.toLowerCase() === "base" ? ["ostree", "qemu"] : [r])) {
    if (first.produces.includes(r)) continue;
    const list = first.stage.require_artifacts ??= [];
    if (!list.includes(r)) list.push(r);
    first.stage.request_artifacts = first.stage.request_artifacts?.filter((x) => x !== r);
    if (first.stage.request_artifacts?.length === 0) delete first.stage.request_artifacts;
  }
  if (singleCmd.length) (first.stage.commands ??= []).push(...singleCmd);
  if (returnFiles.length) (first.stage.return_files ??= []).push(...returnFiles);

  // No impossible waits: a stage runs in a later group than every stage producing what it needs.
  for (let round = 0;; round++) {
    let changed = false;
    for (const d of drafts) {
      for (const r of d.stage.require_artifacts ?? []) {
        for (const p of drafts) {
          if (p !== d && p.produces.includes(r) && p.order >= d.order) {
            d.order = p.order + 1;
            changed = true;
          }
        }
      }
    }
    if (!changed) break;
    if (round > drafts.length + 1) {
      throw new GenerateError(["the requested artifacts depend on each other in a cycle"]);
    }
  }
  // finalize runs after everything else.
  const maxOther = Math.max(
    0,
    ...drafts.filter((d) => !d.stage.build_artifacts?.includes("finalize")).map((d) => d.order),
  );
  for (const d of drafts) {
    if (d.stage.build_artifacts?.includes("finalize")) d.order = Math.max(d.order, maxOther + 1);
  }
  // Caches are required only when an earlier stage returns them; otherwise requested.
  for (const d of drafts) {
    const s = d.stage;
    for (
      const [req, reqst, ret] of [
        ["require_cache", "request_cache", "return_cache"],
        ["require_cache_repo", "request_cache_repo", "return_cache_repo"],
      ] as const
    ) {
      if (s[req] && !drafts.some((p) => p.order < d.order && p.stage[ret])) {
        delete s[req];
        s[reqst] = true;
      }
    }
  }

  const idFor = opts.idFor ?? ((order: number, n: number) => `ExecOrder ${order} Stage ${n}`);
  const stages = drafts.map((d, i) => {
    const what = [...(d.stage.build_artifacts ?? []), ...(d.stage.kola_tests ?? [])];
    const s: Stage = {
      ...d.stage,
      id: what.length || i > 0 ? idFor(d.order, i + 1) : "CLI Commands",
      description: what.length
        ? `Stage ${d.order} execution ${what.join(",")}`
        : "Commands given on the command line",
      execution_order: d.order,
    };
    return s;
  });
  const ids = new Set<string>();
  for (const s of stages) {
    if (!s.id || ids.has(s.id)) {
      throw new GenerateError([`idFor produced a duplicate or empty id ${s.id}`]);
    }
    ids.add(s.id);
  }

  const spec: JobSpec = {
    job: { strict: true },
    recipe: {
      git_ref: opts.gitRef || DEFAULT_GIT_REF,
      git_url: opts.gitUrl || DEFAULT_GIT_URL,
    },
    minio: { bucket: opts.bucket || DEFAULT_BUCKET },
    stages: stages.map(orderKeys),
    delay_meta_merge: true,
  };
  if (opts.buildName) spec.job.build_name = opts.buildName;
  if (opts.versionSuffix) spec.job.version_suffix = opts.versionSuffix;
  if (opts.isProduction) spec.job.is_production = true;
  if (opts.gitCommit) spec.recipe.git_commit = opts.gitCommit;
  if (opts.repos?.length) spec.recipe.repos = opts.repos.map((url) => ({ url }));
  if (opts.keyPrefix) spec.minio.key_prefix = opts.keyPrefix;
  if (opts.copyBuild) spec["copy-build"] = opts.copyBuild;
  return spec;
}

/** Returns a copy of `v` with object keys in the descriptor's (Gangplank's) field order. */
function ordered(v: unknown, t: FieldType): unknown {
  if (v === undefined || v === null) return v;
  if (t.kind === "list" && Array.isArray(v)) return v.map((x) => ordered(x, t.of));
  if (t.kind === "object" && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const f of t.fields) if (o[f.key] !== undefined) out[f.key] = ordered(o[f.key], f.type);
    for (const k of Object.keys(o)) if (!(k in out) && o[k] !== undefined) out[k] = o[k];
    return out;
  }
  return v;
}

function orderKeys(s: Stage): Stage {
  return ordered(s, STAGE_TYPE) as Stage;
}

const FLOW_KEYS = new Set([
  "build_artifacts",
  "require_artifacts",
  "request_artifacts",
  "publish_artifacts",
  "kola_tests",
]);

/**
 * Serialises a JobSpec as YAML in Gangplank's key order, with the
 * `# Generated by Gangplank CLI` / `# <RFC3339 time>` header unless `header: false`.
 * Artifact lists use flow style (`build_artifacts: [base]`).
 */
export function jobSpecToYaml(spec: JobSpec, opts: { now?: Date; header?: boolean } = {}): string {
  const doc = new Document(ordered(spec, JOBSPEC_TYPE));
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && FLOW_KEYS.has(String(pair.key.value)) && isSeq(pair.value)) {
        pair.value.flow = true;
      }
    },
  });
  const body = doc.toString({ lineWidth: 0, flowCollectionPadding: false });
  if (opts.header === false) return body;
  const now = (opts.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, "Z");
  return `# Generated by Gangplank CLI\n# ${now}\n${body}`;
}
