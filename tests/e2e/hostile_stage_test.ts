/**
 * A hostile stage, on every backend (local, podman, kube through the test API server): it
 * reads every environment variable and file it can reach (/proc/<pid>/environ of its worker,
 * /run/secrets/*, the worker's secret files, its home, srv, temp and stage dirs), then tries
 * to write outside its outputs with every key pair it found, and with none. The relay must
 * refuse all of it, during the stage and after it ended; nothing lands in the work dir.
 *
 * The relay address is handed to the stage by this test (a control server), as if the
 * attacker knew it. A later stage keeps the run (and its relay) alive until this test has
 * retried the stage's loot after the stage ended.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { ArtifactStore, startRelay } from "../../lib/relay/mod.ts";
import { ROOT, tempDir, waitFor } from "../_helpers/mod.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { startKubeApiServer } from "../_kube_sim/api_server.ts";
import { kubeSubmitArgs } from "../kube_backend/_kube_run.ts";
import { scriptEnv, spawnScript, within } from "./_podman_helpers.ts";

const HOSTILE = await Deno.readTextFile(`${ROOT}/tests/e2e/_hostile_stage.ts`);
const DENO = `"$(command -v deno || echo /usr/local/bin/deno)"`;

interface Report {
  ancestors: { pid: number; cmd: string; environ: string }[];
  runSecrets: { name: string; size: number }[];
  fileVars: string[];
  filesRead: number;
  procsRead: number;
  accessKeys: number;
  secretKeys: number;
  validPairs: string[];
  attempts: { what: string; who: string; status: number }[];
  loot: { ak: string; sk: string }[];
}

/** The test's side: hands out the relay address, takes the report, releases the waiter. */
function controlServer(hostname = "127.0.0.1") {
  const state = { target: "", report: undefined as Report | undefined, proceed: false };
  const server = Deno.serve({ hostname, port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/target") {
      return state.target ? new Response(state.target) : new Response("", { status: 404 });
    }
    if (path === "/report" && req.method === "POST") {
      state.report = await req.json();
      return new Response("ok");
    }
    if (path === "/proceed") return new Response("", { status: state.proceed ? 200 : 404 });
    return new Response("", { status: 404 });
  });
  return {
    state,
    addr: `${hostname}:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** The JobSpec: the hostile stage, then a stage that waits for the test's go. */
function jobspec(): string {
  const hostile = `cat > "\${TMPDIR:-/tmp}/hostile.ts" <<'HOSTILE_EOF'\n${HOSTILE}\nHOSTILE_EOF\n` +
    `${DENO} run -A --no-config "\${TMPDIR:-/tmp}/hostile.ts"`;
  const wait = `${DENO} eval --no-config 'const c = Deno.env.get("GP_HOSTILE_CONTROL"); ` +
    `for (let i = 0; i < 900; i++) { try { const r = await fetch("http://" + c + "/proceed"); ` +
    `await r.body?.cancel(); if (r.ok) Deno.exit(0); } catch { /* not yet */ } ` +
    `await new Promise((r) => setTimeout(r, 200)); } Deno.exit(1)'`;
  return stringify({
    job: { strict: true },
    recipe: {},
    minio: { bucket: "builder" },
    stages: [
      { id: "hostile", execution_order: 1, commands: [hostile] },
      { id: "after", execution_order: 2, commands: [wait] },
    ],
  });
}

const refused = (e: unknown) => {
  const c = (e as { code?: string }).code;
  return c === "InvalidAccessKeyId" || c === "AccessDenied" || c === "SignatureDoesNotMatch";
};

/**
 * Runs `script args` (a coordinator) with the hostile JobSpec and checks what every backend
 * must hold; returns the stage's report for backend-specific checks.
 */
