/**
 * WorkSpecs of any size: a JobSpec over 200 KiB (a stage writing a large heredoc) cannot travel
 * in `COSA_WORK_POD_JSON` (Linux caps one environment string at 128 KiB: `argument list too
 * long`). It travels as part files instead, on the local, podman and kube backends alike; the
 * dry run says so; the stage's output proves every byte arrived.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ENV_WORK_POD_JSON_PARTS,
  isWorkSpecEnvName,
  receiveWorkSpec,
  WORKSPEC_ENV_MAX,
  workSpecEnv,
} from "../../lib/workspec/mod.ts";
import { runScript, tempDir } from "../_helpers/mod.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { startKubeApiServer } from "../_kube_sim/api_server.ts";
import { kubeSubmitArgs } from "../kube_backend/_kube_run.ts";
import { scriptEnv } from "./_podman_helpers.ts";

/** ~230 KB of text with multi-byte characters (UTF-8 boundaries fall inside parts). */
const BIG = Array.from({ length: 2600 }, (_, i) => `line ${i} é€😀 ${"x".repeat(70)}`).join("\n") +
  "\n";
const SPEC = `stages:
- id: big
  return_files: [big.txt]
  commands:
  - |
    cat > big.txt <<'GANGPLANK_EOF'
${BIG.split("\n").filter((l) => l).map((l) => `    ${l}`).join("\n")}
    GANGPLANK_EOF
`;

Deno.test("workspec transport: small in the env, large in parts that join back exactly", async () => {
  const small = workSpecEnv('{"a":1}');
  assert.deepEqual(small, { env: { COSA_WORK_POD_JSON: '{"a":1}' }, privateEnv: {} });
  const encoded = JSON.stringify({ text: BIG + "😀".repeat(100_000) });
  const big = workSpecEnv(encoded);
  const parts = Number(big.env[ENV_WORK_POD_JSON_PARTS]);
  assert.ok(parts >= 3, String(parts));
  assert.equal(big.env.COSA_WORK_POD_JSON, undefined);
  for (const v of Object.values(big.privateEnv)) {
    assert.ok(v.isWellFormed(), "a part split a surrogate pair");
    assert.ok(new TextEncoder().encode(v).length < 500_000, "a part over podman's secret limit");
  }
  const got = await receiveWorkSpec(big.env, (n) => Promise.resolve(big.privateEnv[n]));
  assert.equal(got, encoded);
  await assert.rejects(
    receiveWorkSpec({ [ENV_WORK_POD_JSON_PARTS]: "2" }, () => Promise.resolve(undefined)),
    RangeError,
  );
  for (const n of ["COSA_WORK_POD_JSON", "COSA_WORK_POD_JSON_PARTS", "COSA_WORK_POD_JSON_3_FILE"]) {
    assert.ok(isWorkSpecEnvName(n), n);
  }
  assert.ok(!isWorkSpecEnvName("COSA_WORK_POD_JSONX"));
});

async function setup() {
  const tmp = await tempDir("gp-bigws-");
  const spec = join(tmp.path, "big.yaml");
  await Deno.writeTextFile(spec, SPEC);
  assert.ok(SPEC.length > 200 * 1024, `${SPEC.length}`);
  return { tmp, spec };
}

/** The dry run says the WorkSpec is too large for the environment and travels as files. */
async function assertDryRun(spec: string, extra: string[]) {
  const d = await runScript("submit.ts", ["-s", spec, "--dry-run", ...extra], {
    env: scriptEnv(),
  });
  assert.equal(d.code, 0, d.stderr);
  assert.match(
    d.stdout,
    /^WorkSpec {2}2\d\d KiB, too large for the environment: as 2 part file\(s\)/m,
  );
  const j = await runScript("submit.ts", ["-s", spec, "--dry-run", "-o", "json", ...extra], {
    env: scriptEnv(),
  });
  const ws = JSON.parse(j.stdout).plan.workSpec;
  assert.equal(ws.via, "files");
  assert.ok(ws.bytes > WORKSPEC_ENV_MAX);
}

