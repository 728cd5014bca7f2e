/**
 * Kubernetes-safe names and label values, and the labels gangplank puts on everything it
 * creates in a cluster (so `submit --cleanup` can find leftovers).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Label holding the (label-safe) run id. */
export const RUN_ID_LABEL = "gangplank.coreos-assembler.coreos.com/run-id";
/** Label holding the (label-safe) stage id. */
export const STAGE_ID_LABEL = "gangplank.coreos-assembler.coreos.com/stage-id";
/** Label saying what an object is for: `worker`, `hop`, `relay-secret`, `hop-jobspec`. */
export const ROLE_LABEL = "gangplank.coreos-assembler.coreos.com/role";
/** Annotation with the exact (unsanitised) stage id. */
export const STAGE_ID_ANNOTATION = "gangplank.coreos-assembler.coreos.com/stage-id";
/** Standard `app.kubernetes.io/managed-by` label. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Value of {@link MANAGED_BY_LABEL}. */
export const MANAGED_BY = "gangplank";

function hash8(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 8);
}

const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * A valid label value for `s`: `s` itself when already valid, otherwise a sanitised, at most
 * 63-character form with a hash suffix so distinct inputs stay distinct.
 */
export function labelValue(s: string): string {
  if (s.length <= 63 && LABEL_VALUE_RE.test(s)) return s;
  const base = s.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 54)
    .replace(/^[^A-Za-z0-9]+/, "").replace(/[^A-Za-z0-9]+$/, "");
  return base ? `${base}-${hash8(s)}` : hash8(s);
}

/** Lowercase DNS-label characters only, no leading/trailing `-`. */
function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-+/g, "-")
    .replace(/^-+/, "").replace(/-+$/, "");
}

/** A short DNS-label-safe token for a run id (kept whole when short, else shortened + hash). */
export function runToken(runId: string): string {
  // Run ids from the coordinator already start with `gp-`, as do the names built here.
  const id = runId.startsWith("gp-") && runId.length > 3 ? runId.slice(3) : runId;
  const s = slug(id);
  if (s.length > 0 && s.length <= 24 && s === id) return s;
  const head = s.slice(0, 15).replace(/-+$/, "");
  return head ? `${head}-${hash8(runId)}` : hash8(runId);
}

/** `s` cut to a valid DNS label (≤ 63 chars, no trailing `-`). */
export function dnsLabel(s: string): string {
  return slug(s).slice(0, 63).replace(/-+$/, "");
}

/** Deterministic worker pod name: `gp-<run>-w<index>-<stage>` (a DNS label, ≤ 63 chars). */
export function workerPodName(runId: string, stageIndex: number, stageId: string): string {
  return dnsLabel(`gp-${runToken(runId)}-w${stageIndex}-${slug(stageId)}`);
}

/** Name of the per-run Secret holding the relay secret key. */
export function runSecretName(runId: string): string {
  return dnsLabel(`gp-${runToken(runId)}-relay`);
}

/** Name of the hop pod. */
export function hopPodName(runId: string): string {
  return dnsLabel(`gp-${runToken(runId)}-hop`);
}

/** Name of the Secret carrying the hop pod's JobSpec. */
export function hopSecretName(runId: string): string {
  return dnsLabel(`gp-${runToken(runId)}-hop-jobspec`);
}

/** The labels every object of a run carries. */
export function runLabels(runId: string, role: string, stageId?: string): Record<string, string> {
  const labels: Record<string, string> = {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [RUN_ID_LABEL]: labelValue(runId),
    [ROLE_LABEL]: role,
  };
  if (stageId !== undefined) labels[STAGE_ID_LABEL] = labelValue(stageId);
  return labels;
}

/** Label selector for every object of one run, or of every run when `runId` is omitted. */
export function runSelector(runId?: string): string {
  return runId === undefined
    ? `${MANAGED_BY_LABEL}=${MANAGED_BY},${RUN_ID_LABEL}`
    : `${MANAGED_BY_LABEL}=${MANAGED_BY},${RUN_ID_LABEL}=${labelValue(runId)}`;
}
