/**
 * The workers' environment (`-e`, `--env-file`) as the run state records it: never the values,
 * only a keyed digest of each, so that a resume can tell which stages ran with another
 * environment (they run again, like a stage whose definition changed) without the state file
 * ever holding a value in clear.
 *
 * Why keyed, and keyed with what: values are often short (a flag, a PIN, a token of a few
 * characters), and any digest that can be recomputed from what the state file holds (a plain
 * sha256, or one salted with a salt stored next to it) is brute-forced in seconds for those.
 * So each value is an HMAC-SHA256 under a 32-byte random key that is not in the work dir: a
 * per-user file (`$XDG_STATE_HOME/gangplank/env-digest.key`, else
 * `~/.local/state/gangplank/env-digest.key`, 0600 in a 0700 dir, made on first use). A copy
 * of the work dir, or of the state file alone, reveals nothing about the values; only someone
 * who can also read the user's key file (who could read the `--env-file` anyway) could try
 * guesses. A random salt per run goes into each HMAC too, so that two runs with the same value
 * do not show equal digests. Names are recorded in clear (a resume says which changed).
 *
 * When no key is at hand (no `HOME`/`XDG_STATE_HOME`, a read-only home, another user or
 * machine resuming), nothing can be verified: the stages that ran with a non-empty
 * environment run again — the safe answer.
 *
 * @module
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { join } from "node:path";

/** The key file's name in the state dir. */
export const ENV_KEY_FILE = "env-digest.key";

/** What the run state records about the environment a stage ran with. */
export interface RecordedEnv {
  /** Which key made the digests (a hash of the key, not the key); `""` when there was none. */
  key: string;
  /** Random per run (hex), mixed into every digest. */
  salt: string;
  /** Per variable name, HMAC-SHA256(key, salt, name, value) in hex (`""` without a key). */
  values: Record<string, string>;
}

function keyId(key: Uint8Array): string {
  return createHash("sha256").update("gangplank env-digest key id\0").update(key).digest("hex")
    .slice(0, 16);
}

function hmac(key: Uint8Array, salt: string, name: string, value: string): string {
  return createHmac("sha256", key).update(`${salt}\0${name}\0${value}`).digest("hex");
}

/**
 * The environment of a run's workers, able to record itself and to compare itself with what
 * an earlier run recorded.
 *
 * @example
 * ```ts
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const first = new EnvDigest({ TOKEN: "1234" }, key).record();
 * new EnvDigest({ TOKEN: "1234" }, key).changes(first); // undefined: unchanged
 * new EnvDigest({ TOKEN: "9999" }, key).changes(first); // "environment changed: TOKEN"
 * ```
 */
export class EnvDigest {
  readonly #env: Readonly<Record<string, string>>;
  readonly #key: Uint8Array | undefined;
  readonly #salt: string;

  /**
   * Takes the environment and the key; draws this run's salt.
   *
   * @param env the variables every worker gets (`-e`, `--env-file`)
   * @param key the digest key ({@link loadEnvDigestKey}); without one nothing is verifiable
   */
  constructor(env: Readonly<Record<string, string>>, key: Uint8Array | undefined) {
    this.#env = { ...env };
    this.#key = key;
    const salt = crypto.getRandomValues(new Uint8Array(16));
    this.#salt = [...salt].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** What the state records (`undefined` for an empty environment: nothing to protect). */
  record(): RecordedEnv | undefined {
    const names = Object.keys(this.#env).sort();
    if (!names.length) return undefined;
    const key = this.#key;
    return {
      key: key ? keyId(key) : "",
      salt: this.#salt,
      values: Object.fromEntries(
        names.map((n) => [n, key ? hmac(key, this.#salt, n, this.#env[n]) : ""]),
      ),
    };
  }

  /**
   * Why this environment differs from `rec` (what a stage last ran with), or `undefined` when
   * it is the same: `environment changed: A, B (added), C (removed)`, or `environment not
   * verifiable (...)` when the values cannot be compared.
   */
  changes(rec: RecordedEnv | undefined): string | undefined {
    const was = rec?.values ?? {};
    const names = [...new Set([...Object.keys(was), ...Object.keys(this.#env)])].sort();
    if (!names.length) return undefined;
    const added = names.filter((n) => !(n in was));
    const removed = names.filter((n) => !(n in this.#env));
    const both = names.filter((n) => n in was && n in this.#env);
    const key = this.#key;
    if (both.length && (!key || !rec?.key || rec.key !== keyId(key))) {
      const why = !rec?.key
        ? "it ran without a digest key"
        : !key
        ? "no digest key here"
        : "its digests were made with another key";
      return `environment not verifiable (${why}): ${both.join(", ")}`;
    }
    const changed = both.filter((n) => {
      const a = new TextEncoder().encode(hmac(key!, rec!.salt, n, this.#env[n]));
      const b = new TextEncoder().encode(was[n]);
      return a.length !== b.length || !timingSafeEqual(a, b);
    });
    const parts = [
      ...changed,
      ...added.map((n) => `${n} (added)`),
      ...removed.map((n) => `${n} (removed)`),
    ];
    return parts.length ? `environment changed: ${parts.join(", ")}` : undefined;
  }
}

/**
 * Reads the per-user digest key from `dir`, or makes it (32 random bytes, 0600, `dir` 0700)
 * when `create` and it is missing; two runs making it at once agree on one (it appears whole,
 * by a hard link). Returns `undefined` when there is no key and none is to be made.
 *
 * @throws when the file exists but is not a key, or cannot be read or made.
 */
export async function loadEnvDigestKey(
  dir: string,
  opts: { create: boolean },
): Promise<Uint8Array | undefined> {
  const file = join(dir, ENV_KEY_FILE);
  const read = async () => {
    const k = await Deno.readFile(file);
    if (k.length !== 32) {
      throw new Error(`${file}: not a gangplank key (${k.length} bytes, not 32)`);
    }
    return k;
  };
  try {
    return await read();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) || !opts.create) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeFile(tmp, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
    await Deno.link(tmp, file);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  return await read();
}
