/**
 * Validation of `meta.json` against cosa's own JSON schema (`meta_schema_v1.json`, copied from
 * coreos-assembler's `v1.json`). Unknown top-level fields are reported separately and never
 * make a build invalid: cosa adds fields faster than schemas are updated (a strict check made
 * Gangplank treat newer builds as "no build").
 *
 * @module
 */

import Ajv from "ajv";
import rawSchema from "./meta_schema_v1.json" with { type: "json" };

/** One schema violation: the JSON pointer of the offending value and what is wrong. */
export interface MetaProblem {
  path: string;
  message: string;
}

/** Result of {@link validateMeta}. */
export interface MetaValidation {
  /** True when there is no problem other than unknown fields. */
  valid: boolean;
  /** Violations that make the metadata unusable (missing/wrongly typed fields). */
  errors: MetaProblem[];
  /** Top-level (or nested) fields the schema does not know; informational only. */
  unknownFields: string[];
}

/** Cosa's schema repeats nested `$id`s, which Ajv refuses; only the root `$id` matters. */
function stripNestedIds(x: unknown, root: boolean): unknown {
  if (Array.isArray(x)) return x.map((v) => stripNestedIds(v, false));
  if (x && typeof x === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) {
      if (k === "$id" && !root) continue;
      o[k] = stripNestedIds(v, false);
    }
    return o;
  }
  return x;
}

type ValidateFn = ((data: unknown) => boolean) & {
  errors?: {
    instancePath: string;
    keyword: string;
    params: Record<string, unknown>;
    message?: string;
  }[] | null;
};

let compiled: ValidateFn | undefined;

function validator(): ValidateFn {
  if (!compiled) {
    // npm:ajv is CommonJS; its default export is the class.
    const AjvClass = ((Ajv as unknown as { default?: unknown }).default ?? Ajv) as new (
      opts: Record<string, unknown>,
    ) => { compile(schema: unknown): ValidateFn };
    const ajv = new AjvClass({ strict: false, allErrors: true });
    compiled = ajv.compile(stripNestedIds(rawSchema, true));
  }
  return compiled;
}

/** The cosa meta schema (draft-07) as shipped with this package. */
export const META_SCHEMA: unknown = rawSchema;

/**
 * Validates a parsed `meta.json` against cosa's schema.
 * @example
 * const v = validateMeta(JSON.parse(text));
 * if (!v.valid) throw new Error(v.errors.map((e) => `${e.path}: ${e.message}`).join("; "));
 */
export function validateMeta(meta: unknown): MetaValidation {
  const v = validator();
  const ok = v(meta);
  const errors: MetaProblem[] = [];
  const unknownFields: string[] = [];
  if (!ok) {
    for (const e of v.errors ?? []) {
      if (e.keyword === "additionalProperties") {
        const name = String(e.params.additionalProperty);
        unknownFields.push(e.instancePath ? `${e.instancePath}/${name}` : name);
        continue;
      }
      errors.push({ path: e.instancePath || "/", message: e.message ?? e.keyword });
    }
  }
  return { valid: errors.length === 0, errors, unknownFields };
}
