/**
 * Label and field selectors of the Kubernetes list/watch API, parsed the way the API server
 * does (`a=b,c!=d,e in (x,y),f notin (z),g,!h`), for the in-memory test API server.
 *
 * @module
 */

/** A selector that is not valid syntax (the server answers 400 BadRequest). */
export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SelectorError";
  }
}

/** One parsed label requirement. */
export type LabelRequirement =
  | { key: string; op: "=" | "!="; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!" };

/** A parsed label selector: every requirement must hold. */
export type LabelSelector = LabelRequirement[];

const KEY_RE =
  /^([a-z0-9A-Z]([-a-z0-9A-Z.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;
const VALUE_RE = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?$/;

function checkKey(key: string, sel: string): string {
  if (!KEY_RE.test(key) || key.length > 316) {
    throw new SelectorError(`unable to parse requirement: invalid label key "${key}" in "${sel}"`);
  }
  return key;
}

function checkValue(value: string, sel: string): string {
  if (!VALUE_RE.test(value) || value.length > 63) {
    throw new SelectorError(
      `unable to parse requirement: invalid label value "${value}" in "${sel}"`,
    );
  }
  return value;
}

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** Parses a label selector string; the empty string selects everything. */
export function parseLabelSelector(sel: string | null | undefined): LabelSelector {
  const reqs: LabelSelector = [];
  if (!sel || !sel.trim()) return reqs;
  for (const raw of splitTop(sel)) {
    const part = raw.trim();
    if (!part) throw new SelectorError(`unable to parse requirement: empty term in "${sel}"`);
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/))) {
      const values = m[3].split(",").map((v) => checkValue(v.trim(), sel));
      reqs.push({ key: checkKey(m[1], sel), op: m[2] as "in" | "notin", values });
    } else if ((m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/))) {
      const op = m[2] === "!=" ? "!=" : "=";
      reqs.push({ key: checkKey(m[1], sel), op, value: checkValue(m[3], sel) });
    } else if ((m = part.match(/^!\s*(\S+)$/))) {
      reqs.push({ key: checkKey(m[1], sel), op: "!" });
    } else if (/^\S+$/.test(part)) {
      reqs.push({ key: checkKey(part, sel), op: "exists" });
    } else {
      throw new SelectorError(`unable to parse requirement: "${part}" in "${sel}"`);
    }
  }
  return reqs;
}

/** Whether `labels` satisfy every requirement. */
export function matchLabels(
  sel: LabelSelector,
  labels: Record<string, string> | undefined,
): boolean {
  const l = labels ?? {};
  return sel.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case "=":
        return has && l[r.key] === r.value;
      case "!=":
        return !has || l[r.key] !== r.value;
      case "in":
        return has && r.values.includes(l[r.key]);
      case "notin":
        return !has || !r.values.includes(l[r.key]);
      case "exists":
        return has;
      case "!":
        return !has;
    }
  });
}

/** One parsed field requirement. */
export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

/** Fields each resource supports in field selectors (as the real API server). */
export const SUPPORTED_FIELDS: Record<string, string[]> = {
  pods: [
    "metadata.name",
    "metadata.namespace",
    "status.phase",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "status.podIP",
  ],
  secrets: ["metadata.name", "metadata.namespace", "type"],
  events: [
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
  ],
  default: ["metadata.name", "metadata.namespace"],
};

/** Parses a field selector (`metadata.name=x,status.phase!=Running`) for `resource`. */
export function parseFieldSelector(
  sel: string | null | undefined,
  resource: string,
): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  if (!sel || !sel.trim()) return out;
  const supported = SUPPORTED_FIELDS[resource] ?? SUPPORTED_FIELDS.default;
  for (const raw of sel.split(",")) {
    const m = raw.trim().match(/^([^=!]+?)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw new SelectorError(`invalid selector: '${sel}'; can't understand '${raw}'`);
    const field = m[1].trim();
    if (!supported.includes(field)) {
      throw new SelectorError(`field label not supported: ${field}`);
    }
    out.push({ field, op: m[2] === "!=" ? "!=" : "=", value: m[3].trim() });
  }
  return out;
}

function fieldValue(obj: Record<string, unknown>, path: string): string {
  let cur: unknown = obj;
  for (const p of path.split(".")) {
    if (cur && typeof cur === "object") cur = (cur as Record<string, unknown>)[p];
    else return "";
  }
  return cur === undefined || cur === null ? "" : String(cur);
}

/** Whether `obj` satisfies every field requirement. */
export function matchFields(reqs: FieldRequirement[], obj: Record<string, unknown>): boolean {
  return reqs.every((r) => {
    const v = fieldValue(obj, r.field);
    return r.op === "=" ? v === r.value : v !== r.value;
  });
}
