/**
 * Hop mode against the test API server (podman kubelet, worker test image): the coordinator
 * pod's exit code is the result (Gangplank turned failures into 0), its log is streamed, the
 * JobSpec arrives as a 0600 file from a Secret (never in the pod spec), and pod + Secret are
 * deleted. The CLI path (`submit --remote-kubeconfig`) propagates the exit code.
 */
import assert from "node:assert/strict";
import { ROOT, runScript, tempDir } from "../_helpers/mod.ts";
import {
  DENO_TEST_IMAGE,
  ensureTestImage,
  podmanMissing,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { assertSameBuilds, scriptEnv } from "../e2e/_podman_helpers.ts";
import { ensureKubeImages } from "./_kube_run.ts";
import { type KObj, startKubeApiServer } from "../_kube_sim/api_server.ts";
import { KubeClient, runHop } from "../../lib/kube/mod.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/kube_backend/hop_test.ts: ${missing}`);

const MARK = `inline-registry-secret-${crypto.randomUUID()}`;
const JOBSPEC = `# ${MARK}\njob: { strict: true }\n`;

Deno.test({
  name: "hop: exit code, log, JobSpec as a 0600 file, nothing left",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  const client = KubeClient.connect({ target: { kind: "kubeconfig", path: kube.kubeconfigPath } });
  const pods: string[] = [];
  const snap = setInterval(() => pods.push(JSON.stringify(kube.pods())), 50);
  try {
    for (const code of [3, 0]) {
      const lines: string[] = [];
      const out = await runHop(client, {
        runId: `hop-${code}`,
        image: TEST_WORKER_IMAGE,
        serviceAccount: "default",
        args: ["--backend", "kube"],
        timeoutSeconds: 120,
        command: [
          "/bin/sh",
          "-c",
          `echo coordinator "$@"; stat -c %a "$2"; sha256sum < "$2" | cut -c1-64; exit ${code}`,
          "sh",
        ],
        jobspecYaml: JOBSPEC,
        onLine: (l) => lines.push(l),
        signal: AbortSignal.timeout(120_000),
      });
      assert.deepEqual(out, { exitCode: code }, lines.join("\n"));
      assert.equal(
        lines[0],
        "coordinator --spec /run/gangplank/jobspec/jobspec.yaml --backend kube",
      );
      assert.equal(lines[1], "600");
      const want = Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JOBSPEC))),
      ).map((b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(lines[2], want, "the JobSpec arrived intact");
      assert.equal(kube.pods().length, 0);
      assert.equal(kube.secrets().filter((s: KObj) => s.metadata.name.startsWith("gp-")).length, 0);
    }
  } finally {
    clearInterval(snap);
  }
  assert.ok(pods.some((p) => p.includes("gp-hop-3-hop")), "hop pod seen");
  assert.ok(pods.every((p) => !p.includes(MARK)), "JobSpec content never in a pod");
});

Deno.test({
  name: "hop CLI: submit --remote-kubeconfig follows the pod and exits with its code",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage();
  await using kube = await startKubeApiServer({
    kubelet: {
      mode: "podman",
      // The test image has no bundled coordinator: stand in for it, keeping its argv.
      rewrite: (l) =>
        l.container === "coordinator"
          ? { ...l, command: ["/bin/sh", "-c", 'echo hop-ran "$@"; exit 4', "sh"], args: l.args }
          : undefined,
    },
  });
  await using tmp = await tempDir("gp-hop-cli-");
  const r = await runScript("submit.ts", [
    "-s",
    `${ROOT}/examples/demo.jobspec.yaml`,
    "--remote-kubeconfig",
    kube.kubeconfigPath,
    "--image",
    TEST_WORKER_IMAGE,
    "--serviceaccount",
    "default",
  ], { env: scriptEnv(), cwd: tmp.path, timeoutMs: 120_000 });
  assert.equal(r.code, 4, `${r.stdout}\n${r.stderr}`);
  assert.match(
    r.stdout,
    /\[hop\] hop-ran --spec \/run\/gangplank\/jobspec\/jobspec.yaml --backend kube/,
  );
  assert.equal(kube.pods().length, 0);
  assert.equal(kube.secrets().filter((s: KObj) => s.metadata.name.startsWith("gp-")).length, 0);
  // Locally: a work dir holding the hop pod's log (the run itself happened in the cluster).
  const dirs = [...Deno.readDirSync(tmp.path)].map((e) => e.name);
  assert.equal(dirs.length, 1, `${dirs}`);
  assert.match(dirs[0], /^gangplank-run-\d{8}-\d{6}$/);
  assert.match(
    await Deno.readTextFile(`${tmp.path}/${dirs[0]}/logs/hop.log`),
    /^hop-ran --spec \/run\/gangplank\/jobspec\/jobspec.yaml --backend kube/m,
  );
});

Deno.test({
  name:
    "hop e2e: the demo JobSpec through a hop pod leaves the local builds/, logs and report in -w",
  ignore: missing !== undefined || Deno.uid() !== 0,
}, async () => {
  await ensureKubeImages();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  await using tmp = await tempDir("gp-hop-e2e-");
  const spec = `${ROOT}/examples/demo.jobspec.yaml`;
  const [h, l] = await Promise.all([
    runScript("submit.ts", [
      "-s",
      spec,
      "-w",
      `${tmp.path}/hop`,
      "--remote-kubeconfig",
      kube.kubeconfigPath,
      "--image",
      TEST_WORKER_IMAGE,
      "--serviceaccount",
      "default",
      "--deno-image",
      DENO_TEST_IMAGE,
      "--report",
      `${tmp.path}/hop-report.json`,
    ], { env: scriptEnv(), cwd: tmp.path, timeoutMs: 300_000 }),
    runScript("submit.ts", ["-s", spec, "-w", `${tmp.path}/local`], {
      env: scriptEnv(),
      cwd: tmp.path,
      timeoutMs: 300_000,
    }),
  ]);
  assert.equal(h.code, 0, `hop:\n${h.stdout}\n${h.stderr}`);
  assert.equal(l.code, 0, `local:\n${l.stdout}\n${l.stderr}`);
  const report = JSON.parse(await Deno.readTextFile(`${tmp.path}/hop/report.json`));
  assert.equal(report.exitCode, 0);
  assert.equal(report.backend, "kube");
  await assertSameBuilds(`${tmp.path}/hop/builds`, `${tmp.path}/local/builds`, report.arch);
  // Logs: the hop pod's own, and every stage's, as a local run leaves them.
  const logs = [...Deno.readDirSync(`${tmp.path}/hop/logs`)].map((e) => e.name).sort();
  const localLogs = [...Deno.readDirSync(`${tmp.path}/local/logs`)].map((e) => e.name).sort();
  assert.deepEqual(logs.filter((n) => n !== "hop.log"), localLogs);
  assert.match(await Deno.readTextFile(`${tmp.path}/hop/logs/hop.log`), /gangplank: run /);
  // The summary came through the stream; the results marker did not.
  assert.doesNotMatch(h.stdout, /gangplank-hop: results ready/);
  // --report given locally is written from the fetched report.
  assert.equal(JSON.parse(await Deno.readTextFile(`${tmp.path}/hop-report.json`)).exitCode, 0);
  // Nothing left in the cluster.
  assert.deepEqual(kube.pods().map((p) => p.metadata.name), []);
  assert.deepEqual(
    [...kube.secrets(), ...kube.list("configmaps")].filter((o: KObj) =>
      o.metadata.name.startsWith("gp-")
    ).map((o: KObj) => o.metadata.name),
    [],
  );
});
