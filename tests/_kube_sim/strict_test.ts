/**
 * The simulated cluster is as strict as a real one where gangplank was bitten: a pod has its
 * own address and loopback (dialing 127.0.0.1 for a server on the host fails, the node address
 * works), a non-root container cannot read a 0600 secret file unless the pod's fsGroup is set,
 * and an image without the command fails to start the way a real kubelet reports it.
 */

import assert from "node:assert/strict";
import * as net from "node:net";
import { startKubeApiServer } from "./api_server.ts";
import { clients, followLog, waitPhase } from "./_client.ts";
import { BUSYBOX_TEST_IMAGE, ensureTestImage, podmanMissing } from "../_helpers/podman.ts";

const missing = podmanMissing() ??
  (Deno.uid() === 0 ? undefined : "not root: pods share the host network");
if (missing) console.warn(`SKIP tests/_kube_sim/strict_test.ts: ${missing}`);
const NS = "default";

function pod(name: string, script: string, extra: Record<string, unknown> = {}) {
  return {
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      ...extra,
      containers: [{
        name: "main",
        image: BUSYBOX_TEST_IMAGE,
        command: ["/bin/sh", "-c", script],
        volumeMounts: [{ name: "creds", mountPath: "/creds", readOnly: true }],
        ...(extra.container as object ?? {}),
      }],
      volumes: [{ name: "creds", secret: { secretName: "creds", defaultMode: 0o600 } }],
    },
  };
}

Deno.test({
  name: "kube-sim strict: own pod address, no host loopback; fsGroup; missing command",
  ignore: !!missing,
  async fn() {
    await ensureTestImage({ minimal: true, signal: AbortSignal.timeout(120_000) });
    await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
    assert.notEqual(kube.nodeIP, "127.0.0.1");
    const { kc, core } = clients(kube);
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "creds" }, stringData: { key: "s3cr3t" } },
    });
    // A server on the host: on loopback only, and on the node address.
    const hits: string[] = [];
    const serve = (host: string) =>
      new Promise<net.Server>((resolve) => {
        const s = net.createServer((c) => {
          c.on("error", () => {});
          hits.push(host);
          c.end(`hello-from-${host}\n`);
        });
        s.listen(0, host, () => resolve(s));
      });
    const lo = await serve("127.0.0.1");
    const node = await serve(kube.nodeIP);
    try {
      const loPort = (lo.address() as net.AddressInfo).port;
      const nodePort = (node.address() as net.AddressInfo).port;
      const script = [
        `echo "ip=$(ip -4 -o addr show eth0 | awk '{print $4}')"`,
        `nc -w 2 127.0.0.1 ${loPort} </dev/null && echo lo=reached || echo lo=refused`,
        `sleep 1 | nc -w 2 ${kube.nodeIP} ${nodePort} | sed 's/^/node=/'`,
        `echo "uid=$(id -u) groups=$(id -G)"`,
        `cat /creds/key >/dev/null 2>&1 && echo secret=readable || echo secret=denied`,
      ].join("\n");
      const nonRoot = { container: { securityContext: { runAsUser: 1000, runAsGroup: 1000 } } };
      for (
        const [name, extra] of [
          ["plain", nonRoot],
          ["fsgroup", { ...nonRoot, securityContext: { fsGroup: 2000 } }],
        ] as const
      ) {
        await core.createNamespacedPod({ namespace: NS, body: pod(name, script, extra) });
      }
      const logs: Record<string, string> = {};
      for (const name of ["plain", "fsgroup"]) {
        await waitPhase(kube, name, ["Running", "Succeeded", "Failed"], 60_000);
        logs[name] = await followLog(kc, NS, name, "main", { timeoutMs: 60_000 });
        await waitPhase(kube, name, ["Succeeded", "Failed"], 30_000);
      }
      const ips = kube.pods().map((p) => p.status?.podIP);
      assert.equal(new Set(ips).size, 2, `distinct pod IPs: ${ips}`);
      for (const [name, log] of Object.entries(logs)) {
        const p = kube.pods().find((x) => x.metadata.name === name)!;
        assert.match(log, new RegExp(`^ip=${p.status?.podIP.replaceAll(".", "\\.")}/24$`, "m"));
        assert.notEqual(p.status?.podIP, "127.0.0.1");
        assert.equal(p.status?.hostIP, kube.nodeIP);
        assert.match(log, /^lo=refused$/m, log);
        assert.match(
          log,
          new RegExp(`^node=hello-from-${kube.nodeIP.replaceAll(".", "\\.")}$`, "m"),
        );
      }
      assert.deepEqual(hits.filter((h) => h === "127.0.0.1"), [], "a pod reached host loopback");
      assert.match(logs.plain, /^uid=1000 groups=1000$/m);
      assert.match(logs.plain, /^secret=denied$/m, "0600 secret readable without fsGroup");
      assert.match(logs.fsgroup, /^uid=1000 groups=1000 2000$/m);
      assert.match(logs.fsgroup, /^secret=readable$/m, "fsGroup did not open the secret");
    } finally {
      lo.close();
      node.close();
    }
    // An image without the command: StartError, exit 128, as containerd reports it.
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "noexec" },
        spec: {
          restartPolicy: "Never",
          containers: [{
            name: "worker",
            image: BUSYBOX_TEST_IMAGE,
            command: ["/usr/local/bin/deno", "run", "/usr/lib/gangplank/work.js"],
          }],
        },
      },
    });
    const failed = await waitPhase(kube, "noexec", ["Succeeded", "Failed"], 60_000);
    assert.equal(failed.status?.phase, "Failed");
    const t = failed.status?.containerStatuses?.[0].state?.terminated;
    assert.equal(t?.reason, "StartError");
    assert.equal(t?.exitCode, 128);
    assert.match(
      t?.message ?? "",
      /unable to start container process: exec: .*\/usr\/local\/bin\/deno/,
    );
  },
});
