/**
 * The pod watch's reconnection rules on fake time, with scripted connections in place of
 * client-node's `Watch.watch`: a drop after progress resumes at once from the last
 * resourceVersion, `410 Gone` relists, failed connections back off (Retry-After honoured) up to
 * `maxReconnects`, other answers give up at once, idle timeouts are not failures, a server
 * closing every watch at once is backed off from instead of hammered, and an abort closes the
 * connection. The same over a real HTTP watch: run_pod_test.ts (drops, 410) and
 * client_abort_test.ts.
 */
import assert from "node:assert/strict";
import { ApiException, type V1Pod } from "@kubernetes/client-node";
import { KubeApiError, type PodEvent } from "../../lib/kube/mod.ts";
import { type WatchConnect, watchPodEvents } from "../../lib/kube/watch.ts";
import { FakeClock } from "../_helpers/fake_clock.ts";

/** One connection's script: what the server sends once it is open. */
type Script = (c: {
  event: (type: string, obj: unknown) => void;
  done: (err: unknown) => void;
  at: (ms: number, fn: () => void) => void;
}) => void;

const pod = (rv: number, phase = "Running"): V1Pod => ({
  metadata: { name: "p", resourceVersion: String(rv) },
  status: { phase },
});

/** A fake server: connection `i` follows `scripts[i]`, or fails with `scripts[i]` when not a function. */
function server(clock: FakeClock, scripts: (Script | { reject: unknown })[]) {
  const opened: { at: number; rv: unknown; ctl: AbortController }[] = [];
  const connect: WatchConnect = (_path, query, onEvent, onDone) => {
    const s = scripts.shift();
    if (!s) throw new Error("no more connections scripted");
    const ctl = new AbortController();
    opened.push({ at: clock.elapsed, rv: query.resourceVersion, ctl });
    if (typeof s !== "function") return Promise.reject(s.reject);
    let ended = false;
    const done = (err: unknown) => {
      if (!ended) (ended = true, onDone(err));
    };
    ctl.signal.addEventListener("abort", () => done(null));
    s({
      event: (t, o) => !ended && onEvent(t, o),
      done,
      at: (ms, fn) => clock.after(ms, () => !ended && fn()),
    });
    return Promise.resolve(ctl);
  };
  return { connect, opened };
}

/** Runs the watch to its end on `clock`; returns the events as `TYPE rv`. */
async function watch(
  clock: FakeClock,
  connect: WatchConnect,
  opts: { readPod?: (n: string) => V1Pod | undefined; signal?: AbortSignal; max?: number } = {},
) {
  const logs: string[] = [];
  const events: string[] = [];
  const p = (async () => {
    for await (
      const ev of watchPodEvents(connect, "ns", "p", {
        signal: opts.signal ?? new AbortController().signal,
        resourceVersion: "1",
        maxReconnects: opts.max ?? 6,
        policy: { attempts: 6, baseDelayMs: 250, maxDelayMs: 5000 },
        log: (m) => logs.push(m),
        readPod: (n) => Promise.resolve(opts.readPod?.(n)),
        clock,
      })
    ) events.push(`${ev.type} ${(ev as PodEvent).pod.metadata?.resourceVersion ?? "-"}`);
  })();
  const out = await clock.run(p, { maxSteps: 1000 }).then(() => undefined, (e) => e);
  assert.equal(clock.pendingDelays, 0, "no wait left pending");
  return { events, logs, error: out as unknown };
}

Deno.test("watch: a drop after progress resumes at once from the last resourceVersion; nothing lost or repeated", async () => {
  const clock = new FakeClock();
  const s = server(clock, [
    (c) => {
      c.event("ADDED", pod(2));
      c.event("BOOKMARK", { metadata: { resourceVersion: "3" } });
      c.at(100, () => c.done(new TypeError("connection reset")));
    },
    (c) => {
      c.event("MODIFIED", pod(4));
      c.event("DELETED", pod(5));
    },
  ]);
  const { events, error } = await watch(clock, s.connect);
  assert.equal(error, undefined);
  assert.deepEqual(events, ["ADDED 2", "MODIFIED 4", "DELETED 5"]);
  assert.deepEqual(s.opened.map((o) => [o.at, o.rv]), [[0, "1"], [100, "3"]]);
});

