import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import {
  abortable,
  backoffDelay,
  delay,
  makeTempDir,
  quote,
  redact,
  retry,
  type RetryInfo,
  timeoutSignal,
  writeFileAtomic,
} from "../../lib/toolkit/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

Deno.test("retry: Retry-After replaces the backoff (capped), and only retryable errors retry", async () => {
  const seen: RetryInfo[] = [];
  let calls = 0;
  const v = await retry(() => {
    calls++;
    if (calls === 1) return Promise.reject(Object.assign(new Error("429"), { after: 30 }));
    if (calls === 2) return Promise.reject(Object.assign(new Error("429"), { after: 60_000 }));
    return Promise.resolve("ok");
  }, {
    attempts: 5,
    baseDelayMs: 1,
    maxDelayMs: 40,
    jitter: "none",
    retryAfterMs: (e) => (e as { after?: number }).after,
    onRetry: (i) => seen.push(i),
  });
  assert.equal(v, "ok");
  assert.deepEqual(seen.map((i) => [i.attempt, i.delayMs]), [[2, 30], [3, 40]]);

  calls = 0;
  const fatal = new Error("403");
  await assert.rejects(
    retry(() => (calls++, Promise.reject(fatal)), { isRetryable: (e) => e !== fatal }),
    (e) => e === fatal,
  );
  assert.equal(calls, 1);
});

Deno.test("retry: the last error is thrown as it is after the attempts run out", async () => {
  let calls = 0;
  const errs: Error[] = [];
  await assert.rejects(
    retry(() => {
      const e = new Error(`try ${++calls}`);
      errs.push(e);
      return Promise.reject(e);
    }, { attempts: 3, baseDelayMs: 1 }),
    (e) => e === errs[2],
  );
  assert.equal(calls, 3);
});

Deno.test("retry: an abort during the backoff ends it at once with the signal's reason", async () => {
  const ctl = new AbortController();
  const reason = new Error("stop");
  const t0 = Date.now();
  const p = retry(() => Promise.reject(new Error("busy")), {
    baseDelayMs: 60_000,
    signal: ctl.signal,
    onRetry: () => queueMicrotask(() => ctl.abort(reason)),
  });
  await assert.rejects(p, (e) => e === reason);
  assert.ok(Date.now() - t0 < 5_000);
});

Deno.test("backoffDelay: exponential, capped, equal jitter between half and all", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) =>
      backoffDelay(n, { baseDelayMs: 100, maxDelayMs: 1000, jitter: "none" })
    ),
    [100, 200, 400, 800, 1000],
  );
  assert.equal(backoffDelay(3, { baseDelayMs: 100, random: () => 0 }), 200);
  assert.equal(backoffDelay(3, { baseDelayMs: 100, random: () => 0.999999 }), 400);
});

Deno.test("delay and abortable reject with the signal's reason, and delay clears its timer", async () => {
  const reason = new Error("gone");
  await assert.rejects(delay(60_000, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
  const ctl = new AbortController();
  const p = abortable(new Promise<never>(() => {}), ctl.signal);
  ctl.abort(reason);
  await assert.rejects(p, (e) => e === reason);
  assert.equal(await abortable(Promise.resolve(7), new AbortController().signal), 7);
});

Deno.test("redact: every secret hidden, the longer one whole when one contains another", () => {
  assert.equal(
    redact("a=abc b=abcdef c=x", ["abc", "abcdef", ""]),
    "a=*** b=*** c=x",
  );
});

Deno.test("writeFileAtomic: a failed write leaves the old file and no temp file", async () => {
  await using tmp = await makeTempDir();
  const file = `${tmp.path}/builds.json`;
  await writeFileAtomic(file, "old\n", { mode: 0o600 });
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  // The rename onto a directory fails after the temp file was written.
  await Deno.mkdir(`${tmp.path}/dir`);
  await assert.rejects(writeFileAtomic(`${tmp.path}/dir`, "new\n"));
  assert.deepEqual((await readdir(tmp.path)).sort(), ["builds.json", "dir"]);
  assert.equal(await Deno.readTextFile(file), "old\n");
});

Deno.test("makeTempDir: disposing removes the dir and what is in it", async () => {
  let path: string;
  {
    await using tmp = await makeTempDir({ prefix: "toolkit-" });
    path = tmp.path;
    await Deno.writeTextFile(`${path}/f`, "x");
    assert.equal((await stat(path)).mode & 0o777, 0o700);
  }
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
});

Deno.test("quote: hostile words reach the shell as one literal argument", async () => {
  const words = ["plain", "it's", "$(touch pwned)", "a b\nc", "`id`", "'", ""];
  const script = `printf '%s\\0' ${words.map(quote).join(" ")}`;
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output();
  assert.deepEqual(new TextDecoder().decode(out.stdout).split("\0").slice(0, -1), words);
});

Deno.test("abortable hands a value that arrives after the abort to `late` (a connection to close)", async () => {
  const ctl = new AbortController();
  let arrive!: (v: string) => void;
  const released: string[] = [];
  const p = abortable(new Promise<string>((r) => arrive = r), ctl.signal, (v) => released.push(v));
  ctl.abort(new Error("stop"));
  await assert.rejects(p, /stop/);
  arrive("conn");
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(released, ["conn"]);
  // A value that arrives in time is the caller's, never released.
  const kept: string[] = [];
  const live = new AbortController().signal;
  assert.equal(await abortable(Promise.resolve("x"), live, (v) => kept.push(v)), "x");
  assert.deepEqual(kept, []);
});

Deno.test("timeoutSignal: aborts with TimeoutError after ms on its clock, at once with its parent; dispose stops the wait", async () => {
  const clock = new FakeClock();
  const fired = timeoutSignal(clock, 30_000);
  const never = timeoutSignal(clock, 30_000);
  never[Symbol.dispose]();
  const parent = new AbortController();
  const child = timeoutSignal(clock, 60_000, parent.signal);
  clock.after(1000, () => parent.abort(new Error("parent")));
  await clock.run(new Promise<void>((r) => fired.signal.addEventListener("abort", () => r())));
  assert.equal(clock.elapsed, 30_000);
  assert.equal((fired.signal.reason as DOMException).name, "TimeoutError");
  assert.equal(never.signal.aborted, false);
  assert.match(String(child.signal.reason), /parent/);
  fired[Symbol.dispose]();
  child[Symbol.dispose]();
  assert.equal(clock.pendingDelays, 0, "no wait left");
});
