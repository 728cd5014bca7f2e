/**
 * The suite never writes into the real home: a run with `-e`/`--env-file` keeps its digest key
 * under `$XDG_STATE_HOME` (else `$HOME/.local/state`), and every helper that starts a run gives
 * it the test process's own state dir (`withTestState`). Each spawner runs a real local run with
 * `-e` and a fresh, empty HOME: the HOME stays empty, and the run's digests were made with the
 * key in the test state dir (so the key code was reached, not skipped).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { submit } from "../../lib/cli/mod.ts";
import { ENV_KEY_FILE } from "../../lib/coordinator/env_digest.ts";
import { RUN_STATE_FILE } from "../../lib/coordinator/resume.ts";
import { runInProcess } from "../_helpers/cli.ts";
import { runScript, tempDir, testStateHome } from "../_helpers/mod.ts";
import { runSubmit } from "../e2e/_local_helpers.ts";
import { spawnScript, within } from "../e2e/_podman_helpers.ts";

type Spawner = (
  args: string[],
  env: Record<string, string>,
  cwd: string,
) => Promise<{ code: number; out: string }>;

const SPAWNERS: [string, Spawner][] = [
  ["runScript", async (args, env, cwd) => {
    const r = await runScript("submit.ts", args, { env, cwd, timeoutMs: 90_000 });
    return { code: r.code, out: r.stdout + r.stderr };
  }],
  ["runInProcess", async (args, env, cwd) => {
    const r = await runInProcess("submit", submit, args, { env, cwd, timeoutMs: 90_000 });
    return { code: r.code, out: r.stdout + r.stderr };
  }],
  ["runSubmit (e2e)", async (args, env, cwd) => {
    const r = await runSubmit(args, { env, cwd, timeoutMs: 90_000 });
    return { code: r.code, out: r.stdout + r.stderr };
  }],
  [
    "spawnScript (podman e2e)",
    (args, env, cwd) => within(spawnScript("submit.ts", args, env, cwd), 90_000, "submit"),
  ],
];

/** Deno's own cache dir: given explicitly, so that the workers' `deno` does not make one in HOME. */
async function denoDir(): Promise<string> {
  const o = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" })
    .output();
  return JSON.parse(new TextDecoder().decode(o.stdout)).denoDir;
}

/** The id the run state records for a digest key (lib/coordinator/env_digest.ts's keyId). */
function keyId(key: Uint8Array): string {
  return createHash("sha256").update("gangplank env-digest key id\0").update(key).digest("hex")
    .slice(0, 16);
}

for (const [name, spawn] of SPAWNERS) {
  Deno.test(`test state dir: a -e run started by ${name} writes nothing under HOME`, async () => {
    await using tmp = await tempDir("gp-state-home-");
    const home = `${tmp.path}/home`;
    await Deno.mkdir(home);
    await Deno.mkdir(`${tmp.path}/tmp`);
    await Deno.writeTextFile(
      `${tmp.path}/job.yaml`,
      `stages:\n  - id: e\n    commands: ['test "$GP_GUARD" = on']\n`,
    );
    // Only HOME, no XDG_STATE_HOME: a run would fall back to $HOME/.local/state.
    const env = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      TMPDIR: `${tmp.path}/tmp`,
      DENO_DIR: await denoDir(),
    };
    const r = await spawn(["-s", "job.yaml", "-w", "work", "-e", "GP_GUARD=on"], env, tmp.path);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual([...Deno.readDirSync(home)].map((e) => e.name), [], "HOME stays empty");
    const key = await Deno.readFile(`${testStateHome()}/gangplank/${ENV_KEY_FILE}`);
    const state = JSON.parse(await Deno.readTextFile(`${tmp.path}/work/${RUN_STATE_FILE}`));
    assert.deepEqual(Object.keys(state.stages.e.env.values), ["GP_GUARD"]);
    assert.equal(state.stages.e.env.key, keyId(key), "digests made with the test state dir's key");
  });
}
