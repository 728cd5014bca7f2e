/**
 * SigV2 verification (lib/relay/sigv2.ts) with signatures computed here from the AWS
 * specification: header-signed and presigned requests, expiry, clock skew, tampering.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { isSigV2, verifyRequestV2 } from "../../lib/relay/sigv2.ts";
import { parseQuery } from "../../lib/relay/sigv4.ts";

const creds = {
  accessKey: "AKIDEXAMPLE000000000",
  secretKey: "secret/key+with=chars0000000000000000000",
};
const sign = (s: string) => createHmac("sha1", creds.secretKey).update(s).digest("base64");
const NOW = Date.UTC(2026, 11, 3, 10, 0, 0);
const DATE = new Date(NOW).toUTCString();

Deno.test("sigv2: a header-signed PUT verifies; tampering, skew, bad dates and keys are refused", () => {
  const toSign = `PUT\n\ntext/plain\n\nx-amz-date:${DATE}\nx-amz-meta-a:1\n/bkt/k%20x?uploads`;
  const headers = (sig: string, date = DATE, key = creds.accessKey) => [
    "Authorization",
    `AWS ${key}:${sig}`,
    "Content-Type",
    "text/plain",
    "x-amz-date",
    date,
    "X-Amz-Meta-A",
    "1",
  ];
  const req = (h: string[], url = "/bkt/k%20x?uploads") => ({
    method: "PUT",
    rawUrl: url,
    rawHeaders: h,
  });
  assert.ok(isSigV2(headers("x"), []));
  assert.equal(verifyRequestV2(req(headers(sign(toSign))), creds, NOW).ok, true);
  const tampered = verifyRequestV2(req(headers(sign(toSign)), "/bkt/k%20y?uploads"), creds, NOW);
  assert.equal(tampered.ok === false && tampered.code, "SignatureDoesNotMatch");
  const skewed = verifyRequestV2(req(headers(sign(toSign))), creds, NOW + 16 * 60_000);
  assert.equal(skewed.ok === false && skewed.code, "RequestTimeTooSkewed");
  const badDate = verifyRequestV2(req(headers(sign(toSign), "Bad Date")), creds, NOW);
  assert.equal(badDate.ok === false && badDate.code, "AccessDenied");
  const epoch = verifyRequestV2(
    req(headers(sign(toSign), "Tue, 07 Jul 1950 21:53:04 GMT")),
    creds,
    NOW,
  );
  assert.equal(epoch.ok === false && epoch.code, "AccessDenied");
  const key = verifyRequestV2(req(headers(sign(toSign), DATE, "AKIDOTHER")), creds, NOW);
  assert.equal(key.ok === false && key.code, "InvalidAccessKeyId");
  const malformed = verifyRequestV2(req(["Authorization", "AWS HAHAHA"]), creds, NOW);
  assert.equal(malformed.ok === false && malformed.status, 400);
});

Deno.test("sigv2: presigned URLs (AWSAccessKeyId/Expires/Signature) verify until they expire", () => {
  const expires = Math.floor(NOW / 1000) + 60;
  const sig = sign(`GET\n\n\n${expires}\n/bkt/obj?response-content-type=text/plain`);
  const url = (e: number, s: string) =>
    `/bkt/obj?AWSAccessKeyId=${creds.accessKey}&Expires=${e}&Signature=${encodeURIComponent(s)}` +
    `&response-content-type=text%2Fplain`;
  const req = (u: string) => ({ method: "GET", rawUrl: u, rawHeaders: ["Host", "x"] });
  assert.ok(isSigV2([], parseQuery(url(expires, sig).split("?")[1])!));
  assert.equal(verifyRequestV2(req(url(expires, sig)), creds, NOW).ok, true);
  const late = verifyRequestV2(req(url(expires, sig)), creds, NOW + 61_000);
  assert.equal(late.ok === false && late.code, "AccessDenied");
  const longer = verifyRequestV2(req(url(expires + 3600, sig)), creds, NOW);
  assert.equal(longer.ok === false && longer.code, "SignatureDoesNotMatch");
});
