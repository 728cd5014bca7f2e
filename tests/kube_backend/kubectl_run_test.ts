/**
 * End to end, kube backend seen through the REAL `kubectl`: while `submit --backend kube` runs a
 * one-stage JobSpec against the Kubernetes test API server (podman kubelet), `kubectl get pods -l
 * <run-id label>` lists the run's worker pod Running, and `kubectl logs -f <pod>` follows the
 * worker's log (it shows the first line while the container still produces the rest) until the
 * container ends, holding the stage's lines from first to last, as the coordinator's
 * `<workDir>/logs/<stage>.log` does. Then the run exits 0 leaving no pod or Secret.
 *
 * Skipped with a visible warning where kubectl or podman is missing.
 */
import { ensureKubeImages, kubeSubmitArgs } from "./_kube_run.ts";
import assert from "node:assert/strict";
import { tempDir, waitFor } from "../_helpers/mod.ts";
import { podmanMissing } from "../_helpers/podman.ts";
import { scriptEnv, spawnScript, within } from "../e2e/_podman_helpers.ts";
import { type KubeApi, startKubeApiServer } from "../_kube_sim/api_server.ts";
import { haveKubectl, kubectl, parseTable } from "../_kube_sim/kubectl.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/mod.ts";

const noKubectl = !(await haveKubectl());
const noPodman = podmanMissing();
const skip = noKubectl ? "kubectl not installed" : noPodman;
if (skip) console.warn(`SKIP tests/kube_backend/kubectl_run_test.ts: ${skip}`);

const STAGE = "ticker";
const LINES = 40;
const expected = Array.from({ length: LINES }, (_, i) => `tick-${String(i + 1).padStart(2, "0")}`);

const JOB = `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: ${STAGE}
    execution_order: 1
    commands:
      - "i=1; while [ $i -le ${LINES} ]; do printf 'tick-%02d\\\\n' $i; i=$((i+1)); sleep 0.25; done"
`;

const ticks = (text: string) => text.split("\n").filter((l) => /^tick-\d\d$/.test(l.trim()));

/** `kubectl logs -f` as a child whose stdout is readable while it runs; killed by PID. */
function followLogs(kube: KubeApi, pod: string, cache: string) {
  const child = new Deno.Command("kubectl", {
    args: ["--kubeconfig", kube.kubeconfigPath, "--cache-dir", cache, "logs", "-f", pod],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const dec = new TextDecoder();
  const pump = async (r: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    for await (const c of r) add(dec.decode(c, { stream: true }));
  };
  const pumps = Promise.all([
    pump(child.stdout, (s) => out += s),
    pump(child.stderr, (s) => err += s),
  ]);
  const done = (async () => {
    const st = await child.status;
    await pumps;
    return { code: st.code, stdout: out, stderr: err };
  })();
  return { child, stdout: () => out, done };
}

Deno.test({
  name: `kube e2e: real kubectl lists the run's pods and follows a worker's log${
    skip ? ` (SKIPPED: ${skip})` : ""
  }`,
  ignore: skip !== undefined,
}, async () => {
  await ensureKubeImages();
  await using tmp = await tempDir("gp-e2e-kubectl-");
  await Deno.writeTextFile(`${tmp.path}/job.yaml`, JOB);
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  const work = `${tmp.path}/w`;
  const s = spawnScript(
    "submit.ts",
    kubeSubmitArgs(kube, "-s", `${tmp.path}/job.yaml`, "-w", work),
    scriptEnv(),
    tmp.path,
  );
  let follower: ReturnType<typeof followLogs> | undefined;
  try {
    // The run's id, from the label the backend puts on its worker pod.
    const runId = await waitFor(
      () => kube.pods({ labelSelector: RUN_ID_LABEL })[0]?.metadata.labels?.[RUN_ID_LABEL],
      { timeoutMs: 60_000, what: "the run's worker pod" },
    );
    const selector = `${RUN_ID_LABEL}=${runId}`;

    // kubectl get pods -l <run-id label>: the worker pod, Running.
    const rows = await waitFor(async () => {
      const r = await kubectl(kube, ["get", "pods", "-l", selector], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, r.stderr);
      const t = parseTable(r.stdout);
      return t.length > 0 && t.every((x) => x.STATUS === "Running") ? t : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200, what: "kubectl to list the worker pod Running" });
    const apiPods = kube.pods({ labelSelector: selector }).map((p) => p.metadata.name).sort();
    assert.deepEqual(rows.map((x) => x.NAME).sort(), apiPods);
    assert.equal(rows.length, 1, "one stage, one worker pod");
    assert.equal(rows[0].READY, "1/1");
    const pod = rows[0].NAME;

    // kubectl logs -f <pod>: follows the worker until its container ends.
    follower = followLogs(kube, pod, `${tmp.path}/kubectl-cache`);
    const f = follower;
    await waitFor(() => ticks(f.stdout()).length > 0, {
      timeoutMs: 30_000,
      what: "kubectl logs -f to show the stage's first line",
    });
    const served = kube.podLog("default", pod, "worker") ?? "";
    assert.ok(
      !served.includes(expected[LINES - 1]),
      "kubectl showed the first line while the worker was still running (it follows)",
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const logs = await Promise.race([
      f.done,
      new Promise<never>((_, rej) => {
        timer = setTimeout(
          () => rej(new Error(`kubectl logs -f did not end:\n${f.stdout()}`)),
          60_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.equal(logs.code, 0, logs.stderr);
    assert.deepEqual(ticks(logs.stdout), expected);
    // By then the container has ended: kubectl returned because the stream did.
    const status = kube.store.get("pods", "default", pod)?.status?.containerStatuses?.[0];
    assert.ok(status === undefined || status.state?.terminated, JSON.stringify(status));

    const r = await within(s, 90_000, "submit --backend kube");
    assert.equal(r.code, 0, r.out);

    // The coordinator's stage log holds the same lines, unprefixed; the console, prefixed.
    const stageLog = await Deno.readTextFile(`${work}/logs/${STAGE}.log`);
    assert.deepEqual(ticks(stageLog), expected);
    for (const l of logs.stdout.split("\n").filter((x) => x.trim())) {
      assert.ok(stageLog.split("\n").includes(l), `kubectl's line in the stage log: ${l}`);
    }
    const consoleTicks = r.out.split("\n").flatMap((l) => {
      const m = l.match(new RegExp(`^\\[${STAGE} \\+[0-9.ms]+\\] (tick-\\d\\d)$`));
      return m ? [m[1]] : [];
    });
    assert.deepEqual(consoleTicks, expected);

    // Nothing left (through the API): no pod, no Secret of the run.
    assert.deepEqual(kube.pods({ labelSelector: RUN_ID_LABEL }), []);
    assert.deepEqual(kube.secrets({ labelSelector: RUN_ID_LABEL }), []);
  } finally {
    for (const c of [follower?.child, s.child]) {
      try {
        c?.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await follower?.done;
    await s.done;
  }
});