async function hostileRun(
  script: string,
  args: (spec: string, work: string) => string[],
  env: Record<string, string>,
  /** Where the workers reach this test (a Kubernetes pod: the node address). */
  controlHost = "127.0.0.1",
): Promise<Report> {
  await using tmp = await tempDir("gp-hostile-");
  await using ctl = controlServer(controlHost);
  const spec = `${tmp.path}/hostile.yaml`;
  await Deno.writeTextFile(spec, jobspec());
  const work = `${tmp.path}/w`;
  const run = spawnScript(
    script,
    [
      ...args(spec, work),
      "-e",
      `GP_HOSTILE_CONTROL=${ctl.addr}`,
    ],
    env,
    tmp.path,
  );
  const withOutput = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- run output ---\n${run.output()}`);
    }
  };
  try {
    const relay = await waitFor(() => /relay listening on (\S+):(\d+)/.exec(run.output()), {
      timeoutMs: 120_000,
      what: `the relay's address\n${run.output()}`,
    });
    const host = relay[1] === "0.0.0.0" ? "127.0.0.1" : relay[1];
    ctl.state.target = `${host}:${relay[2]}`;
    const report = await withOutput(waitFor(() => ctl.state.report, {
      timeoutMs: 150_000,
      what: "the hostile stage's report",
    }));
    // The hostile stage has ended (its credential is revoked); the relay still runs.
    await waitFor(() => /\[hostile[^\]]*\] gangplank: stage \w+/.test(run.output()), {
      timeoutMs: 60_000,
      what: `the hostile stage's end\n${run.output()}`,
    });
    for (const pair of report.loot) {
      await using store = ArtifactStore.fromConfig({
        host,
        port: Number(relay[2]),
        accesskey: pair.ak,
        secretkey: pair.sk,
        region: "us-east-1",
        secure: false,
        external_server: true,
      }, { retry: { attempts: 1 } });
      await assert.rejects(store.putText("builder", "pwned-after-stage.txt", "x"), refused);
    }
    ctl.state.proceed = true;
    const r = await within(run, 120_000, "the run");
    assert.equal(r.code, 0, r.out);

    // Every attempt, with every key found and with none, was refused.
    assert.ok(report.attempts.length >= 5, JSON.stringify(report));
    for (const a of report.attempts) {
      assert.equal(a.status, 403, `${a.what} as ${a.who}: ${a.status}`);
    }
    // ... and nothing landed anywhere in the work dir.
    for (
      const p of [
        "builds/pwned-by-stage.txt",
        "builds/pwned-after-stage.txt",
        "logs/pwned-by-stage.txt",
        "pwnedbucket",
        "builds/builds.json",
      ]
    ) {
      await assert.rejects(Deno.lstat(`${work}/${p}`), Deno.errors.NotFound, p);
    }
    // The stage looked: its own env, the processes, files.
    assert.ok(report.procsRead > 0 && report.filesRead > 0, JSON.stringify(report));
    // No secret file variable reached the stage's environment.
    assert.deepEqual(report.fileVars.filter((v) => v.startsWith("COSA_")), []);
    return report;
  } finally {
    try {
      run.child.kill("SIGKILL");
    } catch { /* ended */ }
    await run.done;
  }
}

Deno.test("hostile stage script: finds a planted key and writes with it (the probe works)", async () => {
  // Without this, a refused attack could be a broken attacker.
  await using tmp = await tempDir("gp-hostile-probe-");
  await Deno.mkdir(`${tmp.path}/srv/builds`, { recursive: true });
  await using relay = await startRelay({
    root: `${tmp.path}/srv`,
    bucketDirs: { builder: "builds" },
  });
  await using ctl = controlServer();
  ctl.state.target = `127.0.0.1:${relay.port}`;
  await Deno.mkdir(`${tmp.path}/home`);
  await Deno.writeTextFile(
    `${tmp.path}/home/leaked.json`,
    JSON.stringify(relay.config()),
  );
  await Deno.writeTextFile(`${tmp.path}/hostile.ts`, HOSTILE);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", `${tmp.path}/hostile.ts`],
    cwd: `${tmp.path}/home`,
    env: { GP_HOSTILE_CONTROL: ctl.addr, HOME: `${tmp.path}/home`, TMPDIR: tmp.path },
    clearEnv: true,
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const report = ctl.state.report!;
  assert.deepEqual(report.validPairs, [relay.credentials.accessKey]);
  assert.ok(report.attempts.some((a) => a.who !== "anonymous" && a.status === 200));
  assert.equal(await Deno.readTextFile(`${tmp.path}/srv/builds/pwned-by-stage.txt`), "pwned");
});

Deno.test({
  name: "hostile stage, local backend: finds no key, every write refused, during and after",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const report = await hostileRun(
    "submit.ts",
    (spec, work) => ["-s", spec, "-w", work, "--arch", "x86_64"],
    scriptEnv(),
  );
  // The key reached the worker in a file it removed before the stage ran; its environ holds
  // only the file's name.
  assert.deepEqual(report.validPairs, [], JSON.stringify(report));
});

const noPodman = podmanMissing();

Deno.test({
  name: "hostile stage, podman backend: worker environ closed, /run/secrets emptied, all refused",
  ignore: noPodman !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await ensureTestImage();
  await using svc = await startPodmanService();
  const report = await hostileRun(
    "podman_run.ts",
    (spec, work) => [
      "-s",
      spec,
      "-w",
      work,
      "--remote",
      `unix://${svc.socketPath}`,
      "-i",
      TEST_WORKER_IMAGE,
    ],
    scriptEnv(),
  );
  assert.deepEqual(report.validPairs, [], JSON.stringify(report));
  const worker = report.ancestors.find((a) => a.cmd.includes("work.js"));
  assert.ok(worker, JSON.stringify(report.ancestors));
  assert.equal(worker.environ, "denied", "the worker is non-dumpable");
  assert.ok(report.runSecrets.length > 0, "the podman secret file is there");
  for (const s of report.runSecrets) {
    assert.equal(s.size, 0, `${s.name} was emptied: ${JSON.stringify(report, null, 1)}`);
  }
});

Deno.test({
  name: "hostile stage, kube backend (test API server): no key in env or files, all refused",
  ignore: noPodman !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await ensureTestImage();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  const report = await hostileRun(
    "submit.ts",
    (spec, work) => kubeSubmitArgs(kube, "-s", spec, "-w", work),
    scriptEnv(),
    kube.nodeIP,
  );
  assert.deepEqual(report.validPairs, [], JSON.stringify(report));
  const worker = report.ancestors.find((a) => a.cmd.includes("work.js"));
  assert.ok(worker, JSON.stringify(report.ancestors));
  assert.equal(worker.environ, "denied", "the worker is non-dumpable");
});
