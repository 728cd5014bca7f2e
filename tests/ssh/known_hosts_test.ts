import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  checkHostKey,
  fingerprintSha256,
  keyTypeOf,
  knownKeyTypes,
  parseKnownHosts,
} from "../../lib/ssh/mod.ts";
import { runCommand, tempDir } from "../_helpers/mod.ts";

// Two real ed25519 public keys (wire format, base64) and one ecdsa key.
const K1 = "AAAAC3NzaC1lZDI1NTE5AAAAIEV8qJk0ncCyc1hBf1yqzCNoOHPPQdU3wm5bxzb8ecVh";
const K2 = "AAAAC3NzaC1lZDI1NTE5AAAAIHBnn1MKDD3dXGFWWJBDxjc3dwm0xR2gPBgRu9jHpdD5";
const blob = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));

function hashed(name: string, salt = Buffer.from("0123456789abcdefghij")): string {
  const h = createHmac("sha1", salt).update(name).digest("base64");
  return `|1|${salt.toString("base64")}|${h}`;
}

Deno.test("known_hosts: plain, [host]:port, wildcard and negated patterns", () => {
  const entries = parseKnownHosts(
    [
      "# comment",
      "",
      `build1.example.com,10.0.0.5 ssh-ed25519 ${K1}`,
      `[127.0.0.1]:2222 ssh-ed25519 ${K2} user@x`,
      `*.lab.example.com,!bad.lab.example.com ssh-ed25519 ${K1}`,
      "garbage line",
      `broken ssh-ed25519 !!!notbase64`,
    ].join("\n"),
  );
  assert.equal(entries.length, 3);
  assert.equal(checkHostKey(entries, "build1.example.com", 22, blob(K1)), "ok");
  assert.equal(checkHostKey(entries, "10.0.0.5", 22, blob(K1)), "ok");
  assert.equal(checkHostKey(entries, "build1.example.com", 22, blob(K2)), "changed");
  // A non-22 port only matches its [host]:port entry.
  assert.equal(checkHostKey(entries, "127.0.0.1", 2222, blob(K2)), "ok");
  assert.equal(checkHostKey(entries, "127.0.0.1", 22, blob(K2)), "unknown");
  assert.equal(checkHostKey(entries, "build1.example.com", 2222, blob(K1)), "unknown");
  assert.equal(checkHostKey(entries, "a.lab.example.com", 22, blob(K1)), "ok");
  assert.equal(checkHostKey(entries, "bad.lab.example.com", 22, blob(K1)), "unknown");
  assert.equal(checkHostKey(entries, "other.example.com", 22, blob(K1)), "unknown");
  assert.deepEqual(knownKeyTypes(entries, "127.0.0.1", 2222), ["ssh-ed25519"]);
});

Deno.test("known_hosts: hashed entries (|1|salt|hash), with and without port", () => {
  const entries = parseKnownHosts(
    `${hashed("build1.example.com")} ssh-ed25519 ${K1}\n` +
      `${hashed("[127.0.0.1]:2222", Buffer.from("another-salt-20bytes"))} ssh-ed25519 ${K2}\n`,
  );
  assert.equal(checkHostKey(entries, "build1.example.com", 22, blob(K1)), "ok");
  assert.equal(checkHostKey(entries, "build1.example.com", 22, blob(K2)), "changed");
  assert.equal(checkHostKey(entries, "build2.example.com", 22, blob(K1)), "unknown");
  assert.equal(checkHostKey(entries, "127.0.0.1", 2222, blob(K2)), "ok");
  assert.equal(checkHostKey(entries, "127.0.0.1", 2223, blob(K2)), "unknown");
});

Deno.test("known_hosts: @revoked wins, @cert-authority is not a host key", () => {
  const entries = parseKnownHosts(
    `host1 ssh-ed25519 ${K1}\n@revoked * ssh-ed25519 ${K1}\n@cert-authority host2 ssh-ed25519 ${K2}\n`,
  );
  assert.equal(checkHostKey(entries, "host1", 22, blob(K1)), "revoked");
  assert.equal(checkHostKey(entries, "host2", 22, blob(K2)), "unknown");
});

Deno.test("known_hosts: hashed entries written by ssh-keygen -H match; fingerprint = ssh-keygen's", async () => {
  await using dir = await tempDir();
  const key = `${dir.path}/k`;
  const gen = await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  assert.equal(gen.code, 0, gen.stderr);
  const pub = (await Deno.readTextFile(`${key}.pub`)).trim().split(/\s+/);
  const kh = `${dir.path}/known_hosts`;
  await Deno.writeTextFile(
    kh,
    `[10.1.2.3]:2200 ${pub[0]} ${pub[1]}\nplainhost ${pub[0]} ${pub[1]}\n`,
  );
  const h = await runCommand("ssh-keygen", ["-H", "-f", kh]);
  assert.equal(h.code, 0, h.stderr);
  const text = await Deno.readTextFile(kh);
  assert.ok(text.startsWith("|1|"), text);
  const entries = parseKnownHosts(text);
  const b = blob(pub[1]);
  assert.equal(checkHostKey(entries, "10.1.2.3", 2200, b), "ok");
  assert.equal(checkHostKey(entries, "plainhost", 22, b), "ok");
  assert.equal(checkHostKey(entries, "10.1.2.3", 22, b), "unknown");
  assert.equal(keyTypeOf(b), "ssh-ed25519");
  const fp = await runCommand("ssh-keygen", ["-l", "-f", `${key}.pub`]);
  assert.equal(fingerprintSha256(b), fp.stdout.split(/\s+/)[1]);
});
