import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import * as http from "node:http";
import { minioFor } from "../_helpers/minio.ts";
import { tempDir } from "../_helpers/mod.ts";
import { startRelay } from "../../lib/relay/mod.ts";

Deno.test("startRelay in-process: config, stats, bucketDirs, dispose releases everything", async () => {
  await using tmp = await tempDir("gp-relay-inproc-");
  const lines: string[] = [];
  const relay = await startRelay({
    root: tmp.path,
    bucketDirs: { builder: "builds" },
    stateDir: `${tmp.path}/.state`,
    log: (m) => lines.push(m),
  });
  try {
    const cfg = relay.config();
    assert.equal(cfg.host, "127.0.0.1");
    assert.equal(cfg.port, relay.port);
    assert.equal(cfg.accesskey, relay.credentials.accessKey);
    assert.equal(cfg.external_server, true);
    const mc = minioFor(cfg);
    await mc.makeBucket("builder", cfg.region);
    const data = new Uint8Array(3 * 1024 * 1024).fill(7);
    const r = await mc.putObject("builder", "1/x86_64/a.bin", Buffer.from(data));
    assert.equal(r.etag, createHash("md5").update(data).digest("hex"));
    assert.equal((await Deno.stat(`${tmp.path}/builds/1/x86_64/a.bin`)).size, data.length);
    assert.ok(relay.stats.bytesIn >= data.length);
    const s = await mc.getObject("builder", "1/x86_64/a.bin");
    for await (const _ of s) { /* drain */ }
    assert.ok(relay.stats.bytesOut >= data.length);
    assert.ok(lines.every((l) => !l.includes(cfg.secretkey)));
    // The state dir is where we asked, and not a bucket.
    assert.ok((await Deno.stat(`${tmp.path}/.state/meta`)).isDirectory);
  } finally {
    await relay.close();
  }
  await relay.close(); // idempotent
});

Deno.test("startRelay: abort signal closes the server", async () => {
  await using tmp = await tempDir("gp-relay-abort-");
  const ac = new AbortController();
  const relay = await startRelay({ root: tmp.path, signal: ac.signal });
  ac.abort();
  await relay.close();
  await assert.rejects(
    fetch(`http://127.0.0.1:${relay.port}/`).then((r) => r.body?.cancel()),
  );
});

