/**
 * Resuming a run (`submit --resume <workDir>`): the run state file the coordinator keeps in the
 * work dir (rewritten atomically whenever a stage starts or ends), and the decision which
 * stages of a new run can be skipped because an earlier run already did their work.
 *
 * A stage is skipped when its recorded outcome is success, its definition (and the JobSpec
 * around it) is unchanged, and every object it returned is still in the store with the sha256
 * recorded after the last stage that wrote it. Every other stage runs, and so does every stage
 * that consumes what a running stage produces (transitively).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { UsageError } from "../errors/mod.ts";
import { writeFileAtomic } from "../toolkit/fs.ts";
import type { JobSpec } from "../jobspec/mod.ts";
import type { Plan, PlannedStage } from "../plan/mod.ts";
import type { StageReport } from "./report.ts";
import { EnvDigest, type RecordedEnv } from "./env_digest.ts";

/** The run state file's name inside the work dir. */
export const RUN_STATE_FILE = ".gangplank-run.json";

/** What the state file records about one stage. */
export interface RecordedStage {
  /** {@link stageFingerprint} of the stage when it last ran. */
  fingerprint: string;
  /** The workers' environment it last ran with, as keyed digests (absent: none). */
  env?: RecordedEnv;
  /** `running` while a worker runs (a coordinator killed then leaves it so). */
  result: StageReport["result"] | "running";
  /** The run that last ran (or skipped) it. */
  runId: string;
  /** Object keys it returned (with the key prefix). */
  outputs: string[];
  /** Its last report (shown again, as skipped, when a resume skips it). */
  report?: StageReport;
}

/** The run state file (`<workDir>/.gangplank-run.json`, mode 0600: it holds the JobSpec). */
export interface RunState {
  /** Format version of the state file. */
  version: 1;
  /** The run that last wrote the file. */
  runId: string;
  /** The executor's name. */
  backend: string;
  /** The architecture the run built for. */
  arch: string;
  /** The JobSpec the run used, as YAML (`--resume` without `-s` runs it again). */
  specYaml: string;
  /** Where the objects live. Credentials are never recorded. */
  store: { external: boolean; endpoint?: string; bucket: string; keyPrefix: string };
  /** Every returned object as it was after the last stage that wrote it. */
  objects: Record<string, { size: number; sha256: string }>;
  /** Each stage's last outcome, by stage id. */
  stages: Record<string, RecordedStage>;
  /** ISO time of the last update. */
  updatedAt: string;
}

/** Why a stage runs again (or `skip` with what was verified). */
export type ResumeDecision =
  | { run: false; reason: string; previous: RecordedStage }
  | { run: true; reason: string };

/** Stable JSON: object keys sorted, `undefined` dropped. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonical(x ?? null)).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${
      Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) =>
        `${JSON.stringify(k)}:${canonical(o[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v) ?? "null";
}

/**
 * A stage's fingerprint: the sha256 of the stage as written and of the rest of the JobSpec
 * (job, recipe, minio, overrides... — anything that can change what its commands do).
 */
