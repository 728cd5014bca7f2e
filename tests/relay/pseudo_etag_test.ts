import assert from "node:assert/strict";
import { pseudoEtag } from "../../lib/relay/pseudo_etag.ts";

Deno.test("pseudoEtag: stable, visibly not an MD5, and different when any part of the version changes", () => {
  const base = [2049, 1_234_567, 16, 1_700_000_000_000] as const;
  const e = pseudoEtag(...base);
  assert.match(e, /^[0-9a-f]{32}-1$/);
  assert.equal(pseudoEtag(...base), e, "same version, same ETag");
  // Each number changed in its low bits, above 2^32, and the mtime by a fraction of a ms.
  const variants: [number, number, number, number][] = [
    [2050, base[1], base[2], base[3]],
    [2049 + 2 ** 32, base[1], base[2], base[3]],
    [base[0], base[1] + 1, base[2], base[3]],
    [base[0], base[1] + 2 ** 40, base[2], base[3]],
    [base[0], base[1], 17, base[3]],
    [base[0], base[1], 16 + 2 ** 33, base[3]],
    [base[0], base[1], base[2], base[3] + 1],
    [base[0], base[1], base[2], base[3] + 0.5],
    [base[0], base[1], base[2], base[3] + 2 ** 44],
    [base[1], base[0], base[2], base[3]], // the same numbers in other places
  ];
  const all = new Set([e, ...variants.map((v) => pseudoEtag(...v))]);
  assert.equal(all.size, variants.length + 1);
  // No collisions over a dense range of nearby versions (inode × size × mtime).
  const seen = new Set<string>();
  for (let ino = 0; ino < 200; ino++) {
    for (let size = 0; size < 50; size++) {
      for (const mtime of [0, 1, 1000]) seen.add(pseudoEtag(1, ino, size, mtime));
    }
  }
  assert.equal(seen.size, 200 * 50 * 3);
});
