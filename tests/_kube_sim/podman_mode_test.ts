/**
 * The simulated kubelet in podman mode: a pod whose image is in local podman storage runs as
 * podman containers (host network, bind-mounted volumes, secret env outside argv), with exit
 * codes, logs and deletion. Skipped with a visible warning where podman is not usable.
 */

import assert from "node:assert/strict";
import { startKubeApiServer } from "./api_server.ts";
import { clients, followLog, waitPhase } from "./_client.ts";
import { waitFor } from "../_helpers/mod.ts";
import { BUSYBOX_TEST_IMAGE, ensureTestImage, podmanMissing } from "../_helpers/podman.ts";
import { processesMatching } from "../_helpers/procs.ts";

const missing = podmanMissing();
if (missing) console.warn(missing);
const skipNote = missing ? ` (SKIPPED: ${missing})` : "";
const NS = "default";

async function podmanContainers(prefix: string): Promise<string[]> {
  const o = await new Deno.Command("podman", {
    args: ["ps", "-a", "--format", "{{.Names}}", "--filter", `name=${prefix}`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(o.stdout).split("\n").filter(Boolean);
}

/** Whether any process's argv contains `needle`. */
function inAnyArgv(needle: string): Promise<boolean> {
  return Promise.resolve(processesMatching((cmd) => cmd.includes(needle)).length > 0);
}

Deno.test({
  name: `kube podman mode: volumes, secret env outside argv, exit code, logs, cleanup${skipNote}`,
  ignore: !!missing,
  async fn() {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 120_000);
    try {
      await ensureTestImage({ minimal: true, signal: ac.signal });
    } finally {
      clearTimeout(timer);
    }
    await using kube = await startKubeApiServer({ kubelet: { mode: "auto" } });
    const { kc, core } = clients(kube);
    const secret = `pm-${crypto.randomUUID()}`;
    await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: "creds" },
        stringData: { key: secret, pem: "-----BEGIN X-----\nabc\n-----END X-----\n" },
      },
    });
    const script = [
      `echo "env=$S"`,
      `echo "file=$(cat /creds/key)"`,
      `echo "pem-lines=$(printf '%s' "$PEM" | wc -l) last=$(printf '%s' "$PEM" | tail -n 1)"`,
      `echo "mode=$(stat -c %a /creds/key)"`,
      `echo "shared=$(cat /srv/from-init)"`,
      `echo "pwd=$(pwd)"`,
      `echo "ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"`,
      `echo "api=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"`,
      `sleep 1`,
      `exit 3`,
    ].join("; ");
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "pm" },
        spec: {
          restartPolicy: "Never",
          volumes: [
            { name: "srv", emptyDir: {} },
            { name: "creds", secret: { secretName: "creds", defaultMode: 0o600 } },
          ],
          initContainers: [{
            name: "init",
            image: BUSYBOX_TEST_IMAGE,
            command: ["sh", "-c", "echo from-init > /srv/from-init"],
            volumeMounts: [{ name: "srv", mountPath: "/srv" }],
          }],
          containers: [{
            name: "main",
            image: BUSYBOX_TEST_IMAGE,
            command: ["sh", "-c"],
            args: [script],
            workingDir: "/srv",
            env: [
              { name: "S", valueFrom: { secretKeyRef: { name: "creds", key: "key" } } },
              { name: "PEM", valueFrom: { secretKeyRef: { name: "creds", key: "pem" } } },
            ],
            volumeMounts: [
              { name: "srv", mountPath: "/srv" },
              { name: "creds", mountPath: "/creds", readOnly: true },
            ],
          }],
        },
      },
    });
    const running = await waitPhase(kube, "pm", ["Running", "Failed", "Succeeded"], 60_000);
    assert.match(running.status?.containerStatuses?.[0].containerID ?? "", /^podman:\/\//);
    assert.equal(await inAnyArgv(secret), false, "secret value visible in some process argv");
    const log = await followLog(kc, NS, "pm", "main", { timeoutMs: 60_000 });
    const pod = await waitPhase(kube, "pm", ["Succeeded", "Failed"], 30_000);
    assert.equal(pod.status?.phase, "Failed", log);
    assert.equal(pod.status?.containerStatuses?.[0].state?.terminated?.exitCode, 3);
    assert.match(log, new RegExp(`^env=${secret}$`, "m"));
    assert.match(log, new RegExp(`^file=${secret}$`, "m"));
    assert.match(log, /^mode=600$/m);
    assert.match(log, /^pem-lines=3 last=-----END X-----$/m, `multi-line secret env: ${log}`);
    assert.match(log, /^shared=from-init$/m);
    assert.match(log, /^pwd=\/srv$/m);
    assert.match(log, /^ns=default$/m);
    assert.match(log, new RegExp(`^api=${kube.nodeIP}:${new URL(kube.url).port}$`, "m"));
    await core.deleteNamespacedPod({ namespace: NS, name: "pm" });
    await waitFor(() => kube.pods().length === 0, { what: "pod deleted" });
    assert.deepEqual(await podmanContainers("kube-sim-pm-"), []);
  },
});

Deno.test({
  name: `kube podman mode: deleting a running pod stops and removes its container${skipNote}`,
  ignore: !!missing,
  async fn() {
    await ensureTestImage({ minimal: true });
    await using kube = await startKubeApiServer({ kubelet: { mode: "podman", maxGraceMs: 2000 } });
    const { core } = clients(kube);
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "pmlong" },
        spec: {
          restartPolicy: "Never",
          containers: [{
            name: "main",
            image: BUSYBOX_TEST_IMAGE,
            command: ["sh", "-c", "echo up; sleep 60"],
          }],
        },
      },
    });
    await waitFor(() => kube.podLog(NS, "pmlong", "main")?.includes("up"), {
      what: "container up",
      timeoutMs: 60_000,
    });
    const t0 = Date.now();
    await core.deleteNamespacedPod({ namespace: NS, name: "pmlong", gracePeriodSeconds: 30 });
    await waitFor(() => kube.pods().length === 0, { what: "pod deleted", timeoutMs: 30_000 });
    assert.ok(Date.now() - t0 < 20_000, "grace period bounded by maxGraceMs");
    await waitFor(async () => (await podmanContainers("kube-sim-pmlong-")).length === 0, {
      what: "container removed",
      timeoutMs: 20_000,
    });
  },
});

Deno.test({
  name:
    `kube podman mode: an image missing from local storage → ErrImagePull/ImagePullBackOff${skipNote}`,
  ignore: !!missing,
  async fn() {
    await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
    const { core } = clients(kube);
    const image = `localhost/kube-sim-missing-${crypto.randomUUID().slice(0, 8)}:1`;
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "noimg" },
        spec: { restartPolicy: "Never", containers: [{ name: "main", image, command: ["true"] }] },
      },
    });
    const seen = new Set<string>();
    await waitFor(() => {
      const w = kube.store.get("pods", NS, "noimg")?.status?.containerStatuses?.[0]?.state?.waiting;
      if (w?.reason) seen.add(`${w.reason}: ${w.message}`);
      return [...seen].some((x) => x.startsWith("ImagePullBackOff"));
    }, { what: "ImagePullBackOff", intervalMs: 20 });
    assert.ok(
      [...seen].some((x) =>
        x.startsWith("ErrImagePull") && x.includes("not in local podman storage")
      ),
      [...seen].join("\n"),
    );
    assert.equal(kube.store.get("pods", NS, "noimg")?.status?.phase, "Pending");
  },
});
