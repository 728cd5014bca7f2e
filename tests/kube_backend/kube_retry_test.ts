/**
 * withKubeRetry on fake time with the errors client-node really throws (`ApiException` with the
 * answer's status, Status body and headers): 429 waits what `Retry-After` says (capped), 5xx
 * and dropped connections back off exponentially, other answers fail at once, and what
 * survives the retries is a KubeApiError carrying the server's status, reason and the attempts.
 * That the header arrives from a real HTTP answer is proven in run_pod_test.ts.
 */
import assert from "node:assert/strict";
import { ApiException } from "@kubernetes/client-node";
import { KubeApiError, withKubeRetry } from "../../lib/kube/mod.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

const POLICY = { attempts: 6, baseDelayMs: 250, maxDelayMs: 5000 };

const answer = (code: number, reason: string, headers: Record<string, string> = {}) =>
  new ApiException(code, reason, { kind: "Status", reason, message: `${reason} (test)` }, headers);

/** Runs `fn` under withKubeRetry on a fake clock; returns the result and each attempt's time. */
async function retried<T>(fails: unknown[], value: T, signal = new AbortController().signal) {
  const clock = new FakeClock();
  const at: number[] = [];
  const notes: string[] = [];
  const p = withKubeRetry("create pod p", () => {
    at.push(clock.elapsed);
    const e = fails.shift();
    return e === undefined ? Promise.resolve(value) : Promise.reject(e);
  }, { signal, policy: POLICY, clock, onRetry: (m) => notes.push(m) });
  const out = await clock.run(p).then((v) => ({ v }), (e) => ({ e }));
  assert.equal(clock.pendingDelays, 0, "no wait left pending");
  return { out, at, notes };
}

Deno.test("withKubeRetry: 429 waits Retry-After seconds, not the backoff; capped at maxDelayMs", async () => {
  const { out, at, notes } = await retried([
    answer(429, "TooManyRequests", { "retry-after": "2" }),
    answer(429, "TooManyRequests", { "retry-after": "1" }),
    answer(429, "TooManyRequests", { "retry-after": "3600" }),
  ], "ok");
  assert.deepEqual(out, { v: "ok" });
  assert.deepEqual(at, [0, 2000, 3000, 8000]);
  assert.deepEqual(notes, [
    "create pod p: HTTP 429; retry 1/5 in 2000 ms",
    "create pod p: HTTP 429; retry 2/5 in 1000 ms",
    "create pod p: HTTP 429; retry 3/5 in 5000 ms",
  ]);
});

Deno.test("withKubeRetry: 5xx back off exponentially; the last becomes a KubeApiError with the server's status", async () => {
  const fails = Array.from({ length: 6 }, () => answer(503, "ServiceUnavailable"));
  const { out, at } = await retried(fails, "never");
  assert.deepEqual(at, [0, 250, 750, 1750, 3750, 7750]);
  assert.ok("e" in out && out.e instanceof KubeApiError);
  const e = out.e as KubeApiError;
  assert.equal(e.operation, "create pod p");
  assert.equal(e.status, 503);
  assert.equal(e.reason, "ServiceUnavailable");
  assert.equal(e.detail, "ServiceUnavailable (test)");
  assert.equal(e.attempts, 6);
  assert.ok(e.cause instanceof ApiException);
  assert.equal(
    e.message,
    "kubernetes API: create pod p failed (HTTP 503 ServiceUnavailable): " +
      "ServiceUnavailable (test) [after 6 attempts]",
  );
});

Deno.test("withKubeRetry: a dropped connection is retried; 4xx answers fail at once", async () => {
  const dropped = new TypeError("error sending request: connection reset");
  const { out, at } = await retried([dropped], 1);
  assert.deepEqual(out, { v: 1 });
  assert.deepEqual(at, [0, 250]);
  for (const [code, reason] of [[403, "Forbidden"], [404, "NotFound"], [422, "Invalid"]] as const) {
    const r = await retried([answer(code, reason)], 1);
    assert.deepEqual(r.at, [0], `${code}: one attempt`);
    const e = "e" in r.out ? r.out.e as KubeApiError : undefined;
    assert.ok(e instanceof KubeApiError && e.status === code && e.reason === reason);
  }
});

Deno.test("withKubeRetry: an abort during the backoff ends it with the signal's reason, at once", async () => {
  const clock = new FakeClock();
  const ctl = new AbortController();
  clock.after(1000, () => ctl.abort(new Error("stop")));
  const p = withKubeRetry("list pods", () =>
    Promise.reject(answer(429, "TooManyRequests", {
      "retry-after": "60",
    })), { signal: ctl.signal, policy: { ...POLICY, maxDelayMs: 60_000 }, clock });
  await assert.rejects(clock.run(p), /^Error: stop$/);
  assert.equal(clock.elapsed, 1000);
  assert.equal(clock.pendingDelays, 0);
});
