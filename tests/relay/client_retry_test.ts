/**
 * Retries: withRetry on its own (fakes), and ArtifactStore through a fault-injecting
 * node:http proxy in front of an in-process relay (503 SlowDown, hangs), plus a refused
 * connection, non-transient errors and aborts.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { minioFor } from "../_helpers/minio.ts";
import {
  ArtifactStore,
  IntegrityError,
  isTransientError,
  type RelayConfig,
  resolveEndpoint,
  STAMP_METADATA_KEY,
  startRelay,
  StoreError,
  withRetry,
} from "../../lib/relay/mod.ts";
import { tempDir, waitFor } from "../_helpers/mod.ts";

// ---- withRetry with fakes ------------------------------------------------------------------

/** A `get b/k` failure as the store reports it. */
const getError = (code: string, message: string, status: number) =>
  new StoreError({ op: "get", bucket: "b", key: "k", code, message, status });

const transient = () =>
  new StoreError({
    op: "put",
    bucket: "b",
    key: "k",
    code: "SlowDown",
    message: "slow down",
    status: 503,
  });

Deno.test("withRetry: transient failures are retried with exponential backoff, then succeed", async () => {
  const delays: number[] = [];
  let calls = 0;
  const v = await withRetry((attempt) => {
    calls++;
    assert.equal(attempt, calls);
    return calls < 3 ? Promise.reject(transient()) : Promise.resolve("done");
  }, {
    baseDelayMs: 4,
    random: () => 1,
    onRetry: ({ delayMs }) => delays.push(delayMs),
  });
  assert.equal(v, "done");
  assert.equal(calls, 3);
  assert.deepEqual(delays, [4, 8]);
});

Deno.test("withRetry: bounded attempts, delays capped, jitter between half and all", async () => {
  const delays: number[] = [];
  let calls = 0;
  const err = transient();
  await assert.rejects(
    withRetry(() => {
      calls++;
      return Promise.reject(err);
    }, {
      attempts: 5,
      baseDelayMs: 2,
      maxDelayMs: 6,
      random: () => 0,
      onRetry: ({ delayMs }) => delays.push(delayMs),
    }),
    (e) => e === err,
  );
  assert.equal(calls, 5);
  assert.deepEqual(delays, [1, 2, 3, 3], "half of 2, 4, 6 (capped), 6 (capped)");
});

Deno.test("withRetry: non-transient errors are not retried", async () => {
  for (
    const err of [
      getError("AccessDenied", "denied", 403),
      getError("NoSuchKey", "missing", 404),
      new IntegrityError("qemu", "b", "k", "sha256", "aa", "bb"),
      new TypeError("bug"),
      new DOMException("aborted", "AbortError"),
    ]
  ) {
    let calls = 0;
    await assert.rejects(
      withRetry(() => {
        calls++;
        return Promise.reject(err);
      }, { baseDelayMs: 1 }),
      (e) => e === err,
    );
    assert.equal(calls, 1, `${err} must not be retried`);
  }
});

Deno.test("withRetry: abort during the backoff delay ends it at once", async () => {
  const ac = new AbortController();
  const reason = new Error("user pressed ^C");
  let calls = 0;
  const started = Date.now();
  const p = withRetry(() => {
    calls++;
    queueMicrotask(() => ac.abort(reason));
    return Promise.reject(transient());
  }, { baseDelayMs: 60_000, signal: ac.signal });
  await assert.rejects(p, (e) => e === reason);
  assert.equal(calls, 1);
  assert.ok(Date.now() - started < 5_000);
  let called = false;
  await assert.rejects(
    withRetry(() => {
      called = true;
      return Promise.resolve(1);
    }, { signal: AbortSignal.abort(reason) }),
    (e) => e === reason,
  );
  assert.equal(called, false, "an aborted signal never starts fn");
});

Deno.test("isTransientError classifies network, HTTP and S3 errors", () => {
  const yes: unknown[] = [
    new Deno.errors.ConnectionRefused("refused"),
    new Deno.errors.ConnectionReset("reset"),
    Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
    Object.assign(new Error("t"), { code: "ETIMEDOUT" }),
    new Error("wrapped", { cause: Object.assign(new Error("x"), { code: "EPIPE" }) }),
    getError("InternalError", "boom", 500),
    getError("TooManyRequests", "slow", 429),
    new StoreError({ op: "get", bucket: "b", key: "k", code: "SlowDown", message: "slow" }),
  ];
  const no: unknown[] = [
    getError("AccessDenied", "no", 403),
    getError("SignatureDoesNotMatch", "no", 403),
    getError("NoSuchKey", "no", 404),
    getError("NotImplemented", "no", 501),
    new IntegrityError("a", "b", "k", "size", 1, 2),
    new DOMException("aborted", "AbortError"),
    new TypeError("x"),
    "a string",
  ];
  for (const e of yes) assert.equal(isTransientError(e), true, String(e));
  for (const e of no) assert.equal(isTransientError(e), false, String(e));
});

