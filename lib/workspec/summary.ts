/**
 * The summary line: the last line a worker prints, read by the coordinator for exact byte
 * counts and the list of returned artifacts. Both sides use the one {@link WorkerSummary}
 * type; {@link parseSummaryLine} checks every field's type, so a malformed line is ignored
 * rather than half-trusted.
 *
 * @module
 */

/** Prefix of the machine-readable summary line a worker prints last. */
export const SUMMARY_PREFIX = "gangway-summary: ";

/** What the summary line carries (no secrets). */
export interface WorkerSummary {
  exitCode: number;
  stageIds: string[];
  /** Bytes downloaded. */
  bytesIn: number;
  /** Bytes uploaded. */
  bytesOut: number;
  filesFetched: number;
  filesSkipped: number;
  /** Names (`images` keys) of the artifacts returned. */
  artifactsReturned: string[];
  /** How many objects were uploaded (the length of {@link WorkerSummary.uploadedKeys}). */
  uploaded: number;
  /** Object keys uploaded (with key prefix). */
  uploadedKeys: string[];
  /** How many uploads failed (the messages are in the worker's log, not on the wire). */
  uploadErrors: number;
  /** Latest build for the arch after the stage, if any. */
  buildId?: string;
  /**
   * Entries the worker added to `builds.json` (new ids, or new arches of an id); the
   * coordinator checks they are all there when the stage's group has ended.
   */
  builds?: { id: string; arches: string[] }[];
  /** One line saying why it failed (absent on success). */
  message?: string;
}

/**
 * The summary line for `s`.
 *
 * @example
 * ```ts
 * import { formatSummaryLine, parseSummaryLine } from "./summary.ts";
 * const s = {
 *   exitCode: 0, stageIds: ["build"], bytesIn: 0, bytesOut: 10, filesFetched: 0,
 *   filesSkipped: 0, artifactsReturned: [], uploaded: 1, uploadedKeys: ["builds.json"],
 *   uploadErrors: 0,
 * };
 * const line = formatSummaryLine(s);
 * if (parseSummaryLine(line)?.bytesOut !== 10) throw new Error("round trip");
 * ```
 */
export function formatSummaryLine(s: WorkerSummary): string {
  return SUMMARY_PREFIX + JSON.stringify({
    exitCode: s.exitCode,
    stageIds: s.stageIds,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    filesFetched: s.filesFetched,
    filesSkipped: s.filesSkipped,
    artifactsReturned: s.artifactsReturned,
    uploaded: s.uploaded,
    uploadedKeys: s.uploadedKeys,
    uploadErrors: s.uploadErrors,
    ...(s.buildId ? { buildId: s.buildId } : {}),
    ...(s.builds?.length ? { builds: s.builds } : {}),
    ...(s.message ? { message: s.message } : {}),
  });
}

const NUMBERS = [
  "exitCode",
  "bytesIn",
  "bytesOut",
  "filesFetched",
  "filesSkipped",
  "uploaded",
  "uploadErrors",
] as const;
const STRING_LISTS = ["stageIds", "artifactsReturned", "uploadedKeys"] as const;

/**
 * Parses a {@link formatSummaryLine} line (it may follow a log prefix); `undefined` for any
 * other line and for a summary whose fields have the wrong types.
 */
export function parseSummaryLine(line: string): WorkerSummary | undefined {
  const i = line.indexOf(SUMMARY_PREFIX);
  if (i < 0) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line.slice(i + SUMMARY_PREFIX.length));
  } catch {
    return undefined;
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
  for (const k of NUMBERS) if (typeof v[k] !== "number") return undefined;
  for (const k of STRING_LISTS) {
    const l = v[k];
    if (!Array.isArray(l) || !l.every((x) => typeof x === "string")) return undefined;
  }
  for (const k of ["buildId", "message"]) {
    if (v[k] !== undefined && typeof v[k] !== "string") return undefined;
  }
  if (v.builds !== undefined) {
    const ok = Array.isArray(v.builds) &&
      v.builds.every((b) =>
        b && typeof b === "object" && typeof b.id === "string" && Array.isArray(b.arches) &&
        b.arches.every((a: unknown) => typeof a === "string")
      );
    if (!ok) return undefined;
  }
  return v as unknown as WorkerSummary;
}

/**
 * Prefix of a worker's transfer progress lines (`gangway-progress: builder/x.raw: 512.0 MiB /
 * 1.0 GiB (50%) 120 MiB/s`), printed about once a second while a transfer lasts over a second.
 * The coordinator takes them out of the log and shows them in its live view.
 */
export const PROGRESS_PREFIX = "gangway-progress: ";

/** The progress text of a {@link PROGRESS_PREFIX} line; `undefined` for any other line. */
export function parseProgressLine(line: string): string | undefined {
  return line.startsWith(PROGRESS_PREFIX) ? line.slice(PROGRESS_PREFIX.length) : undefined;
}
