import assert from "node:assert/strict";
import { extractMaxBytesOf, parseByteSize } from "../../lib/workspec/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";

Deno.test("parseByteSize: bytes, SI and binary units; junk is undefined", () => {
  assert.equal(parseByteSize("1000000"), 1_000_000);
  assert.equal(parseByteSize("500M"), 500_000_000);
  assert.equal(parseByteSize("1.5GiB"), 1.5 * 2 ** 30);
  assert.equal(parseByteSize("2 tb"), 2e12);
  for (const bad of ["", "lots", "-1", "1e9", "5 parsecs", "1GiBx"]) {
    assert.equal(parseByteSize(bad), undefined, bad);
  }
  assert.equal(extractMaxBytesOf({}), undefined);
  assert.equal(extractMaxBytesOf({ COSA_EXTRACT_MAX_BYTES: "64MiB" }), 64 * 2 ** 20);
  assert.throws(() => extractMaxBytesOf({ COSA_EXTRACT_MAX_BYTES: "x" }), UsageError);
});
