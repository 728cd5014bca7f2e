/**
 * The worker-thread sha256 that verified fetches use: same digest as node:crypto over any
 * chunking, a bounded number of buffers however long the stream, and no hang once ended.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { streamHasher } from "../../lib/relay/client/hasher.ts";

Deno.test("streamHasher: 40 chunks of odd sizes hash like node:crypto, recycling 3 buffers", async () => {
  using h = streamHasher(64 * 1024, 3);
  const ref = createHash("sha256");
  for (let i = 0; i < 40; i++) {
    const buf = await h.buffer();
    assert.equal(buf.byteLength, 64 * 1024);
    const len = 1 + ((i * 7919) % buf.byteLength);
    crypto.getRandomValues(buf.subarray(0, Math.min(len, 65536)));
    const chunk = buf.subarray(0, len);
    ref.update(chunk);
    h.update(chunk);
    assert.equal(chunk.byteLength, 0, "the chunk is handed over (transferred), not copied");
  }
  assert.equal(await h.digest(), ref.digest("hex"));
});

Deno.test("streamHasher: a flipped byte changes the digest", async () => {
  const digestOf = async (flip: boolean) => {
    using h = streamHasher(1024, 2);
    for (let i = 0; i < 10; i++) {
      const buf = await h.buffer();
      buf.fill(i);
      if (flip && i === 9) buf[1023] ^= 1;
      h.update(buf);
    }
    return await h.digest();
  };
  assert.notEqual(await digestOf(false), await digestOf(true));
});

Deno.test("streamHasher: ended while waiting for a buffer -> the wait fails, no hang", async () => {
  const h = streamHasher(1024, 1);
  const first = await h.buffer();
  // The only buffer is lent out and never handed back: the next wait must end on dispose.
  const waiting = h.buffer();
  h[Symbol.dispose]();
  await assert.rejects(waiting, /ended/);
  assert.equal(first.byteLength, 1024);
});