Deno.test("watch: 410 Gone relists: the current pod, then on from its resourceVersion; gone → DELETED", async () => {
  const clock = new FakeClock();
  const s = server(clock, [
    (c) => c.event("ERROR", { kind: "Status", code: 410, reason: "Expired" }),
    (c) => c.at(50, () => c.done(new ApiException(410, "Gone", { reason: "Expired" }, {}))),
  ]);
  let reads = 0;
  const { events, error } = await watch(clock, s.connect, {
    readPod: () => ++reads === 1 ? pod(9) : undefined,
  });
  assert.equal(error, undefined);
  assert.deepEqual(events, ["MODIFIED 9", "DELETED -"]);
  assert.deepEqual(s.opened.map((o) => o.rv), ["1", "9"]);
});

Deno.test("watch: failed connections back off (Retry-After honoured), then give up with a KubeApiError", async () => {
  const busy = () => ({
    reject: new ApiException(429, "TooManyRequests", { reason: "TooManyRequests" }, {
      "retry-after": "2",
    }),
  });
  const clock = new FakeClock();
  const s = server(clock, [busy(), busy(), (c) => c.event("DELETED", pod(3))]);
  const ok = await watch(clock, s.connect);
  assert.deepEqual(ok.events, ["DELETED 3"]);
  assert.deepEqual(s.opened.map((o) => o.at), [0, 2000, 4000]);
  assert.equal(ok.logs.length, 2);

  const down = () => ({ reject: new ApiException(503, "Unavailable", { reason: "X" }, {}) });
  const clock2 = new FakeClock();
  const s2 = server(clock2, [down(), down(), down()]);
  const r = await watch(clock2, s2.connect, { max: 2 });
  assert.ok(r.error instanceof KubeApiError, String(r.error));
  assert.equal(r.error.operation, "watch pod p");
  assert.equal(r.error.status, 503);
  assert.equal(r.error.attempts, 3);
  assert.deepEqual(s2.opened.map((o) => o.at), [0, 250, 750]);

  const clock3 = new FakeClock();
  const forbidden = new ApiException(403, "Forbidden", { reason: "Forbidden" }, {});
  const s3 = server(clock3, [{ reject: forbidden }]);
  const f = await watch(clock3, s3.connect);
  assert.ok(f.error instanceof KubeApiError && f.error.status === 403, "403: at once");
  assert.equal(s3.opened.length, 1);
});

Deno.test("watch: idle timeouts (no event for 30 s) reconnect at once and are not failures", async () => {
  const clock = new FakeClock();
  const idle: Script = (c) =>
    c.at(30_000, () => c.done(new DOMException("timed out", "TimeoutError")));
  const s = server(clock, [...Array(10).fill(idle), (c) => c.event("DELETED", pod(2))]);
  const { events, error } = await watch(clock, s.connect, { max: 2 });
  assert.equal(error, undefined);
  assert.deepEqual(events, ["DELETED 2"]);
  assert.equal(clock.elapsed, 300_000);
});

Deno.test("watch: a server closing every watch at once is backed off from, then given up on", async () => {
  const clock = new FakeClock();
  const closes: Script = (c) => c.at(0, () => c.done(null));
  const s = server(clock, Array(8).fill(closes));
  const { error } = await watch(clock, s.connect, { max: 3 });
  assert.ok(error instanceof KubeApiError, String(error));
  assert.match(error.message, /the server closed the watch at once/);
  assert.deepEqual(s.opened.map((o) => o.at), [0, 250, 750, 1750]);
});

Deno.test("watch: an abort ends it with the reason and closes the connection", async () => {
  const clock = new FakeClock();
  const ctl = new AbortController();
  clock.after(500, () => ctl.abort(new Error("stop")));
  const s = server(clock, [(c) => c.event("ADDED", pod(2))]);
  const { events, error } = await watch(clock, s.connect, { signal: ctl.signal });
  assert.deepEqual(events, ["ADDED 2"]);
  assert.match(String(error), /stop/);
  assert.equal(s.opened[0].ctl.signal.aborted, true);
});
