/**
 * The environment local workers start from: a short allow-list taken from the coordinator's
 * environment (passed in as a record; never read from `Deno.env` here).
 *
 * @module
 */

/**
 * The environment a local worker starts from: what deno, the worker and cosa need, never the
 * whole coordinator environment (`FAKE_COSA_*` are the stand-in cosa's test switches).
 */
export function workerBaseEnv(env: Record<string, string | undefined>): Record<string, string> {
  const keep = ["PATH", "HOME", "DENO_DIR", "TMPDIR", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"];
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (keep.includes(k) || k.startsWith("FAKE_COSA_"))) out[k] = v;
  }
  return out;
}
