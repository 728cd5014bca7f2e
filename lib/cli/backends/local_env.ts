/**
 * The environment local workers start from: an allow-list taken from the coordinator's
 * environment (passed in as a record; never read from `Deno.env` here).
 *
 * @module
 */
import { SECRET_MAPPINGS } from "../../secrets/table.ts";

/** What deno, the worker and cosa need to run at all. */
const BASICS = ["PATH", "HOME", "DENO_DIR", "TMPDIR", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"];

/** Proxy settings, in both spellings tools read. */
export const PROXY_VARS: readonly string[] = ["http_proxy", "https_proxy", "no_proxy", "all_proxy"]
  .flatMap((v) => [v, v.toUpperCase()]);

/**
 * Cloud and registry credential variables a build's commands read (`AWS_*`,
 * `GCP_IMAGE_UPLOAD_CONFIG`, `AZURE_*`, ...): the variables of the secret mapping table, which
 * the kube backend sets from labelled Secrets. The local backend passes them from the
 * coordinator's own environment.
 */
export const CREDENTIAL_VARS: readonly string[] = [
  ...new Set(SECRET_MAPPINGS.flatMap((m) => [...m.envs, ...m.files].map((e) => e.env))),
];

/**
 * The environment a local worker starts from: {@link PROXY_VARS}, {@link CREDENTIAL_VARS}, what
 * deno and the worker need, and `FAKE_COSA_*` (the stand-in cosa's test switches); never the
 * whole coordinator environment, never the relay's key (the coordinator passes that itself).
 */
export function workerBaseEnv(env: Readonly<Record<string, string | undefined>>): Record<
  string,
  string
> {
  const keep = new Set([...BASICS, ...PROXY_VARS, ...CREDENTIAL_VARS]);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (keep.has(k) || k.startsWith("FAKE_COSA_"))) out[k] = v;
  }
  return out;
}
