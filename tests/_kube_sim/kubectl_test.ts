/**
 * The real `kubectl` against the Kubernetes test API server: discovery, `get` with label
 * selectors (Table output), `logs -f` following a running pod to its end, `describe`,
 * `delete`. Skipped with a visible warning where kubectl is not installed.
 */

import assert from "node:assert/strict";
import { startKubeApiServer } from "./api_server.ts";
import { clients, shPod, waitPhase } from "./_client.ts";
import { tempDir, waitFor } from "../_helpers/mod.ts";
import { haveKubectl, kubectl as kubectlRun, parseTable } from "./kubectl.ts";

const ignore = !(await haveKubectl());
if (ignore) console.warn("kubectl not found on PATH: skipping tests/_kube_sim/kubectl_test.ts");
const skipNote = ignore ? " (SKIPPED: kubectl not installed)" : "";
const NS = "default";

Deno.test({
  name: `kubectl: get pods -l <selector> lists the selected pods with their status${skipNote}`,
  ignore,
  async fn() {
    await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
    const k = (...a: string[]) => kubectlRun(kube, a);
    const { core } = clients(kube);
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod("run1-worker-0", "echo ok", { labels: { run: "r1", stage: "s0" } }),
    });
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod("run1-worker-1", "exit 2", { labels: { run: "r1", stage: "s1" } }),
    });
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod("run2-worker-0", "sleep 30", { labels: { run: "r2" } }),
    });
    await waitPhase(kube, "run1-worker-0");
    await waitPhase(kube, "run1-worker-1");
    await waitPhase(kube, "run2-worker-0", ["Running"]);
    const r = await k("get", "pods", "-l", "run=r1");
    assert.equal(r.code, 0, r.stderr);
    const rows = parseTable(r.stdout);
    assert.deepEqual(Object.keys(rows[0]), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert.deepEqual(
      rows.map((x) => [x.NAME, x.READY, x.STATUS, x.RESTARTS]),
      [["run1-worker-0", "0/1", "Completed", "0"], ["run1-worker-1", "0/1", "Error", "0"]],
    );
    const all = parseTable(
      (await k("get", "pods", "-l", "run in (r1,r2)"))
        .stdout,
    );
    assert.deepEqual(all.map((x) => x.NAME), ["run1-worker-0", "run1-worker-1", "run2-worker-0"]);
    assert.equal(all[2].STATUS, "Running");
    assert.equal(all[2].READY, "1/1");
    const names = await k("get", "po", "-l", "stage", "-o", "name");
    assert.equal(names.stdout, "pod/run1-worker-0\npod/run1-worker-1\n");
    const js = await k("get", "pods", "-l", "run=r2", "-o", "json");
    const list = JSON.parse(js.stdout);
    assert.equal(list.items[0].status.phase, "Running");
    const desc = await k("describe", "pod", "run1-worker-1");
    assert.equal(desc.code, 0, desc.stderr);
    assert.match(desc.stdout, /Exit Code:\s+2/);
    const del = await k("delete", "pods", "-l", "run=r2", "--grace-period=1", "--timeout=20s");
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /pod "run2-worker-0" deleted/);
    await waitFor(() => kube.pods({ labelSelector: "run=r2" }).length === 0, {
      what: "r2 deleted",
    });
    const none = await k("get", "pods", "-l", "run=nope");
    assert.equal(none.code, 0);
    assert.match(none.stderr, /No resources found in default namespace/);
  },
});

Deno.test({
  name: `kubectl: logs -f follows a running worker's log to its end${skipNote}`,
  ignore,
  async fn() {
    await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
    const k = (...a: string[]) => kubectlRun(kube, a);
    const { core } = clients(kube);
    const script = "for i in 1 2 3 4 5 6; do echo step $i; sleep 0.2; done; echo err-line >&2; " +
      "printf 'last-no-newline'";
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod("worker", script, { labels: { run: "r1" } }),
    });
    await waitFor(() => kube.podLog(NS, "worker", "main")?.includes("step 1"), {
      what: "worker running",
    });
    const r = await k("logs", "-f", "worker");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "step 1\nstep 2\nstep 3\nstep 4\nstep 5\nstep 6\nerr-line\nlast-no-newline",
    );
    const pod = await waitPhase(kube, "worker");
    assert.equal(pod.status?.phase, "Succeeded");
    const tail = await k("logs", "worker", "--tail=2");
    assert.equal(tail.stdout, "err-line\nlast-no-newline");
  },
});

Deno.test({
  name: `kubectl: create -f, wait, label, get events, delete --wait${skipNote}`,
  ignore,
  async fn() {
    await using kube = await startKubeApiServer({ kubelet: { mode: "process" } });
    const k = (...a: string[]) => kubectlRun(kube, a);
    await using dir = await tempDir("kubectl-cache-");
    const file = `${dir.path}/pod.yaml`;
    await Deno.writeTextFile(
      file,
      [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  name: from-yaml",
        "  labels: {run: r9}",
        "spec:",
        "  restartPolicy: Never",
        "  containers:",
        "  - name: main",
        "    image: kube-sim/none:latest",
        "    command: [sh, -c, 'echo from-yaml']",
        "",
      ].join("\n"),
    );

    const created = await k("create", "-f", file);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, "pod/from-yaml created\n");
    const waited = await k(
      "wait",
      "--for=jsonpath={.status.phase}=Succeeded",
      "pod/from-yaml",
      "--timeout=20s",
    );
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal((await k("label", "pod", "from-yaml", "extra=yes")).code, 0);
    assert.equal(kube.store.get("pods", NS, "from-yaml")?.metadata.labels?.extra, "yes");
    const ev = parseTable((await k("get", "events")).stdout);
    assert.ok(ev.some((e) => e.REASON === "Scheduled" && e.OBJECT === "pod/from-yaml"));
    assert.equal((await k("logs", "from-yaml")).stdout, "from-yaml\n");
    const del = await k("delete", "-f", file, "--timeout=20s");
    assert.equal(del.code, 0, del.stderr);
    assert.equal(kube.pods().length, 0);
  },
});
