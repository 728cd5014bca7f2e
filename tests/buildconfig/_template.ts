/**
 * The objects of examples/openshift/gangplank-buildconfig.yaml, parsed, and its Role as the
 * test API server's authorizer (every BuildConfig E2E runs under exactly these rules).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import {
  DISCOVERY_RULES,
  type PolicyRule,
  type RequestAttributes,
  roleAllows,
  rulesAllow,
} from "../_kube_sim/rbac.ts";

/** One object of the template. */
export type TemplateObject = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string };
  // deno-lint-ignore no-explicit-any
  spec?: any;
};

/** The template's path and text. */
export const TEMPLATE_PATH = new URL(
  "../../examples/openshift/gangplank-buildconfig.yaml",
  import.meta.url,
);
/** The template's text. */
export const TEMPLATE_TEXT: string = readFileSync(TEMPLATE_PATH, "utf8");

/** The template's objects (a YAML error fails the caller). */
export function templateObjects(text = TEMPLATE_TEXT): TemplateObject[] {
  return parseAllDocuments(text).map((d) => {
    assert.deepEqual(d.errors, []);
    return d.toJSON() as TemplateObject;
  });
}

/** The one object of `kind`. */
export function templateObject(kind: string, docs = templateObjects()): TemplateObject {
  const o = docs.filter((d) => d.kind === kind);
  assert.equal(o.length, 1, `one ${kind}`);
  return o[0];
}

/** The template Role's rules. */
export function templateRules(): PolicyRule[] {
  return (templateObject("Role") as unknown as { rules: PolicyRule[] }).rules;
}

/**
 * The API server's decision for a client holding the template's Role in `namespace`, plus
 * what every authenticated user may do (discovery).
 */
export function templateAuthorizer(namespace = "default"): (a: RequestAttributes) => boolean {
  const role = { namespace, rules: templateRules() };
  return (a) => a.resourceRequest ? roleAllows(role, a) : rulesAllow(DISCOVERY_RULES, a);
}