// ---- endpoint from a config file -------------------------------------------------------------

const base: RelayConfig = {
  accesskey: "AK",
  secretkey: "SK",
  host: "127.0.0.1",
  port: 9000,
  region: "",
  external_server: true,
  secure: false,
};

Deno.test("resolveEndpoint honours secure, scheme-less and schemed hosts, and region", () => {
  assert.deepEqual(resolveEndpoint(base), {
    endPoint: "127.0.0.1",
    port: 9000,
    useSSL: false,
    region: "us-east-1",
    pathStyle: true,
  });
  assert.deepEqual(
    resolveEndpoint({ ...base, host: "minio.example.com", port: 9443, secure: true, region: "r1" }),
    { endPoint: "minio.example.com", port: 9443, useSSL: true, region: "r1", pathStyle: true },
  );
  assert.deepEqual(
    resolveEndpoint({ ...base, host: "https://s3.example.com:8443", port: 0 }),
    { endPoint: "s3.example.com", port: 8443, useSSL: true, region: "us-east-1", pathStyle: true },
  );
  assert.deepEqual(
    resolveEndpoint({ ...base, host: "s3.amazonaws.com", port: 443, region: "eu-west-1" }),
    {
      endPoint: "s3.amazonaws.com",
      port: 443,
      useSSL: true,
      region: "eu-west-1",
      pathStyle: false,
    },
  );
  assert.equal(resolveEndpoint({ ...base, host: "[::1]", port: 0 }).port, 80);
  assert.equal(resolveEndpoint({ ...base, host: "[::1]", port: 0 }).endPoint, "::1");
});

// ---- through a fault-injecting proxy -------------------------------------------------------

type Rule = "pass" | "503" | "hang";

interface Proxy extends AsyncDisposable {
  cfg: RelayConfig;
  seen: string[];
  hanging: http.ServerResponse[];
  plan: (method: string, url: string) => Rule;
}

