/**
 * The live view of `submit` under a real pseudo-terminal (tmux on a private socket, and
 * `script`): a status block per stage redrawn in place below the log, erased at the end; off a
 * terminal or with NO_COLOR, the plain line output with no escape sequences.
 */
import assert from "node:assert/strict";
import { ROOT, tempDir } from "../_helpers/mod.ts";
import { runSubmit } from "./_local_helpers.ts";
import { markerJob, submitEnv } from "./_local_jobs.ts";

function sh(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function tmux(sock: string, ...args: string[]): Promise<string> {
  const r = await new Deno.Command("tmux", { args: ["-L", sock, ...args], stderr: "piped" })
    .output();
  if (!r.success) throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/** Polls `get` every 100 ms until `ok` holds (60 s at most); returns the last value. */
async function until(get: () => Promise<string>, ok: (s: string) => boolean, what: string) {
  const deadline = Date.now() + 60_000;
  let last = "";
  for (let i = 0; i < 600 && Date.now() < deadline; i++) {
    last = await get();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; screen:\n${last}`);
}

/**
 * Starts `submit` on the marker JobSpec (its third stage waits while `marker` exists) in a
 * tmux session on a private socket, with a terminal of 110×30 and colours allowed.
 */
async function submitInTmux(dir: string, marker: string) {
  await Deno.writeTextFile(marker, "");
  await Deno.writeTextFile(`${dir}/job.yaml`, markerJob(marker, "wait"));
  await Deno.mkdir(`${dir}/tmp`);
  const env = Object.entries(submitEnv(`${dir}/tmp`)).map(([k, v]) => `${k}=${sh(v)}`);
  const cmd = `cd ${sh(ROOT)} && env -u NO_COLOR TERM=xterm-256color ${env.join(" ")} ${
    sh(Deno.execPath())
  } run -A scripts/submit.ts -s ${sh(`${dir}/job.yaml`)} -w ${
    sh(`${dir}/work`)
  }; echo "EXIT=$?"; exec sleep 600`;
  const sock = `gp-live-${crypto.randomUUID().slice(0, 8)}`;
  await tmux(sock, "new-session", "-d", "-s", "live", "-x", "110", "-y", "30", cmd);
  return {
    sock,
    screen: () => tmux(sock, "capture-pane", "-p", "-t", "live"),
    history: () => tmux(sock, "capture-pane", "-p", "-S", "-", "-t", "live"),
    [Symbol.asyncDispose]: () => tmux(sock, "kill-server").then(() => {}, () => {}),
  };
}

Deno.test("live view under tmux: a status block per stage, redrawn in place, erased at the end", async () => {
  await using tmp = await tempDir("gp-live-");
  const marker = `${tmp.path}/MARKER`;
  await using t = await submitInTmux(tmp.path, marker);
  const { screen, history } = t;
  const s1 = await until(screen, (s) => /▶ metal4k +running/.test(s), "metal4k running");
  const rows = s1.split("\n").filter((l) => l.trim() !== "");
  const head = rows.findIndex((l) => l.startsWith("── run gp-"));
  assert.ok(head > 0, s1);
  // The block is the last thing on the screen, one line per stage, log lines above it.
  assert.deepEqual(rows.slice(head + 1).map((l) => l.trim().split(/\s+/).slice(0, 2)), [
    ["✔", "base"],
    ["✔", "metal"],
    ["▶", "metal4k"],
    ["·", "finalize"],
  ]);
  assert.match(rows[head], /· 2\/4 stage\(s\) done · \d+\.\ds ─+$/);
  assert.match(rows[head + 1], /succeeded in \d+\.\ds/);
  assert.match(rows[head + 4], /queued \(group 4\)/);
  assert.ok(rows.slice(0, head).some((l) => l.startsWith("[metal4k +")), s1);
  // Redrawn in place: the elapsed time moves, and the history holds one block, not copies.
  const elapsed = (s: string) => /▶ metal4k +running (\S+)/.exec(s)?.[1];
  const e1 = elapsed(s1);
  await until(screen, (s) => elapsed(s) !== undefined && elapsed(s) !== e1, "a redraw");
  assert.equal((await history()).split("\n").filter((l) => l.startsWith("── run")).length, 1);

  await Deno.remove(marker);
  const end = await until(history, (s) => /EXIT=\d+/.test(s), "the end of the run");
  assert.match(end, /EXIT=0/);
  assert.equal(end.split("\n").filter((l) => l.startsWith("── run")).length, 0, end);
  assert.match(end, /^STAGE +RESULT +EXIT/m);
  assert.match(end, /^finalize +succeeded/m);
});

Deno.test("live view under tmux: Ctrl-C erases the block at once; the rest is plain lines", async () => {
  await using tmp = await tempDir("gp-live-");
  await using t = await submitInTmux(tmp.path, `${tmp.path}/MARKER`);
  await until(t.screen, (s) => /▶ metal4k +running/.test(s), "metal4k running");
  await tmux(t.sock, "send-keys", "-t", "live", "C-c");
  const end = await until(t.history, (s) => /EXIT=\d+/.test(s), "the end of the run");
  assert.match(end, /EXIT=130/);
  assert.match(end, /^submit: SIGINT received, stopping$/m);
  assert.match(end, /^metal4k +cancelled/m);
  assert.equal(end.split("\n").filter((l) => l.startsWith("── run")).length, 0, end);
});

Deno.test("live view off a terminal and with NO_COLOR: plain lines, no escape sequences", async () => {
  await using tmp = await tempDir("gp-live-");
  const spec = `${tmp.path}/job.yaml`;
  await Deno.writeTextFile(spec, markerJob(`${tmp.path}/no-marker`, "wait"));
  await Deno.mkdir(`${tmp.path}/tmp`);
  const env = submitEnv(`${tmp.path}/tmp`);
  const plainLines = (out: string) => {
    assert.ok(!out.includes("\x1b["), "no escape sequence");
    const lines = out.replaceAll("\r\n", "\n").split("\n").filter((l) => l !== "");
    assert.ok(lines.some((l) => /^\[base \+\d+\.\ds\] gangplank: starting worker/.test(l)));
    assert.ok(lines.some((l) => /^\[metal4k \+\d+\.\ds\] third-stage-started$/.test(l)));
    assert.ok(lines.some((l) => /^finalize +succeeded +0 /.test(l)));
    assert.ok(!lines.some((l) => l.startsWith("── run")));
  };
  // Piped stdout (NO_COLOR empty counts as unset).
  const piped = await runSubmit(["-s", spec, "-w", `${tmp.path}/w1`], {
    env: { ...env, NO_COLOR: "" },
    timeoutMs: 120_000,
  });
  assert.equal(piped.code, 0, piped.stderr);
  plainLines(piped.stdout);
  // A pseudo-terminal (script), with NO_COLOR=1.
  const cmd = `cd ${sh(ROOT)} && ${sh(Deno.execPath())} run -A scripts/submit.ts -s ${
    sh(spec)
  } -w ${sh(`${tmp.path}/w2`)}`;
  const r = await new Deno.Command("script", {
    args: ["-qfec", cmd, "/dev/null"],
    env: { ...env, NO_COLOR: "1", TERM: "xterm-256color" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  plainLines(new TextDecoder().decode(r.stdout));
});
