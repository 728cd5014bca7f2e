/**
 * `submit`: the coordinator CLI (Gangplank's `gangplank pod` / `generate`).
 *
 * ```sh
 * deno run -A scripts/submit.ts --spec jobspec.yaml --dry-run          # validate + show the plan
 * deno run -A scripts/submit.ts -A base,qemu+metal --dry-run -o yaml   # generated spec's plan
 * deno run -A scripts/submit.ts generate -A base --yaml-out job.yaml   # write a JobSpec
 * ```
 *
 * Exit codes: 0 success / valid, 2 invalid input (one line per problem on stderr), 1 failure,
 * 130/143 interrupted. The logic is `submit` of lib/cli (callable in-process).
 *
 * @module
 */
import { submit } from "../lib/cli/submit.ts";
import { runMain } from "./_harness.ts";
import { makeUndumpable } from "../lib/worker/secrets.ts";

export { submit };

if (import.meta.main) {
  // The coordinator holds the relay's root key: no other process of this user (a local
  // stage's commands) may read its memory or environment through /proc or ptrace.
  makeUndumpable();
  await runMain("submit", submit, import.meta.url);
}
