/**
 * Validation of OpenShift and Kubernetes objects against the OpenShift API's OpenAPI (v2)
 * document shipped by npm:openshift-rest-client (`lib/specs/openshift-openapi-spec.json.gz`,
 * "OpenShift API (with Kubernetes)": build.openshift.io, image.openshift.io, core/v1, rbac...;
 * copied byte for byte into fixtures/, see fixtures/README.md for why), compiled with ajv. Checked the way `oc apply --validate=strict` has the server decode:
 *
 * - the object's `apiVersion`/`kind` must be a kind the document defines;
 * - every field must be known (`additionalProperties: false` wherever the document lists the
 *   properties of an object): a misspelt field is an error, not silently dropped;
 * - types are the document's, with the API's own leniencies: `null` for an object or list
 *   (Go's nil map/slice), a number where the document says int-or-string or quantity;
 * - `required` is the document's, except `status`, which the server writes (the document marks
 *   it required only because its Go field has no `omitempty`).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import Ajv from "ajv";

/** Where the document came from (for messages). */
export const SPEC_SOURCE =
  "npm:openshift-rest-client@9.1.1 lib/specs/openshift-openapi-spec.json.gz";
/** The sha256 of that file in the package (fixtures/README.md). */
export const SPEC_SHA256 = "25fb924f3a5b8f21138184f8a1fa186d14a08dfe02140fe8b261a983fc23916c";
/** The copy in fixtures/. */
export const SPEC_FILE = new URL("./fixtures/openshift-openapi-spec.json.gz", import.meta.url);

type Schema = Record<string, unknown>;
interface OpenApiV2 {
  info: { title: string };
  definitions: Record<string, Schema>;
}

/** The OpenAPI document as shipped (refused when the copy is not the package's file). */
export function openShiftOpenApi(): OpenApiV2 {
  const gz = readFileSync(SPEC_FILE);
  const sha = createHash("sha256").update(gz).digest("hex");
  if (sha !== SPEC_SHA256) {
    throw new Error(`${SPEC_FILE.pathname}: sha256 ${sha}, not the file of ${SPEC_SOURCE}`);
  }
  return JSON.parse(gunzipSync(gz).toString("utf8"));
}

const LENIENT: Record<string, Schema> = {
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": { type: ["string", "integer"] },
  "io.k8s.apimachinery.pkg.api.resource.Quantity": { type: ["string", "number"] },
};

/** The strict form of one schema (see the module doc), recursively. */
function strict(s: Schema, top: boolean): Schema {
  const out: Schema = { ...s };
  if (s.type === "object" || s.type === "array") out.type = [s.type, "null"];
  if (s.properties) {
    out.properties = Object.fromEntries(
      Object.entries(s.properties as Record<string, Schema>).map(([k, v]) => [k, strictRef(v)]),
    );
    if (s.additionalProperties === undefined) out.additionalProperties = false;
    if (top && Array.isArray(s.required)) {
      out.required = (s.required as string[]).filter((r) => r !== "status");
    }
  }
  if (s.items) out.items = strictRef(s.items as Schema);
  if (s.additionalProperties && typeof s.additionalProperties === "object") {
    out.additionalProperties = strictRef(s.additionalProperties as Schema);
  }
  return out;
}

/** A property: a `$ref` may also be null (a nil pointer, map or slice), else made strict. */
function strictRef(s: Schema): Schema {
  if (typeof s.$ref === "string") return { anyOf: [{ type: "null" }, { $ref: s.$ref }] };
  return strict(s, false);
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}
type AjvValidate = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
interface AjvLike {
  addSchema(schema: unknown): unknown;
  compile(schema: unknown): AjvValidate;
}

/** A validator of one API version's kind; `errors` lists `path: message` lines. */
export type Validate = (obj: unknown) => string[];

/**
 * Compiles the validators of the document's kinds, keyed by `apiVersion kind`
 * (`build.openshift.io/v1 BuildConfig`, `v1 ServiceAccount`, ...).
 */
export function compileKinds(doc = openShiftOpenApi()): Map<string, Validate> {
  const definitions: Record<string, Schema> = {};
  for (const [name, s] of Object.entries(doc.definitions)) {
    definitions[name] = LENIENT[name] ?? strict(s, true);
  }
  // npm:ajv is CommonJS; its default export is the class.
  const AjvClass = ((Ajv as unknown as { default?: unknown }).default ?? Ajv) as new (
    opts: Record<string, unknown>,
  ) => AjvLike;
  const ajv = new AjvClass({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: "openshift", definitions });
  const out = new Map<string, Validate>();
  for (const [name, s] of Object.entries(doc.definitions)) {
    const gvks = s["x-kubernetes-group-version-kind"] as
      | { group: string; version: string; kind: string }[]
      | undefined;
    for (const g of gvks ?? []) {
      const apiVersion = g.group ? `${g.group}/${g.version}` : g.version;
      let compiled: AjvValidate | undefined;
      out.set(`${apiVersion} ${g.kind}`, (obj) => {
        compiled ??= ajv.compile({ $ref: `openshift#/definitions/${name}` });
        if (compiled(obj)) return [];
        return (compiled.errors ?? []).map((e) =>
          `${e.instancePath || "/"}: ${e.message}${
            e.keyword === "additionalProperties" ? ` (${e.params.additionalProperty})` : ""
          }`
        );
      });
    }
  }
  return out;
}

/** Problems of `obj` (an object with apiVersion and kind) by the document; [] when valid. */
export function validateObject(
  kinds: Map<string, Validate>,
  obj: { apiVersion?: unknown; kind?: unknown },
): string[] {
  const v = kinds.get(`${obj.apiVersion} ${obj.kind}`);
  if (!v) return [`${obj.apiVersion} ${obj.kind}: not a kind of ${SPEC_SOURCE}`];
  return v(obj);
}
