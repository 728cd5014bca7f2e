// deno-lint-ignore-file no-explicit-any -- edits of parsed YAML objects
/**
 * examples/openshift/: the BuildConfig + ImageStream + ServiceAccount + Role/RoleBinding an
 * OpenShift admin applies. Every object is validated against the OpenShift API's OpenAPI
 * document that npm:openshift-rest-client ships (strictly: unknown fields refused; see
 * _openapi.ts), the Kubernetes kinds also against kubernetes-models; the Build OpenShift would
 * instantiate from the BuildConfig is validated too and parsed as the build pod parses it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseAllDocuments, type YAMLSeq } from "yaml";
import { ServiceAccount } from "kubernetes-models/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { parseBuild } from "../../lib/buildconfig/mod.ts";
import { compileKinds, SPEC_SOURCE, validateObject } from "./_openapi.ts";
import { TEMPLATE_TEXT, templateObject, templateObjects } from "./_template.ts";

const TEXT = TEMPLATE_TEXT;
const DOCS = templateObjects();
const byKind = (k: string) => templateObject(k, DOCS);
const KINDS = compileKinds();

Deno.test(`every object of the template validates against the OpenShift OpenAPI document (${SPEC_SOURCE})`, () => {
  for (const d of DOCS) {
    assert.deepEqual(validateObject(KINDS, d), [], `${d.kind} ${d.metadata.name}`);
  }
  // The validator itself: a real Build from OpenShift passes, and the mistakes an edit of the
  // template could make are caught (a misspelt field, a wrong type, a kind OpenShift lacks).
  const real = JSON.parse(readFileSync(new URL("./fixtures/build.json", import.meta.url), "utf8"));
  assert.deepEqual(validateObject(KINDS, real), []);
  const edited = (kind: string, edit: (o: any) => void) => {
    const o = structuredClone(byKind(kind));
    edit(o);
    return validateObject(KINDS, o).join("; ");
  };
  assert.match(
    edited(
      "BuildConfig",
      (o) => (o.spec.strategy.customStrategy.form = o.spec.strategy.customStrategy.from),
    ),
    /must NOT have additional properties \(form\)/,
  );
  assert.match(edited("BuildConfig", (o) => delete o.spec.strategy.customStrategy.from), /'from'/);
  assert.match(edited("BuildConfig", (o) => (o.spec.runPolicy = 3)), /runPolicy: must be string/);
  assert.match(
    edited("BuildConfig", (o) => (o.apiVersion = "build.openshift.io/v2")),
    /not a kind/,
  );
  assert.match(edited("ImageStream", (o) => (o.spec.lookupPolicy.local = "no")), /must be boolean/);
  assert.match(edited("Role", (o) => (o.rules[0].verb = o.rules[0].verbs)), /\(verb\)/);
  assert.match(edited("RoleBinding", (o) => delete o.roleRef.name), /'name'/);
});

Deno.test("the Kubernetes objects validate against the schemas; no cluster-scoped kinds", () => {
  assert.deepEqual(DOCS.map((d) => d.kind).sort(), [
    "BuildConfig",
    "ImageStream",
    "Role",
    "RoleBinding",
    "ServiceAccount",
  ]);
  new ServiceAccount(byKind("ServiceAccount") as never).validate();
  new Role(byKind("Role") as never).validate();
  new RoleBinding(byKind("RoleBinding") as never).validate();
  for (const d of DOCS) {
    assert.equal(
      (d.metadata as { namespace?: string }).namespace,
      undefined,
      "applied in the project",
    );
  }
});

Deno.test("least privilege: exactly the calls the coordinator makes, each rule commented, no wildcard, bound to the build's service account", () => {
  const role = byKind("Role") as unknown as {
    rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  };
  const granted = role.rules.flatMap((r) =>
    r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))
  ).sort();
  // The BuildConfig E2E runs under these rules and needs each one (e2e_test.ts).
  assert.deepEqual(granted, [
    "/configmaps:list",
    "/pods/log:get",
    "/pods:create",
    "/pods:delete",
    "/pods:get",
    "/pods:list",
    "/pods:watch",
    "/secrets:create",
    "/secrets:delete",
    "/secrets:list",
    "/serviceaccounts:get",
    "image.openshift.io/imagestreams:get",
  ]);
  // Each rule says which call needs it, in a comment right above it.
  const doc = parseAllDocuments(TEXT).find((d) => d.get("kind") === "Role")!;
  const rules = doc.get("rules") as YAMLSeq;
  assert.equal(rules.items.length, role.rules.length);
  for (const [i, item] of rules.items.entries()) {
    // (yaml keeps the comment above the first item on the list itself)
    const comment = i === 0
      ? rules.commentBefore
      : (item as { commentBefore?: string }).commentBefore;
    assert.ok(comment?.trim(), `rule ${i}: a comment`);
  }
  assert.equal(TEXT.includes('"*"'), false);
  const rb = byKind("RoleBinding") as unknown as {
    roleRef: { kind: string; name: string };
    subjects: { kind: string; name: string }[];
  };
  assert.deepEqual(rb.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "Role",
    name: byKind("Role").metadata.name,
  });
  const sa = byKind("ServiceAccount").metadata.name;
  assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: sa }]);
  assert.equal(byKind("BuildConfig").spec.serviceAccount, sa);
});

Deno.test("the BuildConfig's Build is one the build pod accepts: Custom, binary input, output to the ImageStream", () => {
  const bc = byKind("BuildConfig");
  assert.equal(bc.apiVersion, "build.openshift.io/v1");
  assert.equal(byKind("ImageStream").apiVersion, "image.openshift.io/v1");
  // What OpenShift instantiates (oc start-build --from-dir): the BuildConfig's spec, minus the
  // BuildConfig-only fields, with the Build's own metadata.
  const { runPolicy: _rp, triggers: _t, ...spec } = bc.spec;
  const instantiated = {
    kind: "Build",
    apiVersion: "build.openshift.io/v1",
    metadata: {
      name: `${bc.metadata.name}-1`,
      namespace: "my-project",
      annotations: {
        "openshift.io/build-config.name": bc.metadata.name,
        "openshift.io/build.number": "1",
      },
    },
    spec: { ...spec, triggeredBy: [{ message: "Manually triggered" }] },
  };
  assert.deepEqual(validateObject(KINDS, instantiated), []);
  const build = parseBuild(JSON.stringify(instantiated));
  assert.deepEqual(build.binary, {});
  assert.equal(build.output?.kind, "ImageStreamTag");
  assert.equal(build.output?.name.split(":")[0], byKind("ImageStream").metadata.name);
  assert.equal(build.strategyEnv.COSA_WORKER_SOURCE, "image");
  assert.equal(spec.strategy.customStrategy.from.kind, "DockerImage");
});
