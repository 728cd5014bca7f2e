/**
 * `secure: true` in the minio config means TLS: the store talks HTTPS to a TLS front (node:https
 * with a throwaway self-signed certificate made by openssl) of an in-process relay.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { ArtifactStore, startRelay, StoreError } from "../../lib/relay/mod.ts";
import { runCommand, tempDir } from "../_helpers/mod.ts";

Deno.test("secure config: HTTPS with a trusted CA works, untrusted or plain HTTP fails", async () => {
  await using tmp = await tempDir();
  const r = await runCommand("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${tmp.path}/key.pem`,
    "-out",
    `${tmp.path}/cert.pem`,
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const cert = await Deno.readTextFile(`${tmp.path}/cert.pem`);
  await Deno.mkdir(`${tmp.path}/served`);
  await using relay = await startRelay({ root: `${tmp.path}/served` });
  const seen: string[] = [];
  const front = https.createServer({
    key: await Deno.readTextFile(`${tmp.path}/key.pem`),
    cert,
  }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const up = http.request({
      host: relay.hostname,
      port: relay.port,
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
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", () => resolve()));
  try {
    const port = (front.address() as AddressInfo).port;
    const cfg = { ...relay.config(), port, secure: true };

    await using store = ArtifactStore.fromConfig(cfg, { ca: cert });
    assert.equal(store.endpoint.useSSL, true);
    await store.putText("tls", "a/b.txt", "over tls");
    assert.equal(await store.getText("tls", "a/b.txt"), "over tls");
    assert.equal(await Deno.readTextFile(`${tmp.path}/served/tls/a/b.txt`), "over tls");
    assert.ok(seen.some((l) => l.startsWith("PUT /tls/a/b.txt")), seen.join("\n"));
    // Files: streamed PUT and fetched GET over TLS with the private CA.
    await Deno.writeTextFile(`${tmp.path}/f.txt`, "file over tls");
    await store.putFile("tls", "a/f.txt", `${tmp.path}/f.txt`);
    await store.fetchFile("tls", "a/f.txt", `${tmp.path}/got/f.txt`);
    assert.equal(await Deno.readTextFile(`${tmp.path}/got/f.txt`), "file over tls");

    await using untrusted = ArtifactStore.fromConfig(cfg, { retry: { baseDelayMs: 1 } });
    const e1 = await untrusted.getText("tls", "a/b.txt").then(() => null, (e) => e);
    assert.ok(e1 instanceof StoreError, String(e1));
    assert.equal(e1.transient, false, `${e1.code} is not worth retrying`);
    const e3 = await untrusted.fetchFile("tls", "a/f.txt", `${tmp.path}/got/u.txt`)
      .then(() => null, (e) => e);
    assert.ok(e3 instanceof StoreError, String(e3));
    assert.equal(e3.transient, false, `${e3.code}: ${e3.message} is not worth retrying`);

    await using plain = ArtifactStore.fromConfig({ ...cfg, secure: false }, {
      retry: { baseDelayMs: 1 },
    });
    assert.equal(plain.endpoint.useSSL, false);
    const e2 = await plain.getText("tls", "a/b.txt").then(() => null, (e) => e);
    assert.ok(e2 instanceof StoreError, String(e2));
  } finally {
    front.closeAllConnections();
    await new Promise<void>((resolve) => front.close(() => resolve()));
  }
});
