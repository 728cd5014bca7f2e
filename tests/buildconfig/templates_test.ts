/**
 * examples/openshift/: the BuildConfig + ImageStream + ServiceAccount + Role/RoleBinding an
 * OpenShift admin applies. Kubernetes kinds are validated against kubernetes-models' schemas
 * (npm has no OpenShift models); the BuildConfig is checked by instantiating the Build OpenShift
 * would create from it and parsing that as the build pod would.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ServiceAccount } from "kubernetes-models/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { parseBuild } from "../../lib/buildconfig/mod.ts";

type Obj = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: { name: string };
  // deno-lint-ignore no-explicit-any
  spec?: any;
};

const TEXT = readFileSync(
  new URL("../../examples/openshift/gangplank-buildconfig.yaml", import.meta.url),
  "utf8",
);
const DOCS = parseAllDocuments(TEXT).map((d) => {
  assert.deepEqual(d.errors, []);
  return d.toJSON() as Obj;
});
const byKind = (k: string) => {
  const o = DOCS.filter((d) => d.kind === k);
  assert.equal(o.length, 1, `one ${k}`);
  return o[0];
};

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

Deno.test("least privilege: exactly these namespaced rules, no wildcard, bound to the build's service account", () => {
  const role = byKind("Role") as unknown as {
    rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  };
  const granted = role.rules.flatMap((r) =>
    r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))
  ).sort();
  assert.deepEqual(granted, [
    "/configmaps:get",
    "/configmaps:list",
    "/pods/log:get",
    "/pods:create",
    "/pods:delete",
    "/pods:get",
    "/pods:list",
    "/pods:watch",
    "/secrets:create",
    "/secrets:delete",
    "/secrets:get",
    "/secrets:list",
    "build.openshift.io/builds:get",
    "image.openshift.io/imagestreams:get",
  ]);
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
  const build = parseBuild(JSON.stringify({
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
    spec,
  }));
  assert.deepEqual(build.binary, {});
  assert.equal(build.output?.kind, "ImageStreamTag");
  assert.equal(build.output?.name.split(":")[0], byKind("ImageStream").metadata.name);
  assert.equal(build.strategyEnv.COSA_WORKER_SOURCE, "image");
  assert.equal(spec.strategy.customStrategy.from.kind, "DockerImage");
});
