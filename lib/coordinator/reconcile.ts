/**
 * The coordinator's check of `builds.json` after each execution group: every build a worker
 * reports having added (its `gangway-summary:` line) must be in the store's `builds.json`.
 * Workers merge it with compare-and-swap writes; an S3 endpoint that ignores conditional
 * writes can still lose one of two racing merges. The coordinator then merges the missing
 * entries back (only builds whose `meta.json` is in the store), and a build that is still
 * missing afterwards fails the run: a build is never dropped silently.
 *
 * @module
 */

import { type BuildEntry, mergeBuilds, parseBuilds } from "../cosa/builds.ts";
import { GangplankError } from "../errors/mod.ts";
import { casMergeJSON } from "../store/cas.ts";
import type { ArtifactStoreLike } from "../store/views.ts";
import { type JobLocation, keyOf, type StoreReader } from "./inputs.ts";

/** Builds that workers reported and `builds.json` does not hold (even after a re-merge). */
export class BuildsLostError extends GangplankError {
  constructor(
    /** `<id>/<arch>` of each lost entry, with the stage that reported it. */
    readonly lost: { stageId: string; id: string; arch: string; reason: string }[],
  ) {
    super(
      `builds.json lost ${lost.length} build(s) reported by workers: ` +
        lost.map((l) => `${l.id}/${l.arch} (stage "${l.stageId}": ${l.reason})`).join(", "),
    );
  }
}

/** A build entry a worker says it added. */
export interface ReportedBuilds {
  stageId: string;
  builds: BuildEntry[];
}

/** The store as {@link reconcileBuilds} needs it (writes are optional: then it only checks). */
export type ReconcileStore =
  & Pick<StoreReader, "getJSON" | "stat">
  & Partial<Pick<ArtifactStoreLike, "getJSONVersioned" | "putJSONIf">>;

/** What {@link reconcileBuilds} did. */
export interface ReconcileResult {
  /** Entries that were missing and were merged back (`<id>/<arch>`). */
  repaired: string[];
}

/** Reads `summary.builds` of a worker's `gangway-summary:` line (ignores malformed entries). */
export function reportedBuilds(summary: { builds?: unknown } | undefined): BuildEntry[] {
  const raw = summary?.builds;
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((b) => {
    if (!b || typeof b !== "object") return [];
    const { id, arches } = b as { id?: unknown; arches?: unknown };
    if (typeof id !== "string" || !Array.isArray(arches)) return [];
    return [{ id, arches: arches.filter((a): a is string => typeof a === "string") }];
  });
}

function missingFrom(current: unknown, reported: ReportedBuilds[]) {
  const cur = current === undefined || current === null ? undefined : parseBuilds(current);
  const out: { stageId: string; id: string; arch: string }[] = [];
  for (const r of reported) {
    for (const b of r.builds) {
      const have = cur?.builds.find((x) => x.id === b.id);
      for (const arch of b.arches) {
        if (!have?.arches.includes(arch)) out.push({ stageId: r.stageId, id: b.id, arch });
      }
    }
  }
  return out;
}

/**
 * Checks that `builds.json` holds every build the workers reported; merges missing ones back
 * (compare-and-swap) when their `meta.json` exists; throws for any that stays missing.
 * @throws {BuildsLostError}
 */
export async function reconcileBuilds(
  store: ReconcileStore,
  loc: Pick<JobLocation, "bucket" | "keyPrefix">,
  reported: ReportedBuilds[],
  { signal }: { signal: AbortSignal },
): Promise<ReconcileResult> {
  const key = keyOf(loc, "builds.json");
  const missing = missingFrom(await store.getJSON(loc.bucket, key, { signal }), reported);
  if (missing.length === 0) return { repaired: [] };
  const lost: BuildsLostError["lost"] = [];
  const restorable: typeof missing = [];
  for (const m of missing) {
    const meta = keyOf(loc, `${m.id}/${m.arch}/meta.json`);
    if (await store.stat(loc.bucket, meta, { signal })) restorable.push(m);
    else lost.push({ ...m, reason: `${meta} is not in the store` });
  }
  if (restorable.length && store.getJSONVersioned && store.putJSONIf) {
    const add = {
      "schema-version": "1.0.0",
      builds: restorable.map((m) => ({ id: m.id, arches: [m.arch] })),
      timestamp: new Date().toISOString(),
    };
    await casMergeJSON({
      store: {
        getJSONVersioned: store.getJSONVersioned.bind(store),
        putJSONIf: store.putJSONIf.bind(store),
      },
      bucket: loc.bucket,
      key,
      signal,
      merge: (cur) =>
        missingFrom(cur, [{ stageId: "", builds: add.builds }]).length === 0
          ? undefined
          : mergeBuilds(cur === undefined || cur === null ? undefined : parseBuilds(cur), add),
    });
  }
  const still = missingFrom(await store.getJSON(loc.bucket, key, { signal }), [{
    stageId: "",
    builds: restorable.map((m) => ({ id: m.id, arches: [m.arch] })),
  }]);
  for (const s of still) {
    const m = restorable.find((r) => r.id === s.id && r.arch === s.arch)!;
    lost.push({ ...m, reason: "still missing after merging it back" });
  }
  if (lost.length) throw new BuildsLostError(lost);
  return { repaired: restorable.map((m) => `${m.id}/${m.arch}`) };
}