async function assertArrived(workDir: string, out: string) {
  const got = await Deno.readTextFile(join(workDir, "builds", "cache", "big.txt"));
  assert.equal(got, BIG, "the heredoc arrived changed");
  assert.match(out, /the WorkSpec is too large for the environment: it travels as 2 file\(s\)/);
}

Deno.test("large WorkSpec: local backend", async () => {
  const { tmp, spec } = await setup();
  await using _ = tmp;
  await assertDryRun(spec, []);
  const w = join(tmp.path, "w");
  const r = await runScript("submit.ts", ["-s", spec, "-w", w], { env: scriptEnv() });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  await assertArrived(w, r.stdout + r.stderr);
});

Deno.test("large WorkSpec: over what a Kubernetes Secret holds, the kube dry run refuses it (exit 2)", async () => {
  await using tmp = await tempDir("gp-hugews-");
  const spec = join(tmp.path, "huge.yaml");
  const lines = Array.from({ length: 11_000 }, (_, i) => `    line ${i} ${"x".repeat(100)}`);
  await Deno.writeTextFile(
    spec,
    `stages:\n- id: big\n  commands:\n  - |\n    cat > big.txt <<EOF\n${
      lines.join("\n")
    }\n    EOF\n`,
  );
  const r = await runScript(
    "submit.ts",
    ["-s", spec, "--dry-run", "--backend", "kube", "-i", "x"],
    {
      env: scriptEnv(),
    },
  );
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(
    r.stderr.trim(),
    /^the WorkSpec \(\d+ bytes, mostly the JobSpec\) does not fit in a Kubernetes Secret/,
  );
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  // The local backend takes it (as 10 part files).
  const l = await runScript("submit.ts", ["-s", spec, "--dry-run"], { env: scriptEnv() });
  assert.equal(l.code, 0, l.stderr);
  assert.match(l.stdout, /too large for the environment: as 10 part file\(s\)/);
});

const missing = podmanMissing();
if (missing) console.log(`SKIP podman/kube parts of tests/e2e/large_workspec_test.ts: ${missing}`);

Deno.test({ name: "large WorkSpec: podman backend", ignore: missing !== undefined }, async () => {
  await ensureTestImage();
  await using svc = await startPodmanService();
  const { tmp, spec } = await setup();
  await using _ = tmp;
  const common = ["--remote", `unix://${svc.socketPath}`, "-i", TEST_WORKER_IMAGE];
  await assertDryRun(spec, ["--backend", "podman", ...common]);
  const w = join(tmp.path, "w");
  const r = await runScript("podman_run.ts", ["-s", spec, "-w", w, ...common], {
    env: scriptEnv(),
    timeoutMs: 180_000,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  await assertArrived(w, r.stdout + r.stderr);
});

Deno.test({ name: "large WorkSpec: kube backend", ignore: missing !== undefined }, async () => {
  await ensureTestImage();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  const { tmp, spec } = await setup();
  await using _ = tmp;
  await assertDryRun(spec, kubeSubmitArgs(kube));
  const w = join(tmp.path, "w");
  // Every pod spec the run creates, seen while it runs.
  const podSpecs: string[] = [];
  const rec = setInterval(() => {
    for (const p of kube.list("pods")) podSpecs.push(JSON.stringify(p));
  }, 50);
  let r;
  try {
    r = await runScript("submit.ts", kubeSubmitArgs(kube, "-s", spec, "-w", w), {
      env: scriptEnv(),
      cwd: tmp.path,
      timeoutMs: 240_000,
    });
  } finally {
    clearInterval(rec);
  }
  assert.equal(r.code, 0, r.stdout + r.stderr);
  await assertArrived(w, r.stdout + r.stderr);
  // The WorkSpec was in no pod spec (the env var names its parts' files only).
  assert.ok(podSpecs.length > 0, "no pod seen");
  for (const p of podSpecs) {
    assert.ok(!p.includes("GANGPLANK_EOF"), "the WorkSpec is in a pod spec");
    assert.ok(p.includes(ENV_WORK_POD_JSON_PARTS), "the pod does not get the part count");
  }
});