export function stageFingerprint(spec: JobSpec, stageIndex: number): string {
  const { stages, ...rest } = spec;
  return createHash("sha256").update(canonical({ rest, stage: stages[stageIndex] })).digest(
    "hex",
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

/**
 * Reads `<workDir>/.gangplank-run.json`.
 *
 * @throws {UsageError} when the work dir has no state file or it is not one (exit code 2).
 */
export async function readRunState(workDir: string): Promise<RunState> {
  const file = `${workDir}/${RUN_STATE_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`--resume ${workDir}: no run state (${RUN_STATE_FILE}) to resume from`);
    }
    throw new UsageError(`--resume ${workDir}: cannot read ${file}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file}: not JSON: ${(e as Error).message}`);
  }
  if (
    !isRecord(v) || v.version !== 1 || typeof v.specYaml !== "string" ||
    !isRecord(v.stages) || !isRecord(v.objects) || !isRecord(v.store)
  ) {
    throw new UsageError(`${file}: not a gangplank run state (version 1)`);
  }
  return v as unknown as RunState;
}

/**
 * Writes the state file atomically (temp file, rename), mode 0600: a coordinator killed at
 * any moment leaves the previous state or the new one, never a torn file.
 */
export async function writeRunState(workDir: string, state: RunState): Promise<void> {
  await writeFileAtomic(`${workDir}/${RUN_STATE_FILE}`, JSON.stringify(state, null, 1) + "\n", {
    mode: 0o600,
  });
}

/**
 * Which stages consume what each stage produces: `T` depends on `S` when `S` comes first (an
 * earlier group, or a stage of its group `T` waits for) and returns an artifact or cache `T`
 * requires or requests. Returns, per stage id, the ids it depends on directly.
 */
export function stageDependencies(plan: Plan): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  const produces = (s: PlannedStage, t: PlannedStage) => {
    const wants = [...t.requires.artifacts, ...t.requests.artifacts];
    return wants.some((a) => s.returns.artifacts.includes(a)) ||
      ((t.requires.cache || t.requests.cache) && s.returns.cache) ||
      ((t.requires.cacheRepo || t.requests.cacheRepo) && s.returns.cacheRepo);
  };
  for (const t of plan.stages) {
    const d = new Set<string>([...t.after, ...t.waitsFor]);
    for (const s of plan.stages) {
      if (s === t) continue;
      if ((s.order < t.order || t.waitsFor.includes(s.id)) && produces(s, t)) d.add(s.id);
    }
    deps.set(t.id, [...d]);
  }
  return deps;
}

/** Hashes an object of the store: its sha256 and size, or `undefined` when it is missing. */
export type HashObject = (
  key: string,
  opts: { signal: AbortSignal },
) => Promise<{ sha256: string; size: number } | undefined>;

/** Why a stage recorded with an unchanged definition runs again (`undefined`: it need not). */
async function outcomeReason(
  rec: RecordedStage,
  state: RunState,
  hashOf: (key: string) => Promise<{ sha256: string; size: number } | undefined>,
): Promise<string | undefined> {
  if (rec.result === "running" || rec.result === "cancelled") return "interrupted";
  if (rec.result === "failed" || rec.result === "dependency-timeout") {
    return rec.report?.exitCode != null ? `failed (exit code ${rec.report.exitCode})` : "failed";
  }
  if (rec.result !== "succeeded" && rec.result !== "skipped") return "not run";
  for (const key of rec.outputs) {
    const want = state.objects[key];
    const got = await hashOf(key);
    if (!got) return `output missing: ${key}`;
    if (!want || got.sha256 !== want.sha256 || got.size !== want.size) {
      return `output changed: ${key}`;
    }
  }
  return undefined;
}

/**
 * Decides, for each stage of `plan`, whether a resumed run skips it, and why it runs otherwise:
 * `failed`, `interrupted` (cancelled, or the coordinator was killed), `not run`, `new stage`,
 * `spec changed`, `environment changed: <names>` (see {@link EnvDigest}), `output missing: <key>`,
 * `output changed: <key>`, or `depends on <stage>`.
 */
export async function decideResume(opts: {
  state: RunState;
  spec: JobSpec;
  plan: Plan;
  hash: HashObject;
  /** The workers' environment of the new run (default: none). */
  env?: EnvDigest;
  signal: AbortSignal;
}): Promise<Map<string, ResumeDecision>> {
  const { state, spec, plan } = opts;
  const env = opts.env ?? new EnvDigest({}, undefined);
  const out = new Map<string, ResumeDecision>();
  const hashes = new Map<string, Promise<{ sha256: string; size: number } | undefined>>();
  const hashOf = (key: string) => {
    let p = hashes.get(key);
    if (!p) hashes.set(key, p = opts.hash(key, { signal: opts.signal }));
    return p;
  };
  for (const s of plan.stages) {
    const rec = state.stages[s.id];
    const reason = !rec
      ? "new stage"
      : rec.fingerprint !== stageFingerprint(spec, s.index)
      ? "spec changed"
      : env.changes(rec.env) ?? await outcomeReason(rec, state, hashOf);
    out.set(
      s.id,
      reason !== undefined ? { run: true, reason } : {
        run: false,
        reason: `succeeded in run ${rec!.runId}` +
          (rec!.outputs.length ? `, ${rec!.outputs.length} output(s) verified by sha256` : ""),
        previous: rec!,
      },
    );
  }
  // Dependents of a stage that runs run too (in plan order, so chains propagate).
  const deps = stageDependencies(plan);
  for (let changed = true, rounds = 0; changed && rounds <= plan.stages.length; rounds++) {
    changed = false;
    for (const s of plan.stages) {
      const cur = out.get(s.id)!;
      // "depends on X" says more than "not run" (a stage after the failure never started).
      if (cur.run && cur.reason !== "not run") continue;
      const d = deps.get(s.id)!.find((id) => out.get(id)?.run);
      if (d !== undefined) {
        out.set(s.id, { run: true, reason: `depends on ${d}` });
        changed = cur.run === false || changed;
      }
    }
  }
  return out;
}
