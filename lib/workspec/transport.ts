/**
 * How the WorkSpec reaches a worker. Up to {@link WORKSPEC_ENV_MAX} bytes it travels as
 * Gangplank did, in `COSA_WORK_POD_JSON`. A larger one cannot: Linux refuses to start a
 * process with one environment string over 128 KiB (`argument list too long`), and a pod
 * spec's env var has the same fate. It then travels out of the environment, in parts of at most
 * {@link WORKSPEC_PART_CHARS} characters, the same private way as the secrets: a 0600 file per
 * part (local), a podman secret mounted as a file per part (podman), keys of the stage's Secret
 * copied into a memory volume (Kubernetes). `COSA_WORK_POD_JSON_PARTS` says how many parts;
 * part `i` is `COSA_WORK_POD_JSON_<i>` (its file `COSA_WORK_POD_JSON_<i>_FILE`).
 *
 * @module
 */

import { ENV_WORK_POD_JSON } from "./env.ts";

/** Largest encoded WorkSpec (UTF-8 bytes) sent in the environment. */
export const WORKSPEC_ENV_MAX = 64 * 1024;
/** Characters per part of a larger WorkSpec (at most 3 bytes each: under podman's 500 KB). */
export const WORKSPEC_PART_CHARS = 128 * 1024;
/**
 * Most bytes of data one Kubernetes Secret holds (the API server refuses more): the bound of a
 * stage's WorkSpec and secrets on the kube backend.
 */
export const KUBE_SECRET_MAX_BYTES = 1024 * 1024;
/** Env var: number of parts a large WorkSpec was sent in. */
export const ENV_WORK_POD_JSON_PARTS = `${ENV_WORK_POD_JSON}_PARTS`;

/** Env name of part `i` (1-based) of a large WorkSpec. */
export function workSpecPartName(i: number): string {
  return `${ENV_WORK_POD_JSON}_${i}`;
}

/** How a WorkSpec of `bytes` (encoded, UTF-8) travels; `parts` for the file route. */
export type WorkSpecTransport =
  | { via: "env"; bytes: number }
  | { via: "files"; bytes: number; parts: number };

/** How an encoded WorkSpec travels (see the module doc). */
export function workSpecTransport(encoded: string): WorkSpecTransport {
  const bytes = new TextEncoder().encode(encoded).length;
  if (bytes <= WORKSPEC_ENV_MAX) return { via: "env", bytes };
  return { via: "files", bytes, parts: Math.ceil(encoded.length / WORKSPEC_PART_CHARS) };
}

/**
 * The environment (plain and private) that carries an encoded WorkSpec: `COSA_WORK_POD_JSON`
 * when small; else `COSA_WORK_POD_JSON_PARTS` plus one private entry per part, which every
 * executor delivers as a file like a secret (never in the environment).
 */
export function workSpecEnv(
  encoded: string,
): { env: Record<string, string>; privateEnv: Record<string, string> } {
  const t = workSpecTransport(encoded);
  if (t.via === "env") return { env: { [ENV_WORK_POD_JSON]: encoded }, privateEnv: {} };
  const privateEnv: Record<string, string> = {};
  let start = 0;
  for (let i = 1; start < encoded.length; i++) {
    let end = Math.min(encoded.length, start + WORKSPEC_PART_CHARS);
    // Never split a surrogate pair (each part is written as UTF-8 on its own).
    const c = encoded.charCodeAt(end - 1);
    if (end < encoded.length && c >= 0xd800 && c <= 0xdbff) end++;
    privateEnv[workSpecPartName(i)] = encoded.slice(start, end);
    start = end;
  }
  const parts = Object.keys(privateEnv).length;
  return { env: { [ENV_WORK_POD_JSON_PARTS]: String(parts) }, privateEnv };
}

/**
 * The encoded WorkSpec a worker received: `COSA_WORK_POD_JSON`, or its parts joined (each read
 * with `readPart`, which takes the part's env name and reads the value or its file).
 * `undefined` when neither is set.
 * @throws {RangeError} for a `COSA_WORK_POD_JSON_PARTS` that is not a small positive integer.
 */
export async function receiveWorkSpec(
  env: Record<string, string | undefined>,
  readPart: (name: string) => Promise<string | undefined>,
): Promise<string | undefined> {
  if (env[ENV_WORK_POD_JSON]) return env[ENV_WORK_POD_JSON];
  const raw = env[ENV_WORK_POD_JSON_PARTS];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new RangeError(`${ENV_WORK_POD_JSON_PARTS}: ${JSON.stringify(raw)} is not a part count`);
  }
  const parts: string[] = [];
  for (let i = 1; i <= n; i++) {
    const p = await readPart(workSpecPartName(i));
    if (p === undefined) {
      throw new RangeError(`${workSpecPartName(i)}: missing (part ${i} of ${n})`);
    }
    parts.push(p);
  }
  return parts.join("");
}

/**
 * True for the env names that carry the WorkSpec (`COSA_WORK_POD_JSON`, its parts, their files
 * and the part count): the worker keeps them from the stage's commands.
 */
export function isWorkSpecEnvName(name: string): boolean {
  return /^COSA_WORK_POD_JSON(_PARTS|_\d+(_FILE)?)?$/.test(name);
}
