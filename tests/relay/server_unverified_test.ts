import assert from "node:assert/strict";
import { tempDir } from "../_helpers/mod.ts";
import { type Relay, startRelay } from "../../lib/relay/mod.ts";
import { curl } from "./server_harness.ts";

/** Headers of a request signed with the relay's access key but a forged signature. */
function forgedHead(relay: Relay, path: string, extra: string[]): string {
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  return [
    `PUT ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${relay.port}`,
    `X-Amz-Date: ${amzDate}`,
    `Authorization: AWS4-HMAC-SHA256 Credential=${relay.credentials.accessKey}/${
      amzDate.slice(0, 8)
    }/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`,
    ...extra,
    "",
    "",
  ].join("\r\n");
}

/** Reads from `conn` until the server closes it or `deadline`; returns what arrived. */
async function readUntilClosed(conn: Deno.Conn, deadline: number): Promise<string | undefined> {
  const buf = new Uint8Array(4096);
  let text = "";
  const timer = setTimeout(() => conn.close(), Math.max(0, deadline - Date.now()));
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return text;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch {
    return undefined; // closed by us at the deadline: the relay never closed it
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("relay: unverified bodies are bounded in size and time (item 8)", async (t) => {
  await using tmp = await tempDir("gp-relay-unverified-");
  await Deno.mkdir(`${tmp.path}/bkt`);
  await using relay = await startRelay({
    root: tmp.path,
    unverifiedBodies: { timeoutMs: 1500 },
  });
  const cfg = { cfg: relay.config() };

  await t.step(
    "60 stalled forged uploads are all answered and closed in bounded time",
    async () => {
      const t0 = Date.now();
      const conns = await Promise.all(
        Array.from({ length: 60 }, () => Deno.connect({ hostname: "127.0.0.1", port: relay.port })),
      );
      const enc = new TextEncoder();
      await Promise.all(conns.map((c, i) =>
        c.write(enc.encode(
          forgedHead(relay, `/bkt/forged${i}`, ["Content-Length: 500000"]) + "x".repeat(1000),
        ))
      ));
      // Other clients are served meanwhile.
      const ok = await curl(cfg, [`http://127.0.0.1:${relay.port}/bkt?list-type=2`]);
      assert.equal(ok.status, 200);
      const answers = await Promise.all(conns.map((c) => readUntilClosed(c, t0 + 10_000)));
      const elapsed = Date.now() - t0;
      for (const [i, a] of answers.entries()) {
        assert.ok(a !== undefined, `connection ${i} was never closed by the relay`);
        assert.match(a, /^HTTP\/1\.1 (403|503) /, `connection ${i}: ${a.slice(0, 80)}`);
      }
      assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
      for await (const e of Deno.readDir(`${tmp.path}/bkt`)) {
        assert.fail(
          `object created: ${e.name}`,
        );
      }
    },
  );

  await t.step("a declared body over 1 MiB is refused at once, without reading it", async () => {
    const t0 = Date.now();
    const c = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
    await c.write(new TextEncoder().encode(
      forgedHead(relay, "/bkt/big", [`Content-Length: ${2 << 20}`]),
    ));
    const a = await readUntilClosed(c, t0 + 5_000);
    assert.ok(a !== undefined, "never closed");
    assert.match(a, /^HTTP\/1\.1 403 /);
    assert.ok(Date.now() - t0 < 1500, `waited ${Date.now() - t0} ms`);
  });

  await t.step(
    "Expect: 100-continue gets no 100 before a forged signature is refused",
    async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
      await c.write(new TextEncoder().encode(
        forgedHead(relay, "/bkt/continue", [
          "Content-Length: 100000",
          "Expect: 100-continue",
          `x-amz-content-sha256: UNSIGNED-PAYLOAD`,
        ]),
      ));
      const a = await readUntilClosed(c, Date.now() + 5_000);
      assert.ok(a !== undefined, "never closed");
      assert.match(a, /^HTTP\/1\.1 403 /);
      assert.ok(!a.includes("100 Continue"));
    },
  );

  await t.step("a genuine upload with Expect: 100-continue still works (curl)", async () => {
    const src = `${tmp.path}/payload`;
    await Deno.writeFile(src, new Uint8Array(2 << 20).fill(5));
    const r = await curl(cfg, [
      "-H",
      "Expect: 100-continue",
      "-H",
      "x-amz-content-sha256: UNSIGNED-PAYLOAD",
      "-T",
      src,
      `http://127.0.0.1:${relay.port}/bkt/genuine`,
    ]);
    assert.equal(r.status, 200, r.body);
    assert.equal((await Deno.stat(`${tmp.path}/bkt/genuine`)).size, 2 << 20);
  });
});
