/**
 * End to end, kube backend, as a real cluster meets it: pods on their own addresses, images
 * running as a non-root user. The demo JobSpec gives the local backend's builds/ tree
 * - with the default worker source on a stand-in for the stock cosa image (no deno, no worker
 *   inside, `USER builder`): deno comes from the Deno image, the worker bundle from the run's
 *   ConfigMap, checked by sha256;
 * - with a non-root custom image that carries the worker (`--worker-source image`).
 * A bundle that does not match its sha256 never runs; an image without the worker fails the
 * stage with the kubelet's StartError.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { gzipSync } from "node:zlib";
import { ROOT, runScript, tempDir } from "../_helpers/mod.ts";
import {
  ensureDenoImage,
  ensureNonRootImage,
  ensureTestImage,
  NONROOT_TEST_IMAGE,
  podmanMissing,
  STOCK_TEST_IMAGE,
} from "../_helpers/podman.ts";
import { assertSameBuilds, scriptEnv } from "../e2e/_podman_helpers.ts";
import { type KObj, type KubeApi, startKubeApiServer } from "../_kube_sim/api_server.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/mod.ts";
import { kubeSubmitArgs } from "./_kube_run.ts";

const missing = podmanMissing() ??
  (Deno.uid() === 0 ? undefined : "not root: the simulated pods would share the host network");
if (missing) console.log(`SKIP tests/kube_backend/images_test.ts: ${missing}`);

const SPEC = `${ROOT}/examples/demo.jobspec.yaml`;

/** Every pod version seen while `fn` runs. */
async function watchingPods<T>(kube: { pods(): KObj[] }, fn: () => Promise<T>) {
  const seen: KObj[] = [];
  const t = setInterval(() => seen.push(...kube.pods()), 100);
  try {
    return { result: await fn(), seen };
  } finally {
    clearInterval(t);
  }
}

Deno.test({
  name: "kube images: stock-image default and a non-root custom image both match the local backend",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage({ stock: true });
  await ensureDenoImage();
  await ensureNonRootImage();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  await using tmp = await tempDir("gp-kube-images-");
  const local = await runScript("submit.ts", ["-s", SPEC, "-w", `${tmp.path}/local`], {
    env: scriptEnv(),
    cwd: tmp.path,
    timeoutMs: 240_000,
  });
  assert.equal(local.code, 0, `local:\n${local.stdout}\n${local.stderr}`);
  const runs: [string, string[]][] = [
    ["stock", ["--image", STOCK_TEST_IMAGE]],
    ["nonroot", ["--image", NONROOT_TEST_IMAGE, "--worker-source", "image"]],
  ];
  for (const [name, extra] of runs) {
    const w = `${tmp.path}/${name}`;
    const { result: r, seen } = await watchingPods(
      kube,
      () =>
        runScript("submit.ts", kubeSubmitArgs(kube, "-s", SPEC, "-w", w, ...extra), {
          env: scriptEnv(),
          cwd: tmp.path,
          timeoutMs: 300_000,
        }),
    );
    assert.equal(r.code, 0, `${name}:\n${r.stdout}\n${r.stderr}`);
    await assertSameBuilds(`${w}/builds`, `${tmp.path}/local/builds`, Deno.build.arch);
    // The pods ran on their own addresses, with fsGroup 1000 for the non-root image user.
    const workers = seen.filter((p) => p.metadata.labels?.[RUN_ID_LABEL] && p.status?.podIP);
    assert.ok(workers.length > 0, `${name}: no worker pod seen`);
    for (const p of workers) {
      assert.notEqual(p.status?.podIP, "127.0.0.1");
      assert.equal(p.spec?.securityContext?.fsGroup, 1000);
      assert.equal(p.spec?.securityContext?.runAsUser, undefined, "the image's own user");
    }
    const inits = workers[0].spec?.initContainers?.map((c: KObj) => c.name);
    const main = workers[0].spec?.containers?.[0];
    if (name === "stock") {
      assert.equal(inits[0], "deno");
      assert.deepEqual(main.command.slice(0, 1), ["/gangplank/bin/deno"]);
      assert.match(r.stdout + r.stderr, /deno 2\.\d+\.\d+ and worker [0-9a-f]{12} ready/);
    } else {
      assert.ok(!inits.includes("deno"), `${inits}`);
      assert.equal(main.command[0], "/usr/local/bin/deno");
    }
    // Nothing left behind: pods, Secrets and the bundle ConfigMap are gone.
    for (const res of ["pods", "secrets", "configmaps"]) {
      assert.deepEqual(
        kube.list(res, { labelSelector: RUN_ID_LABEL }).map((o) => o.metadata.name),
        [],
      );
    }
  }
});

Deno.test({
  name: "kube images: a tampered bundle never runs; an image without the worker is a StartError",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage({ stock: true });
  await ensureDenoImage();
  const ONE = `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: only
    execution_order: 1
    commands: ["echo ran-the-stage > /srv/ran"]
`;
  await using tmp = await tempDir("gp-kube-tamper-");
  await Deno.writeTextFile(`${tmp.path}/one.yaml`, ONE);
  const runOne = (kube: KubeApi, dir: string, ...extra: string[]) =>
    runScript(
      "submit.ts",
      kubeSubmitArgs(
        kube,
        ...["-s", `${tmp.path}/one.yaml`, "-w", `${tmp.path}/${dir}`],
        ...["--image", STOCK_TEST_IMAGE, ...extra],
      ),
      { env: scriptEnv(), cwd: tmp.path, timeoutMs: 180_000 },
    );
  {
    // Someone rewrites the bundle after the coordinator made the ConfigMap.
    await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
    const evil = Buffer.from(gzipSync(new TextEncoder().encode("console.log('pwned')")))
      .toString("base64");
    const unsub = kube.store.subscribe((ev) => {
      if (ev.resource !== "configmaps" || ev.type !== "ADDED") return;
      const { namespace, name } = ev.object.metadata;
      queueMicrotask(() =>
        kube.store.mutate("configmaps", namespace, name, (o) => {
          o.binaryData["work.js.gz"] = evil;
        })
      );
    });
    const r = await runOne(kube, "t");
    unsub();
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(
      r.stdout + r.stderr,
      /worker bundle: sha256 (?:[0-9a-f]{64}|not a valid gzip), expected [0-9a-f]{64}/,
    );
    assert.doesNotMatch(r.stdout, /pwned/);
  }
  {
    // The stock image with --worker-source image: the kubelet cannot start the worker.
    await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
    const r = await runOne(kube, "n", "--worker-source", "image");
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout + r.stderr, /StartError/);
    assert.match(r.stdout + r.stderr, /\/usr\/local\/bin\/deno/);
  }
});
