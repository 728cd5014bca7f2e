/**
 * Pure parts of the Kubernetes test API server: label/field selector parsing and matching,
 * quantities, the kubectl STATUS column, and the process-mode mount point plan.
 */

import assert from "node:assert/strict";
import {
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from "./selectors.ts";
import { parseQuantity, planMountPoints } from "./kubelet.ts";
import { podStatusReason } from "./api_server.ts";
import type { KObj } from "./store.ts";

Deno.test("label selectors: every operator, spacing, and syntax errors", () => {
  const l = { app: "web", tier: "front", "example.com/run": "r-1" };
  const m = (s: string) => matchLabels(parseLabelSelector(s), l);
  assert.equal(m(""), true);
  assert.equal(m("app=web"), true);
  assert.equal(m("app==web"), true);
  assert.equal(m("app = web"), true);
  assert.equal(m("app!=web"), false);
  assert.equal(m("missing!=x"), true);
  assert.equal(m("tier in (front, back)"), true);
  assert.equal(m("tier in (back)"), false);
  assert.equal(m("tier notin (back)"), true);
  assert.equal(m("missing notin (back)"), true);
  assert.equal(m("missing in (back)"), false);
  assert.equal(m("app"), true);
  assert.equal(m("!app"), false);
  assert.equal(m("!missing"), true);
  assert.equal(m("example.com/run=r-1,app in (web),!missing"), true);
  assert.equal(m("example.com/run=r-2"), false);
  assert.throws(() => parseLabelSelector("a=b,,c"), SelectorError);
  assert.throws(() => parseLabelSelector("a=b c"), SelectorError);
  assert.throws(() => parseLabelSelector("a in b"), SelectorError);
  assert.throws(() => parseLabelSelector("a=(b"), SelectorError);
});

Deno.test("field selectors: supported fields per resource, = == !=", () => {
  const pod = { metadata: { name: "p", namespace: "ns" }, status: { phase: "Running" } };
  const f = (s: string) => matchFields(parseFieldSelector(s, "pods"), pod);
  assert.equal(f("metadata.name=p"), true);
  assert.equal(f("metadata.name==p,metadata.namespace=ns"), true);
  assert.equal(f("status.phase!=Running"), false);
  assert.equal(f("status.phase!=Failed"), true);
  assert.throws(() => parseFieldSelector("spec.containers=x", "pods"), /field label not supported/);
  assert.throws(() => parseFieldSelector("status.phase=x", "secrets"), SelectorError);
  assert.equal(parseFieldSelector("type=Opaque", "secrets").length, 1);
});

Deno.test("quantities", () => {
  assert.equal(parseQuantity("2"), 2);
  assert.equal(parseQuantity("500m"), 0.5);
  assert.equal(parseQuantity("4Gi"), 4 * 1024 ** 3);
  assert.equal(parseQuantity("1k"), 1000);
  assert.ok(Number.isNaN(parseQuantity("x")));
});

Deno.test("kubectl STATUS column follows kubectl's printer", () => {
  const pod = (status: KObj["status"], extra: Partial<KObj> = {}) =>
    ({
      metadata: { name: "p" },
      spec: { containers: [{ name: "c" }], initContainers: [{ name: "i" }] },
      status,
      ...extra,
    }) as KObj;
  assert.equal(podStatusReason(pod({ phase: "Pending" })), "Pending");
  assert.equal(
    podStatusReason(pod({
      phase: "Pending",
      initContainerStatuses: [{ name: "i", state: { running: {} } }],
    })),
    "Init:0/1",
  );
  assert.equal(
    podStatusReason(pod({
      phase: "Pending",
      containerStatuses: [{ name: "c", state: { waiting: { reason: "ImagePullBackOff" } } }],
    })),
    "ImagePullBackOff",
  );
  assert.equal(
    podStatusReason(pod({
      phase: "Failed",
      initContainerStatuses: [{ name: "i", state: { terminated: { exitCode: 0 } } }],
      containerStatuses: [{
        name: "c",
        state: { terminated: { exitCode: 137, reason: "OOMKilled" } },
      }],
    })),
    "OOMKilled",
  );
  assert.equal(podStatusReason(pod({ phase: "Failed", reason: "Evicted" })), "Evicted");
  assert.equal(
    podStatusReason(
      pod({ phase: "Running" }, {
        metadata: { name: "p", deletionTimestamp: "2020-01-01T00:00:00Z" },
      }),
    ),
    "Terminating",
  );
});

Deno.test("process-mode mount points: inside volumes, overlays of existing ancestors, host only under /", () => {
  const host = new Set(["/", "/etc", "/etc/containers", "/srv", "/var", "/var/run"]);
  const exists = (p: string) => host.has(p);
  const plan = planMountPoints(
    [
      "/srv",
      "/srv/sub/dir",
      "/etc/pki/ca-trust/extracted",
      "/etc/pki/ca-trust/source/anchors",
      "/etc/containers/certs.d",
      "/var/run/secrets/kubernetes.io/serviceaccount",
      "/newtop/x",
    ],
    "/srv/work",
    exists,
  );
  // /srv/sub/dir and /srv/work are made inside the /srv volume; /etc/containers is under /etc
  assert.deepEqual(plan.overlays, ["/etc", "/var/run"]);
  assert.deepEqual(plan.hostCreate, ["/newtop/x"]);
  assert.deepEqual(planMountPoints(["/srv"], undefined, exists), { overlays: [], hostCreate: [] });
});
