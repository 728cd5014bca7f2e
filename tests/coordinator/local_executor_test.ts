import assert from "node:assert/strict";
import { LocalExecutor } from "../../lib/executors/local.ts";
import type { WorkerLaunch } from "../../lib/executors/types.ts";
import { ROOT, tempDir, waitFor } from "../_helpers/mod.ts";
import { LINE_CONTINUES, WORKER_MAX_LINE_LENGTH } from "../../lib/log/mod.ts";
import { isRunning } from "../_helpers/procs.ts";

function launch(
  over: Partial<WorkerLaunch> & { lines?: string[] } = {},
): WorkerLaunch & { lines: string[] } {
  const lines = over.lines ?? [];
  return {
    runId: "run-1",
    stageId: "stage one",
    stageIndex: 0,
    env: { COSA_WORK_POD_JSON: "{}" },
    secretEnv: { COSA_RELAY_SECRET_KEY: "s3cr3t" },
    onLine: (l, s) => lines.push(`${s}:${l}`),
    signal: new AbortController().signal,
    ...over,
    lines,
  };
}

const alive = isRunning;

Deno.test("local executor: env, secret env, scratch dir, lines, exit code", async () => {
  await using tmp = await tempDir();
  await using exec = new LocalExecutor({
    workerCommand: [
      "bash",
      "-c",
      'echo "srv=$COSA_SRV_DIR pwd=$PWD"; ' +
      'echo "key=$(cat "$COSA_RELAY_SECRET_FILE") mode=$(stat -c %a "$COSA_RELAY_SECRET_FILE") ' +
      'env=${COSA_RELAY_SECRET_KEY:-none}" >&2; ' +
      'echo "path=$PATH"; echo "json=$COSA_WORK_POD_JSON"; printf "no newline"; exit 7',
    ],
    baseEnv: { PATH: "/usr/bin:/bin", HOME: "/root" },
    pathPrefix: ["/opt/fake"],
    tempParent: tmp.path,
  });
  const ep = await exec.prepare({ host: "127.0.0.1", port: 1234 }, {
    runId: "run-1",
    signal: new AbortController().signal,
  });
  assert.deepEqual(ep, { host: "127.0.0.1", port: 1234 });
  const l = launch();
  const out = await exec.runStage(l);
  assert.equal(out.exitCode, 7);
  const srv = l.lines[0].match(/srv=(\S+) pwd=(\S+)/)!;
  assert.equal(srv[1], srv[2]);
  assert.ok(srv[1].startsWith(exec.tempRoot!));
  // The key arrives in a 0600 file, never in the worker's environment.
  assert.ok(l.lines.includes("stderr:key=s3cr3t mode=600 env=none"), l.lines.join("\n"));
  const denoDir = Deno.execPath().slice(0, Deno.execPath().lastIndexOf("/"));
  assert.ok(l.lines.includes(`stdout:path=/opt/fake:/usr/bin:/bin:${denoDir}`));
  assert.ok(l.lines.includes("stdout:json={}"));
  assert.ok(l.lines.includes("stdout:no newline"));
  // scratch removed after the stage
  assert.throws(() => Deno.statSync(srv[1]));
  assert.equal(await exec.arch({ signal: new AbortController().signal }), "x86_64");
});

Deno.test("local executor: a worker killed by a signal reports 128+n", async () => {
  await using tmp = await tempDir();
  await using exec = new LocalExecutor({
    workerCommand: ["bash", "-c", "kill -9 $$"],
    tempParent: tmp.path,
  });
  const out = await exec.runStage(launch());
  assert.equal(out.exitCode, 137);
  assert.match(out.reason ?? "", /SIGKILL/);
});

Deno.test("local executor: abort stops the whole process group and removes scratch", async () => {
  await using tmp = await tempDir();
  const pidFile = `${tmp.path}/pids`;
  await using exec = new LocalExecutor({
    workerCommand: [
      "bash",
      "-c",
      // a grandchild that ignores SIGTERM, and the worker itself
      `(trap '' TERM; sleep 60) & echo "$! $$ $COSA_SRV_DIR" > ${pidFile}; wait`,
    ],
    tempParent: tmp.path,
    killGraceMs: 300,
  });
  const ctl = new AbortController();
  const p = exec.runStage(launch({ signal: ctl.signal }));
  const text = await waitFor(() => Deno.readTextFileSync(pidFile).trim(), { what: "pid file" });
  const [grand, worker, scratch] = text.split(" ");
  assert.ok(alive(Number(grand)) && alive(Number(worker)));
  ctl.abort();
  const out = await p;
  assert.equal(out.reason, "cancelled");
  await waitFor(() => !alive(Number(grand)) && !alive(Number(worker)), { what: "group gone" });
  assert.throws(() => Deno.statSync(scratch));
});

Deno.test("local executor: dispose kills leftovers and removes the temp root", async () => {
  await using tmp = await tempDir();
  const exec = new LocalExecutor({
    workerCommand: ["bash", "-c", "sleep 60"],
    tempParent: tmp.path,
    killGraceMs: 200,
  });
  const p = exec.runStage(launch());
  await waitFor(() => exec.tempRoot && [...Deno.readDirSync(exec.tempRoot)].length > 0);
  const root = exec.tempRoot!;
  await exec[Symbol.asyncDispose]();
  const out = await p;
  assert.notEqual(out.exitCode, 0);
  assert.throws(() => Deno.statSync(root));
  assert.deepEqual([...Deno.readDirSync(tmp.path)], []);
});