/** A hand-written STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload (as the AWS SDKs send). */
Deno.test("relay accepts aws-chunked signed streaming uploads and rejects forged chunks", async () => {
  await using tmp = await tempDir("gp-relay-chunked-");
  await Deno.mkdir(`${tmp.path}/bkt`);
  await using relay = await startRelay({ root: tmp.path });
  const { accessKey, secretKey } = relay.credentials;
  const hmac = (k: Buffer | string, d: string) => createHmac("sha256", k).update(d).digest();
  const hex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

  const send = (payload: Uint8Array[], forge: boolean) => {
    const now = new Date();
    const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    const date = amzDate.slice(0, 8);
    const scope = `${date}/us-east-1/s3/aws4_request`;
    const host = `127.0.0.1:${relay.port}`;
    const total = payload.reduce((n, c) => n + c.length, 0);
    const chunks = [...payload, new Uint8Array(0)];
    const sigLen = (n: number) => n.toString(16).length + ";chunk-signature=".length + 64 + 4 + n;
    const bodyLen = chunks.reduce((n, c) => n + sigLen(c.length), 0);
    const headers: Record<string, string> = {
      host,
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "x-amz-date": amzDate,
      "x-amz-decoded-content-length": String(total),
      "content-encoding": "aws-chunked",
      "content-length": String(bodyLen),
    };
    const signed = Object.keys(headers).sort();
    const canonical = [
      "PUT",
      "/bkt/streamed.bin",
      "",
      signed.map((h) => `${h}:${headers[h]}`).join("\n") + "\n",
      signed.join(";"),
      "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    ].join("\n");
    const key = hmac(hmac(hmac(hmac("AWS4" + secretKey, date), "us-east-1"), "s3"), "aws4_request");
    const seed = createHmac("sha256", key)
      .update(["AWS4-HMAC-SHA256", amzDate, scope, hex(canonical)].join("\n")).digest("hex");
    let prev = seed;
    const parts: Buffer[] = [];
    for (const c of chunks) {
      let sig = createHmac("sha256", key).update(
        ["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, prev, hex(""), hex(c)].join("\n"),
      ).digest("hex");
      prev = sig;
      if (forge && c.length > 0) sig = "0".repeat(64);
      parts.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`));
      parts.push(Buffer.from(c), Buffer.from("\r\n"));
    }
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope}, ` +
      `SignedHeaders=${signed.join(";")}, Signature=${seed}`;
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: relay.port,
        method: "PUT",
        path: "/bkt/streamed.bin",
        headers,
        agent: false,
      }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.end(Buffer.concat(parts));
    });
  };
  const a = new Uint8Array(70000).fill(1);
  const b = new TextEncoder().encode("tail");
  const ok = await send([a, b], false);
  assert.equal(ok.status, 200, ok.body);
  const got = await Deno.readFile(`${tmp.path}/bkt/streamed.bin`);
  assert.equal(got.length, a.length + b.length);
  assert.deepEqual(got.subarray(a.length), b);
  const cfg = relay.config();
  const mc = minioFor(cfg);
  const st = await mc.statObject("bkt", "streamed.bin");
  assert.equal(st.size, a.length + b.length);
  assert.equal(st.metaData["content-encoding"], undefined, "aws-chunked is not stored");
  const forged = await send([b], true);
  assert.equal(forged.status, 403, forged.body);
  assert.match(forged.body, /SignatureDoesNotMatch/);
  assert.equal((await Deno.stat(`${tmp.path}/bkt/streamed.bin`)).size, a.length + b.length);
});

/** `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, what recent AWS SDKs and aws-cli send by default. */
Deno.test("relay accepts unsigned aws-chunked uploads with trailers", async () => {
  await using tmp = await tempDir("gp-relay-trailer-");
  await Deno.mkdir(`${tmp.path}/bkt`);
  await using relay = await startRelay({ root: tmp.path });
  const { accessKey, secretKey } = relay.credentials;
  const hmac = (k: Buffer | string, d: string) => createHmac("sha256", k).update(d).digest();
  const hex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const date = amzDate.slice(0, 8);
  const scope = `${date}/us-east-1/s3/aws4_request`;
  const body = Buffer.from(
    "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
  );
  const headers: Record<string, string> = {
    host: `127.0.0.1:${relay.port}`,
    "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "x-amz-date": amzDate,
    "x-amz-decoded-content-length": "11",
    "x-amz-trailer": "x-amz-checksum-crc32",
    "content-encoding": "aws-chunked",
    "content-length": String(body.length),
  };
  const signed = Object.keys(headers).sort();
  const canonical = [
    "PUT",
    "/bkt/trailer.txt",
    "",
    signed.map((h) => `${h}:${headers[h]}`).join("\n") + "\n",
    signed.join(";"),
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  ].join("\n");
  const key = hmac(hmac(hmac(hmac("AWS4" + secretKey, date), "us-east-1"), "s3"), "aws4_request");
  const sig = createHmac("sha256", key)
    .update(["AWS4-HMAC-SHA256", amzDate, scope, hex(canonical)].join("\n")).digest("hex");
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope}, ` +
    `SignedHeaders=${signed.join(";")}, Signature=${sig}`;
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: relay.port,
      method: "PUT",
      path: "/bkt/trailer.txt",
      headers,
      agent: false,
    }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
    req.on("error", reject);
    req.end(body);
  });
  assert.equal(status, 200);
  assert.equal(await Deno.readTextFile(`${tmp.path}/bkt/trailer.txt`), "hello world");
});