async function startProxy(upstream: { hostname: string; port: number }, cfg: RelayConfig) {
  const p: Proxy = {
    cfg: { ...cfg },
    seen: [],
    hanging: [],
    plan: () => "pass",
    async [Symbol.asyncDispose]() {
      for (const r of p.hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    p.seen.push(line);
    const rule = p.plan(req.method ?? "GET", req.url ?? "/");
    if (rule === "hang") {
      p.hanging.push(res);
      return;
    }
    if (rule === "503") {
      req.resume();
      req.on("end", () => {
        const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>' +
          "<Message>Please reduce your request rate.</Message></Error>";
        res.writeHead(503, { "content-type": "application/xml", "content-length": body.length });
        res.end(req.method === "HEAD" ? undefined : body);
      });
      return;
    }
    const up = http.request({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  p.cfg.port = (server.address() as AddressInfo).port;
  return p;
}

const count = (seen: string[], re: RegExp) => seen.filter((l) => re.test(l)).length;

Deno.test("ArtifactStore retries transient failures and nothing else", async (t) => {
  await using tmp = await tempDir();
  const served = `${tmp.path}/served`;
  await Deno.mkdir(served);
  await using relay = await startRelay({ root: served });
  await using proxy = await startProxy(relay, relay.config());
  const logs: string[] = [];
  await using store = ArtifactStore.fromConfig(proxy.cfg, {
    log: (m) => logs.push(m),
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
  });
  const src = `${tmp.path}/src.bin`;
  await Deno.writeTextFile(src, "payload through a flaky proxy");

  await t.step("PUT: 503 twice, then it goes through", async () => {
    let fails = 2;
    proxy.plan = (
      m,
      url,
    ) => (m === "PUT" && url.startsWith("/flaky/a/") && fails-- > 0 ? "503" : "pass");
    await store.putFile("flaky", "a/src.bin", src);
    assert.equal(count(proxy.seen, /^PUT \/flaky\/a\/src\.bin/), 3);
    assert.equal(
      await Deno.readTextFile(`${served}/flaky/a/src.bin`),
      await Deno.readTextFile(src),
    );
    const retries = logs.filter((l) => /retrying/.test(l));
    assert.equal(retries.length, 2, logs.join("\n"));
    assert.match(
      retries[0],
      /^put flaky\/a\/src\.bin: .*SlowDown.*retrying in \d+ ms \(attempt 2\/4\)$/,
    );
  });

  await t.step("GET: 503 twice, then the fetch completes", async () => {
    proxy.seen.length = 0;
    let fails = 2;
    proxy.plan = (m) => (m === "GET" && fails-- > 0 ? "503" : "pass");
    const r = await store.fetchFile("flaky", "a/src.bin", `${tmp.path}/got/src.bin`);
    assert.equal(r.bytes, 29);
    assert.equal(count(proxy.seen, /^GET \/flaky\/a\/src\.bin/), 3);
    assert.equal(await Deno.readTextFile(`${tmp.path}/got/src.bin`), await Deno.readTextFile(src));
  });

  await t.step("always 503: gives up after 4 attempts with a transient StoreError", async () => {
    proxy.seen.length = 0;
    proxy.plan = (m) => (m === "GET" ? "503" : "pass");
    const err = await store.getText("flaky", "a/src.bin").then(() => null, (e) => e);
    assert.ok(err instanceof StoreError, String(err));
    assert.equal(err.code, "SlowDown");
    assert.equal(err.status, 503);
    assert.equal(err.transient, true);
    assert.equal(count(proxy.seen, /^GET /), 4);
  });

  await t.step("NoSuchKey is not retried and leaves no file", async () => {
    proxy.seen.length = 0;
    proxy.plan = () => "pass";
    const dest = `${tmp.path}/missing/x.bin`;
    const err = await store.fetchFile("flaky", "nope.bin", dest).then(() => null, (e) => e);
    assert.ok(err instanceof StoreError && err.code === "NoSuchKey", String(err));
    assert.equal(err.transient, false);
    assert.equal(count(proxy.seen, /^GET \/flaky\/nope\.bin/), 1);
    const left: string[] = [];
    for await (const e of Deno.readDir(`${tmp.path}/missing`)) left.push(e.name);
    assert.deepEqual(left, []);
  });

  await t.step("wrong secret key: 403, not retried", async () => {
    proxy.seen.length = 0;
    await using bad = ArtifactStore.fromConfig({ ...proxy.cfg, secretkey: "wrong-secret-key" }, {
      retry: { baseDelayMs: 5 },
    });
    const err = await bad.putText("flaky", "x", "y").then(() => null, (e) => e);
    assert.ok(err instanceof StoreError, String(err));
    assert.equal(err.status, 403);
    assert.ok(["AccessDenied", "SignatureDoesNotMatch"].includes(err.code), err.code);
    assert.equal(err.transient, false);
    assert.equal(proxy.seen.length, 1, proxy.seen.join("\n"));
    assert.ok(!err.message.includes("wrong-secret-key"), "no secret in the message");
  });

  await t.step("abort while the request hangs: rejects with the reason, no temp file", async () => {
    proxy.seen.length = 0;
    proxy.plan = (m) => (m === "GET" ? "hang" : "pass");
    const ac = new AbortController();
    const reason = new Error("cancelled by test");
    const dir = `${tmp.path}/aborted`;
    const p = store.fetchFile("flaky", "a/src.bin", `${dir}/src.bin`, { signal: ac.signal });
    await waitFor(() => proxy.hanging.length === 1, { what: "the GET to hang" });
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    const left: string[] = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assert.deepEqual(left, []);
  });

  await t.step("abort while a PUT hangs: rejects with the reason, no object stored", async () => {
    proxy.seen.length = 0;
    proxy.plan = (m, url) => (m === "PUT" && url.startsWith("/flaky/hang") ? "hang" : "pass");
    const ac = new AbortController();
    const reason = new Error("cancelled upload");
    const p = store.putFile("flaky", "hang.bin", src, { signal: ac.signal });
    await waitFor(() => proxy.hanging.length === 2, { what: "the PUT to hang" });
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.equal(await store.exists("flaky", "hang.bin"), false);
    await assert.rejects(
      store.putFile("flaky", "x", `${tmp.path}/no-such-file`),
      (e) => e instanceof StoreError && e.code === "ENOENT" && !e.transient,
    );
  });

  await t.step("abort during backoff stops the retries", async () => {
    proxy.seen.length = 0;
    proxy.plan = () => "503";
    await using slow = ArtifactStore.fromConfig(proxy.cfg, { retry: { baseDelayMs: 60_000 } });
    const ac = new AbortController();
    const reason = new Error("stop");
    const started = Date.now();
    const p = slow.getText("flaky", "a/src.bin", { signal: ac.signal });
    await waitFor(() => proxy.seen.length === 1, { what: "the first attempt" });
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(proxy.seen.length, 1);
  });
});

Deno.test("connection refused is transient: retried, then a StoreError", async () => {
  // A port that was just free: bind, note it, close.
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  let retries = 0;
  await using store = ArtifactStore.fromConfig({ ...base, port }, {
    retry: { attempts: 3, baseDelayMs: 5, onRetry: () => retries++ },
  });
  const err = await store.getText("bkt", "x").then(() => null, (e) => e);
  assert.ok(err instanceof StoreError, String(err));
  assert.equal(err.transient, true, `${err.code}: ${err.message}`);
  assert.equal(retries, 2);
  // The same for a download (fetched at a presigned URL, which never shows in the error).
  await using tmp = await tempDir();
  const err2 = await store.fetchFile("bkt", "x", `${tmp.path}/x`).then(() => null, (e) => e);
  assert.ok(err2 instanceof StoreError, String(err2));
  assert.equal(err2.transient, true, `${err2.code}: ${err2.message}`);
  assert.equal(retries, 4);
  assert.ok(!/X-Amz-Signature/i.test(err2.message), err2.message);
});

Deno.test("putFile in parts: a failed part alone is re-sent; a failed upload is aborted", async (t) => {
  await using tmp = await tempDir();
  const served = `${tmp.path}/served`;
  await Deno.mkdir(served);
  await using relay = await startRelay({ root: served });
  await using proxy = await startProxy(relay, relay.config());
  const MiB = 1024 * 1024;
  const updates: number[] = [];
  await using store = ArtifactStore.fromConfig(proxy.cfg, {
    partSize: 5 * MiB,
    retry: { baseDelayMs: 5, maxDelayMs: 20, attempts: 3 },
    progress: () => ({ update: (n: number) => updates.push(n), done: () => {} }),
  });
  const src = `${tmp.path}/parts.bin`;
  const data = new Uint8Array(12 * MiB);
  for (let off = 0; off < data.length; off += 65536) {
    crypto.getRandomValues(data.subarray(off, off + 65536));
  }
  await Deno.writeFile(src, data);

  await t.step("part 2 fails twice: parts 1 and 3 are sent once, part 2 three times", async () => {
    let fails = 2;
    proxy.plan = (m, url) =>
      m === "PUT" && /partNumber=2&/.test(url) && fails-- > 0 ? "503" : "pass";
    await store.putFile("flaky", "parts.bin", src);
    assert.equal(count(proxy.seen, /^PUT \/flaky\/parts\.bin\?partNumber=1&/), 1);
    assert.equal(count(proxy.seen, /^PUT \/flaky\/parts\.bin\?partNumber=2&/), 3);
    assert.equal(count(proxy.seen, /^PUT \/flaky\/parts\.bin\?partNumber=3&/), 1);
    assert.deepEqual(await Deno.readFile(`${served}/flaky/parts.bin`), data);
    // Progress counts each byte once, retries included.
    assert.equal(updates.reduce((a, b) => a + b, 0), data.length);
    assert.equal(store.stats.bytesOut, data.length);
    const st = await store.stat("flaky", "parts.bin");
    assert.ok(st?.metadata?.[STAMP_METADATA_KEY], JSON.stringify(st));
  });

  await t.step("part 3 always fails: a transient StoreError, the upload is aborted", async () => {
    proxy.seen.length = 0;
    proxy.plan = (m, url) => (m === "PUT" && /partNumber=3&/.test(url) ? "503" : "pass");
    const err = await store.putFile("flaky", "never.bin", src).then(() => null, (e) => e);
    assert.ok(err instanceof StoreError && err.transient, String(err));
    assert.equal(count(proxy.seen, /^DELETE \/flaky\/never\.bin\?uploadId=/), 1);
    assert.equal(await store.exists("flaky", "never.bin"), false);
    // Nothing in flight remains: the relay lists no incomplete upload for the key.
    const cfg = relay.config();
    const agent = new http.Agent({ keepAlive: false });
    try {
      const mc = minioFor(cfg, { transportAgent: agent });
      const left: unknown[] = [];
      for await (const u of mc.listIncompleteUploads("flaky", "never.bin", true)) left.push(u);
      assert.deepEqual(left, []);
    } finally {
      agent.destroy();
    }
  });
});
