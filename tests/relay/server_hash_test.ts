import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { HashPool } from "../../lib/relay/server_hash.ts";

function chunks(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const n of [1, 65536, 3 << 20, 12345, 0, 1 << 20]) {
    const b = new Uint8Array(n);
    for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
    out.push(b);
  }
  return out;
}

for (const size of [0, 1, 2]) {
  Deno.test(`HashPool(${size}): md5 and sha256 match node:crypto, with flow control`, async () => {
    const pool = new HashPool(size);
    await pool.start();
    try {
      const data = chunks();
      const s = pool.session(["md5", "sha256"]);
      let pauses = 0;
      for (const c of data) {
        s.update(c);
        if (s.congested) {
          pauses++;
          await new Promise<void>((r) => s.onDrain(r));
        }
      }
      const [md5, sha] = await s.digest();
      const want = (alg: string) => {
        const h = createHash(alg);
        for (const c of data) h.update(c);
        return h.digest("hex");
      };
      assert.equal(md5, want("md5"));
      assert.equal(sha, want("sha256"));
      if (size === 0) assert.equal(pauses, 0);
      // concurrent sessions do not mix
      const a = pool.session(["md5"]);
      const b = pool.session(["md5"]);
      a.update(new Uint8Array([1, 2, 3]));
      b.update(new Uint8Array([4, 5]));
      const [[ma], [mb]] = await Promise.all([a.digest(), b.digest()]);
      assert.equal(ma, createHash("md5").update(new Uint8Array([1, 2, 3])).digest("hex"));
      assert.equal(mb, createHash("md5").update(new Uint8Array([4, 5])).digest("hex"));
      pool.session(["md5"]).drop();
    } finally {
      pool.close();
    }
  });
}
