/**
 * `deno task bundle`: the bundled scripts run from a folder with no node_modules and no deno
 * config, including npm:ssh2's handshake (pure-JS crypto fallback, shimmed `require`).
 */
import assert from "node:assert/strict";
import { bundle } from "../../scripts/bundle.ts";
import { runCommand, tempDir } from "../_helpers/mod.ts";
import { sshdMissing, startSshd } from "../_helpers/sshd.ts";

Deno.test("bundle: work, submit, relay, podman_run run without node_modules", async (t) => {
  await using out = await tempDir("gp-bundle-");
  const files = await bundle({ outDir: out.path });
  const names = files.map((f) => f.slice(out.path.length + 1)).sort();
  assert.deepEqual(names, ["podman_run.js", "relay.js", "submit.js", "work.js"]);
  const run = (file: string, args: string[], env: Record<string, string> = {}) =>
    runCommand(Deno.execPath(), ["run", "-A", "--no-config", `${out.path}/${file}`, ...args], {
      cwd: out.path,
      env: { HOME: out.path, DENO_DIR: `${out.path}/deno-dir`, ...env },
      timeoutMs: 60_000,
    });

  await t.step("--help of each script", async () => {
    for (const f of ["submit.js", "relay.js", "podman_run.js"]) {
      const r = await run(f, ["--help"]);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: /, f);
    }
    const w = await run("work.js", []);
    assert.equal(w.code, 2, w.stderr);
    assert.match(w.stderr, /COSA_WORK_POD_JSON is not set/);
  });

  await t.step({
    name: "bundled podman_run speaks SSH (host key refused with its fingerprint)",
    ignore: sshdMissing() !== undefined,
    fn: async () => {
      await using sshd = await startSshd();
      await Deno.writeTextFile(`${out.path}/known_hosts`, "");
      await Deno.writeTextFile(
        `${out.path}/job.yaml`,
        'stages:\n  - id: one\n    execution_order: 1\n    commands: ["true"]\n',
      );
      const r = await run("podman_run.js", [
        "-s",
        "job.yaml",
        "-w",
        "w",
        "--known-hosts",
        `${out.path}/known_hosts`,
      ], {
        CONTAINER_HOST: `ssh://root@127.0.0.1:${sshd.port}/run/podman/podman.sock`,
        CONTAINER_SSHKEY: sshd.userKeyPath,
      });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.ok(r.stderr.includes(sshd.hostFingerprint), r.stderr);
    },
  });
});
