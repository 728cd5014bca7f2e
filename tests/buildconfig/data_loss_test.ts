/**
 * Reference §12.2.9, fixed: Gangplank's coordinator deleted `<workDir>/source` and
 * `<workDir>/.minio.sys` at the end of every run (BuildConfig code it also ran in podman mode),
 * and the work dir defaulted to the current directory: a user's own `source/` was gone after a
 * podman run. Here a run never removes a file it did not create — without `-w` (a fresh
 * `gangplank-run-*` dir), with `-w .` (the user's directory itself), with the podman backend,
 * and in the BuildConfig role with a srv dir that already holds a `source/` (its binary input
 * is then refused, nothing written).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runScript, tempDir } from "../_helpers/mod.ts";
import {
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  TEST_WORKER_IMAGE,
} from "../_helpers/podman.ts";
import { scriptEnv, treeHashes } from "../e2e/_podman_helpers.ts";
import { dirPayload, fixtureBuild, startBcCluster } from "./_bc_cluster.ts";

/** What the user had in the directory before the run. */
const USER_FILES: Record<string, string> = {
  "source/notes.txt": "my notes\n",
  "source/sub/data.bin": "x".repeat(5000),
  ".minio.sys/config/config.json": '{"version":"33"}\n',
  "keep.txt": "keep me\n",
};

const JOBSPEC = `recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: base
    build_artifacts: [base]
`;

async function plant(dir: string): Promise<Map<string, string>> {
  for (const [rel, text] of Object.entries(USER_FILES)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
  return await userTree(dir);
}

/** The sha256 of every file of the user's (the planted paths' top-level entries). */
async function userTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const top of new Set(Object.keys(USER_FILES).map((p) => p.split("/")[0]))) {
    const p = join(dir, top);
    if (!existsSync(p)) continue;
    if (top === "keep.txt") out.set(top, (await treeHashes(dir)).get(top)!);
    else for (const [k, v] of await treeHashes(p)) out.set(`${top}/${k}`, v);
  }
  return out;
}

Deno.test("§12.2.9: submit (local) keeps the user's source/ and .minio.sys/: without -w a fresh work dir, with -w . nothing of theirs removed", async () => {
  await using tmp = await tempDir("gp-dataloss-");
  const before = await plant(tmp.path);
  await writeFile(join(tmp.path, "jobspec.yaml"), JOBSPEC);
  const run = (args: string[]) =>
    runScript("submit.ts", ["-s", "jobspec.yaml", ...args], {
      env: scriptEnv(),
      cwd: tmp.path,
      timeoutMs: 120_000,
    });
  const fresh = await run([]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.deepEqual(await userTree(tmp.path), before);
  const runs = readdirSync(tmp.path).filter((n) => n.startsWith("gangplank-run-"));
  assert.equal(runs.length, 1, readdirSync(tmp.path).join(","));
  assert.ok(existsSync(join(tmp.path, runs[0], "builds", "builds.json")));
  assert.equal(existsSync(join(tmp.path, "builds")), false, "nothing written into the cwd");
  // Gangplank's default: the user's directory itself is the work dir.
  const here = await run(["-w", "."]);
  assert.equal(here.code, 0, here.stderr);
  assert.deepEqual(await userTree(tmp.path), before);
  assert.ok(existsSync(join(tmp.path, "builds", "builds.json")));
});

const missing = podmanMissing();
Deno.test({
  name: "§12.2.9: podman-run -w . keeps the user's source/ and .minio.sys/",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage();
  await using svc = await startPodmanService();
  await using tmp = await tempDir("gp-dataloss-podman-");
  const before = await plant(tmp.path);
  await writeFile(join(tmp.path, "jobspec.yaml"), JOBSPEC);
  const r = await runScript("podman_run.ts", [
    "-s",
    "jobspec.yaml",
    "--remote",
    `unix://${svc.socketPath}`,
    "-i",
    TEST_WORKER_IMAGE,
    "-w",
    ".",
  ], { env: scriptEnv(), cwd: tmp.path, timeoutMs: 240_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(await userTree(tmp.path), before);
  assert.ok(existsSync(join(tmp.path, "builds", "builds.json")));
});

Deno.test({
  name:
    "§12.2.9: the BuildConfig role keeps a srv dir's source/ and .minio.sys/; binary input into a non-empty source/ is refused, nothing written",
  ignore: Deno.uid() !== 0,
}, async (t) => {
  await using tmp = await tempDir("gp-dataloss-bc-");
  await using c = await startBcCluster();
  const env = [{ name: "COSA_CMDS", value: "cosa fetch; cosa build" }];
  await t.step("COSA_CMDS, no binary input: the run succeeds around the user's files", async () => {
    const srv = join(tmp.path, "srv1");
    const before = await plant(srv);
    const build = fixtureBuild(`${c.reg.address}/coreos/fcos:keep`, (b) => {
      b.spec.strategy.customStrategy.env = env;
    });
    const { phase, log } = await c.runBuild({ build, srv });
    assert.equal(phase, "Succeeded", log);
    assert.deepEqual(await userTree(srv), before);
    assert.ok(existsSync(join(srv, "builds", "builds.json")));
  });
  await t.step(
    "binary input: refused (exit 2, one line), the user's files as they were",
    async () => {
      const srv = join(tmp.path, "srv2");
      const before = await plant(srv);
      const build = fixtureBuild(`${c.reg.address}/coreos/fcos:refused`, (b) => {
        b.spec.source.binary = {};
        b.spec.strategy.customStrategy.env = env;
      });
      const { phase, log, exitCode } = await c.runBuild({
        build,
        srv,
        payload: await dirPayload(tmp.path, { "evil.cosa.sh": "rm -rf /srv/source\n" }),
      });
      assert.equal(phase, "Failed", log);
      assert.equal(exitCode, 2, log);
      assert.match(log, /binary input \(stdin\) source\.bin: .*source is not empty/);
      assert.deepEqual(await userTree(srv), before);
      assert.deepEqual(readdirSync(srv).sort(), [".minio.sys", "keep.txt", "source"]);
    },
  );
});