/** A fake checkout: deno.json, the real worker host, and a fake worker module. */
async function fakeRoot(dir: string, exportsMain: boolean): Promise<string> {
  await Deno.mkdir(`${dir}/scripts`, { recursive: true });
  await Deno.writeTextFile(`${dir}/deno.json`, "{}");
  await Deno.copyFile(
    `${ROOT}/scripts/local_worker_host.ts`,
    `${dir}/scripts/local_worker_host.ts`,
  );
  const body = `
async function run() {
  console.log("main=" + Deno.mainModule.slice(Deno.mainModule.lastIndexOf("/") + 1));
  console.log("cwd=" + Deno.cwd() + " srv=" + Deno.env.get("COSA_SRV_DIR"));
  const f = Deno.env.get("COSA_RELAY_SECRET_FILE");
  console.log("key=" + (f ? Deno.readTextFileSync(f) : "none") + " env=" +
    (Deno.env.get("COSA_RELAY_SECRET_KEY") ?? "none") + " base=" + Deno.env.get("BASE_VAR"));
  console.error("tmp=" + Deno.env.get("TMPDIR"));
  return Number(Deno.env.get("EXIT") ?? "0");
}
${exportsMain ? "export const main = run;" : ""}
if (import.meta.main) Deno.exit(await run());
`;
  await Deno.writeTextFile(`${dir}/scripts/work.ts`, body);
  return dir;
}

Deno.test("local executor: pre-started workers run with the launch's env and dir", async () => {
  await using tmp = await tempDir();
  const root = await fakeRoot(`${tmp.path}/root`, true);
  await using exec = new LocalExecutor({
    root,
    baseEnv: { PATH: "/usr/bin:/bin", BASE_VAR: "b" },
    tempParent: tmp.path,
    warmWorkers: 1,
  });
  await exec.prepare({ host: "127.0.0.1", port: 1 }, {
    runId: "r",
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(exec.warmCount, 1);
  for (const code of [5, 0]) {
    const l = launch({ env: { EXIT: String(code) } });
    const out = await exec.runStage(l);
    assert.equal(out.exitCode, code, l.lines.join("\n"));
    assert.ok(l.lines.includes("stdout:main=local_worker_host.ts"), l.lines.join("\n"));
    const m = l.lines.find((x) => x.startsWith("stdout:cwd="))!.match(/cwd=(\S+) srv=(\S+)/)!;
    assert.equal(m[1], m[2]);
    assert.ok(l.lines.includes("stdout:key=s3cr3t env=none base=b"), l.lines.join("\n"));
    assert.ok(l.lines.some((x) => /^stderr:tmp=.*\/tmp$/.test(x)));
  }
  // the pool was refilled after each stage
  await waitFor(() => exec.warmCount === 1, { what: "pool refilled" });
});

Deno.test("local executor: without a main export every worker starts cold", async () => {
  await using tmp = await tempDir();
  const root = await fakeRoot(`${tmp.path}/root`, false);
  await using exec = new LocalExecutor({ root, tempParent: tmp.path, warmWorkers: 2 });
  await exec.prepare({ host: "127.0.0.1", port: 1 }, {
    runId: "r",
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(exec.warmCount, 0);
  const l = launch({ env: { EXIT: "3" } });
  assert.equal((await exec.runStage(l)).exitCode, 3);
  assert.ok(l.lines.includes("stdout:main=work.ts"), l.lines.join("\n"));
});

Deno.test("local executor: dispose stops idle pre-started workers", async () => {
  await using tmp = await tempDir();
  const root = await fakeRoot(`${tmp.path}/root`, true);
  const exec = new LocalExecutor({ root, tempParent: tmp.path, warmWorkers: 2 });
  await exec.prepare({ host: "127.0.0.1", port: 1 }, {
    runId: "r",
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(exec.warmCount, 2);
  await exec[Symbol.asyncDispose]();
  assert.equal(exec.warmCount, 0);
  assert.deepEqual([...Deno.readDirSync(tmp.path)].map((e) => e.name), ["root"]);
});

Deno.test("local executor: a long worker line (a summary) arrives whole; endless output stays bounded", async () => {
  await using tmp = await tempDir();
  await using exec = new LocalExecutor({
    workerCommand: [
      "bash",
      "-c",
      // 300 000 characters on one line (like a summary listing thousands of objects), then
      // 9 MB without a newline.
      "head -c 300000 /dev/zero | tr '\\0' s; echo; head -c 9000000 /dev/zero | tr '\\0' x",
    ],
    baseEnv: { PATH: "/usr/bin:/bin" },
    tempParent: tmp.path,
  });
  const l = launch();
  const out = await exec.runStage(l);
  assert.equal(out.exitCode, 0, l.lines.slice(0, 3).join("\n").slice(0, 500));
  const stdout = l.lines.filter((x) => x.startsWith("stdout:")).map((x) => x.slice(7));
  assert.equal(stdout[0], "s".repeat(300_000));
  const rest = stdout.slice(1);
  assert.equal(rest.length, 3, rest.map((x) => x.length).join(","));
  assert.ok(rest.every((x) => x.length <= WORKER_MAX_LINE_LENGTH));
  assert.equal(rest.map((x) => x.replace(LINE_CONTINUES, "")).join(""), "x".repeat(9_000_000));
});
