/**
 * `spec.output.to` of kind ImageStreamTag resolves through the image stream's repository, read
 * from the (test) API server's `image.openshift.io/v1` ImageStreams with the Kubernetes client.
 */
import assert from "node:assert/strict";
import { startKubeApiServer } from "../_kube_sim/api_server.ts";
import { KubeClient } from "../../lib/kube/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";
import { outputRegistry, parseBuild } from "../../lib/buildconfig/mod.ts";

const build = (to: Record<string, string>) =>
  parseBuild(JSON.stringify({
    metadata: { name: "cosa-7", namespace: "default" },
    spec: { strategy: { type: "Custom" }, output: { to } },
  }));

Deno.test("ImageStreamTag: <stream repository>:<tag> from the API; a missing stream or repository is refused naming spec.output.to", async () => {
  await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
  kube.openshift.put({
    kind: "ImageStream",
    apiVersion: "image.openshift.io/v1",
    metadata: { name: "fcos", namespace: "default" },
    status: {
      dockerImageRepository: "image-registry.openshift-image-registry.svc:5000/default/fcos",
    },
  });
  kube.openshift.put({
    kind: "ImageStream",
    apiVersion: "image.openshift.io/v1",
    metadata: { name: "pending", namespace: "default" },
  });
  const client = KubeClient.connect({ target: { kind: "kubeconfig", path: kube.kubeconfigPath } });
  const signal = AbortSignal.timeout(30_000);
  const opts = {
    signal,
    imageStreamRepository: (ns: string, n: string, s: AbortSignal) =>
      client.imageStreamRepository(ns, n, { signal: s }),
  };
  const r = await outputRegistry(build({ kind: "ImageStreamTag", name: "fcos:stable" }), opts);
  assert.deepEqual(r, {
    url: "image-registry.openshift-image-registry.svc:5000/default/fcos:stable",
    tls_verify: true,
    secret_type: "token",
  });
  const refused = async (to: Record<string, string>, re: RegExp) => {
    await assert.rejects(outputRegistry(build(to), opts), (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.match(e.message, /^BUILD: spec\.output\.to/);
      assert.match(e.message, re);
      return true;
    });
  };
  await refused({ kind: "ImageStreamTag", name: "nope:latest" }, /default\/nope.*not found/);
  await refused(
    { kind: "ImageStreamTag", name: "pending:latest" },
    /no status\.dockerImageRepository/,
  );
  await refused(
    { kind: "ImageStreamTag", name: "fcos:latest", namespace: "elsewhere" },
    /elsewhere\/fcos/,
  );
  assert.ok(
    kube.requests.some((q) =>
      q.path === "/apis/image.openshift.io/v1/namespaces/default/imagestreams/fcos"
    ),
  );
});
