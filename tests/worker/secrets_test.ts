/**
 * How the worker takes its secrets: a secret file is read once and then gone; a non-dumpable
 * process's environment is closed to other processes of the same (non-root) user.
 */
import assert from "node:assert/strict";
import { consumeSecretFile } from "../../lib/worker/secrets.ts";
import { ROOT, tempDir, waitFor } from "../_helpers/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";

Deno.test("consumeSecretFile: read once, then removed; a group/other-readable file is refused", async () => {
  await using tmp = await tempDir("gp-secret-");
  const f = `${tmp.path}/key`;
  await Deno.writeTextFile(f, "s3cr3t-value\n", { mode: 0o600 });
  const r = await consumeSecretFile("COSA_RELAY_SECRET_FILE", f);
  assert.deepEqual(r, { secret: "s3cr3t-value", fate: "removed" });
  await assert.rejects(Deno.stat(f), Deno.errors.NotFound);

  await Deno.writeTextFile(f, "s3cr3t-value\n", { mode: 0o644 });
  await Deno.chmod(f, 0o644);
  const e = await consumeSecretFile("COSA_RELAY_SECRET_FILE", f).catch((e) => e);
  assert.ok(e instanceof UsageError);
  assert.match(e.message, /COSA_RELAY_SECRET_FILE: .* must be 0600/);
  assert.ok(!e.message.includes("s3cr3t"));
  await Deno.remove(f);
  const missing = await consumeSecretFile("X_FILE", f).catch((e) => e);
  assert.ok(missing instanceof UsageError);
});

const setpriv = (() => {
  try {
    return Deno.uid() === 0 &&
      new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "null" })
        .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "makeUndumpable: another process of the same user cannot read the worker's environ",
  ignore: !setpriv,
}, async () => {
  await using tmp = await tempDir("gp-undump-");
  await Deno.chmod(tmp.path, 0o755);
  // A deno and a script the unprivileged user can run (this deno may sit in a 0700 home).
  const deno = `${tmp.path}/deno`;
  await Deno.copyFile(Deno.execPath(), deno);
  await Deno.chmod(deno, 0o755);
  const script = `${tmp.path}/victim.ts`;
  await Deno.writeTextFile(
    script,
    `import { makeUndumpable } from "${ROOT}/lib/worker/secrets.ts";\n` +
      `if (Deno.args[0] === "hide" && !makeUndumpable()) Deno.exit(3);\n` +
      `console.log("ready");\n` +
      `for await (const _ of Deno.stdin.readable) { /* until the test closes stdin */ }\n`,
  );
  await Deno.mkdir(`${tmp.path}/cache`, { mode: 0o777 });
  await Deno.chmod(`${tmp.path}/cache`, 0o777);
  const asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
  const readable: Record<string, boolean> = {};
  for (const mode of ["hide", "plain"]) {
    const victim = new Deno.Command("setpriv", {
      args: [...asNobody, deno, "run", "-A", "--no-config", script, mode],
      env: { DENO_DIR: `${tmp.path}/cache`, HOME: tmp.path, VICTIM_SECRET: "in-the-environ" },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const out = victim.stdout.getReader();
    await waitFor(
      async () => new TextDecoder().decode((await out.read()).value).includes("ready"),
      {
        timeoutMs: 60_000,
        what: "the victim",
      },
    );
    // setpriv execs deno: same pid.
    const probe = await new Deno.Command("setpriv", {
      args: [...asNobody, "cat", `/proc/${victim.pid}/environ`],
      stdout: "piped",
      stderr: "null",
    }).output();
    readable[mode] = new TextDecoder().decode(probe.stdout).includes("in-the-environ");
    await victim.stdin.close();
    out.releaseLock();
    await victim.stdout.cancel();
    assert.equal((await victim.status).code, 0);
  }
  // The control shows the probe works; the worker's way closes it.
  assert.deepEqual(readable, { hide: false, plain: true });
});
