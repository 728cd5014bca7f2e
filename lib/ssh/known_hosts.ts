/**
 * OpenSSH `known_hosts` parsing and host key checking: plain and hashed (`|1|salt|hash`) host
 * patterns, `[host]:port` entries, wildcards (`*`, `?`), negation (`!`), `@revoked` and
 * `@cert-authority` markers (the latter ignored: certificates are not supported).
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import { GangplankError } from "../errors/mod.ts";
import { hostForKnownHosts } from "./container_host.ts";

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  marker?: "revoked" | "cert-authority";
  /** Host patterns as written (comma-separated in the file). */
  patterns: string[];
  /** Key type, e.g. `ssh-ed25519`. */
  keyType: string;
  /** Public key blob (SSH wire format). */
  key: Uint8Array;
  /** 1-based line number, for messages. */
  line: number;
}

/** The host key was not accepted. `fingerprint` is OpenSSH's `SHA256:...` form. */
export class HostKeyError extends GangplankError {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly kind: "unknown" | "changed" | "revoked",
    readonly keyType: string,
    readonly fingerprint: string,
    readonly knownHostsFiles: string[],
  ) {
    const where = hostForKnownHosts(host, port);
    const files = knownHostsFiles.join(", ") || "(no known_hosts file)";
    super(
      kind === "unknown"
        ? `SSH host key of ${where} is not known (${keyType} ${fingerprint}); ` +
          `verify it and add it to ${files} (e.g. ssh-keyscan -p ${port} ${host}), ` +
          `or pass --known-hosts FILE`
        : kind === "changed"
        ? `SSH host key of ${where} has CHANGED (now ${keyType} ${fingerprint}), it does not ` +
          `match ${files}; refusing to connect`
        : `SSH host key of ${where} (${keyType} ${fingerprint}) is marked @revoked in ${files}`,
    );
  }
}

/** OpenSSH's SHA256 fingerprint of a public key blob: `SHA256:<base64 without padding>`. */
export function fingerprintSha256(key: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/** The key type named at the start of an SSH public key blob. */
export function keyTypeOf(key: Uint8Array): string {
  if (key.length < 4) return "unknown";
  const n = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(0);
  if (n > key.length - 4) return "unknown";
  return new TextDecoder().decode(key.subarray(4, 4 + n));
}

/** Parses known_hosts text. Malformed lines are skipped, like OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === "" || raw.startsWith("#")) continue;
    const f = raw.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (f[0].startsWith("@")) {
      const m = f.shift()!;
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else continue;
    }
    if (f.length < 3) continue;
    const [hosts, keyType, b64] = f;
    const key = Buffer.from(b64, "base64");
    if (key.length === 0 || keyTypeOf(key) !== keyType) continue;
    out.push({
      marker,
      patterns: hosts.split(","),
      keyType,
      key: new Uint8Array(key),
      line: i + 1,
    });
  }
  return out;
}

function globToRegExp(p: string): RegExp {
  const esc = p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${esc}$`, "i");
}

function hashedMatches(pattern: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = pattern.split("|");
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2], "base64");
  const want = parts[3];
  return createHmac("sha1", salt).update(name).digest("base64") === want;
}

/** Whether an entry's host patterns match `name` (`host` or `[host]:port`). */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const pat of entry.patterns) {
    const negated = pat.startsWith("!");
    const p = negated ? pat.slice(1) : pat;
    const hit = p.startsWith("|") ? hashedMatches(p, name) : globToRegExp(p).test(name);
    if (hit && negated) return false;
    if (hit) matched = true;
  }
  return matched;
}

/** Result of {@link checkHostKey}. */
export type HostKeyVerdict = "ok" | "unknown" | "changed" | "revoked";

/**
 * Checks a presented host key against known_hosts entries, for `host` on `port` (entries for a
 * non-22 port are written `[host]:port`).
 */
export function checkHostKey(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  key: Uint8Array,
): HostKeyVerdict {
  const name = hostForKnownHosts(host, port);
  const same = (a: Uint8Array, b: Uint8Array) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  let anyForHost = false;
  let ok = false;
  for (const e of entries) {
    if (e.marker === "revoked") {
      if (same(e.key, key)) return "revoked";
      continue;
    }
    if (e.marker === "cert-authority") continue;
    if (!entryMatches(e, name)) continue;
    anyForHost = true;
    if (same(e.key, key)) ok = true;
  }
  if (ok) return "ok";
  return anyForHost ? "changed" : "unknown";
}

/** Key types known for a host, to offer those host key algorithms first. */
export function knownKeyTypes(entries: KnownHostEntry[], host: string, port: number): string[] {
  const name = hostForKnownHosts(host, port);
  return [
    ...new Set(
      entries.filter((e) => !e.marker && entryMatches(e, name)).map((e) => e.keyType),
    ),
  ];
}
