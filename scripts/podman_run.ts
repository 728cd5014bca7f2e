/**
 * `podman-run` (Gangplank's `gangplank pod --podman`): `submit --backend podman`, with the
 * podman flags only. Every stage's worker runs in a podman container, on this host or on a
 * remote one over SSH (`CONTAINER_HOST=ssh://user@host[:port]/run/user/1000/podman/podman.sock`).
 *
 * ```sh
 * deno task podman-run -s jobspec.yaml -w ./work                      # local podman socket
 * CONTAINER_HOST=ssh://core@builder/run/user/1000/podman/podman.sock \
 * CONTAINER_SSHKEY=~/.ssh/id_ed25519 deno task podman-run -A base   # stock image, --deno-image
 * deno task podman-run --cleanup                                      # remove leftovers
 * ```
 *
 * Exit codes: 0 success, 1 failure, 2 bad input, 130 Ctrl-C.
 *
 * @module
 */
import { podmanRun } from "../lib/cli/submit.ts";
import { runMain } from "./_harness.ts";
import { makeUndumpable } from "../lib/worker/secrets.ts";

export { podmanRun };

if (import.meta.main) {
  // The coordinator holds the relay's root key: no other process of this user (a local
  // stage's commands) may read its memory or environment through /proc or ptrace.
  makeUndumpable();
  await runMain("podman-run", podmanRun, import.meta.url);
}
