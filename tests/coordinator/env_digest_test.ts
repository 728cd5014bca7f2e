/**
 * The workers' environment in the run state: keyed digests only. Attacked the way a leaked
 * state file would be: every 4-digit PIN tried against the digests a naive scheme would store.
 */
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { ENV_KEY_FILE, EnvDigest, loadEnvDigestKey } from "../../lib/coordinator/env_digest.ts";
import { tempDir } from "../_helpers/mod.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

Deno.test("env digest: same values (any order, another run's salt) compare equal; changes are named", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const rec = new EnvDigest({ B: "2", A: "1" }, key).record()!;
  assert.equal(new EnvDigest({ A: "1", B: "2" }, key).changes(rec), undefined);
  assert.equal(new EnvDigest({ A: "1", B: "3" }, key).changes(rec), "environment changed: B");
  assert.equal(
    new EnvDigest({ B: "2", C: "" }, key).changes(rec),
    "environment changed: C (added), A (removed)",
  );
  // A value moved from one name to another is a change of both.
  assert.equal(new EnvDigest({ A: "2", B: "1" }, key).changes(rec), "environment changed: A, B");
  // No environment then and now: nothing recorded, nothing to compare.
  assert.equal(new EnvDigest({}, key).record(), undefined);
  assert.equal(new EnvDigest({}, undefined).changes(undefined), undefined);
  assert.equal(
    new EnvDigest({ A: "1" }, key).changes(undefined),
    "environment changed: A (added)",
  );
  // Recorded without a key (none could be had): never taken as unchanged.
  const keyless = new EnvDigest({ A: "1" }, undefined).record()!;
  assert.deepEqual(keyless.values, { A: "" });
  assert.equal(
    new EnvDigest({ A: "1" }, key).changes(keyless),
    "environment not verifiable (it ran without a digest key): A",
  );
  assert.equal(
    new EnvDigest({ A: "1" }, undefined).changes(rec),
    "environment not verifiable (no digest key here): A",
  );
});

Deno.test("env digest: a short value cannot be brute-forced from the record (keyed, salted per run)", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const rec = new EnvDigest({ PIN: "4821" }, key).record()!;
  const again = new EnvDigest({ PIN: "4821" }, key).record()!;
  // Another run, same value: another salt, another digest (runs cannot be linked).
  assert.notEqual(rec.salt, again.salt);
  assert.notEqual(rec.values.PIN, again.values.PIN);
  const text = JSON.stringify(rec);
  assert.ok(!text.includes("4821"));
  // Every guess an attacker holding only the record can compute misses.
  const digests = new Set(Object.values(rec.values));
  for (let i = 0; i < 10_000; i++) {
    const v = String(i).padStart(4, "0");
    for (
      const guess of [
        sha(v),
        sha(`PIN=${v}`),
        sha(`${rec.salt}\0PIN\0${v}`),
        createHmac("sha256", rec.salt).update(`PIN\0${v}`).digest("hex"),
        createHmac("sha256", rec.salt).update(`${rec.salt}\0PIN\0${v}`).digest("hex"),
      ]
    ) assert.ok(!digests.has(guess), `guessed ${v}`);
  }
  // With the key (which is not in the record) it is found: the digests do depend on the value.
  const withKey = createHmac("sha256", key).update(`${rec.salt}\0PIN\u00004821`).digest("hex");
  assert.ok(digests.has(withKey));
});

Deno.test("env digest key: made once (0600 in a 0700 dir), shared by runs starting together, never made by a dry run", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/state/gangplank`;
  assert.equal(await loadEnvDigestKey(dir, { create: false }), undefined);
  assert.throws(() => Deno.statSync(`${tmp.path}/state`), Deno.errors.NotFound);
  const keys = await Promise.all(
    Array.from({ length: 8 }, () => loadEnvDigestKey(dir, { create: true })),
  );
  for (const k of keys) assert.deepEqual(k, keys[0]);
  assert.equal(keys[0]!.length, 32);
  assert.equal(Deno.statSync(`${dir}/${ENV_KEY_FILE}`).mode! & 0o777, 0o600);
  assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [ENV_KEY_FILE]);
  assert.deepEqual(await loadEnvDigestKey(dir, { create: false }), keys[0]);
  await Deno.writeTextFile(`${dir}/${ENV_KEY_FILE}`, "short");
  await assert.rejects(loadEnvDigestKey(dir, { create: true }), /not a gangplank key \(5 bytes/);
});
