import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BashRunner } from "../../lib/worker/mod.ts";
import { tempDir, waitFor } from "../_helpers/mod.ts";
import { processesMatching } from "../_helpers/procs.ts";

function procsWith(marker: string): Promise<number[]> {
  return Promise.resolve(
    processesMatching((cmd) => cmd.startsWith("sleep ") && cmd.includes(marker)),
  );
}

Deno.test("BashRunner: -xeu -o pipefail, exact env, lines from both streams, exit code", async () => {
  await using d = await tempDir();
  const script = join(d.path, "s.sh");
  await writeFile(script, 'echo "out:${FOO}:${HOME-unset}"\necho err >&2\nfalse | true\nexit 5\n');
  const lines: [string, string][] = [];
  const r = await new BashRunner().run(script, {
    env: { FOO: "bar" },
    cwd: d.path,
    signal: new AbortController().signal,
    onLine: (l, s) => lines.push([s, l]),
  });
  assert.deepEqual(r, { code: 1, signal: null }, "pipefail makes `false | true` fail under -e");
  assert.ok(lines.some(([s, l]) => s === "stdout" && l === "out:bar:unset"));
  assert.ok(lines.some(([s, l]) => s === "stderr" && l === "err"));
  assert.ok(lines.some(([s, l]) => s === "stderr" && l.startsWith("+ echo")), "xtrace on");
  await writeFile(script, "echo fine\nexit 5\n");
  const r2 = await new BashRunner().run(script, {
    env: {},
    cwd: d.path,
    signal: new AbortController().signal,
    onLine: () => {},
  });
  assert.equal(r2.code, 5);
  await writeFile(script, "echo $UNSET_VARIABLE\n");
  const r3 = await new BashRunner().run(script, {
    env: {},
    cwd: d.path,
    signal: new AbortController().signal,
    onLine: () => {},
  });
  assert.notEqual(r3.code, 0, "-u: unset variables fail");
});

Deno.test("BashRunner: abort kills the script and everything it started", async () => {
  await using d = await tempDir();
  const marker = `${40 + Math.floor(Math.random() * 1000) / 1000}`;
  const script = join(d.path, "s.sh");
  await writeFile(script, `sleep ${marker} &\n(sleep ${marker}; echo never)\nwait\n`);
  const ac = new AbortController();
  const run = new BashRunner({ killGraceMs: 500 }).run(script, {
    env: {},
    cwd: d.path,
    signal: ac.signal,
    onLine: () => {},
  });
  try {
    await waitFor(async () => (await procsWith(marker)).length === 2, { what: "both sleeps" });
    ac.abort();
    const r = await run;
    assert.equal(r.signal, "SIGTERM");
    assert.equal(r.code, 143);
    await waitFor(async () => (await procsWith(marker)).length === 0, {
      timeoutMs: 5000,
      what: "no sleep left",
    });
  } finally {
    for (const p of await procsWith(marker)) Deno.kill(p, "SIGKILL");
    await run.catch(() => {});
  }
});

Deno.test("BashRunner: a background process holding the pipes does not block completion", async () => {
  await using d = await tempDir();
  const marker = `${50 + Math.floor(Math.random() * 1000) / 1000}`;
  const script = join(d.path, "s.sh");
  await writeFile(script, `sleep ${marker} &\necho started\n`);
  const t0 = Date.now();
  const r = await new BashRunner().run(script, {
    env: {},
    cwd: d.path,
    signal: new AbortController().signal,
    onLine: () => {},
  });
  assert.equal(r.code, 0);
  assert.ok(Date.now() - t0 < 10_000);
  for (const p of await procsWith(marker)) Deno.kill(p, "SIGKILL");
});
