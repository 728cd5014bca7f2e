/**
 * Two runs filling the same new cache volume at once: one creates the volume between the
 * other's existence check and its create. Podman answers that create with 500 ("volume already
 * exists"), not 409; the run must go on. Made deterministic here by a client whose first
 * existence check says "missing" while the volume is already there (a real podman service).
 */
import assert from "node:assert/strict";
import { PodmanClient } from "../../lib/podman/mod.ts";
import { ensureVolume } from "../../lib/executors/podman_stock.ts";
import { podmanMissing, startPodmanService } from "../_helpers/podman.ts";

const missing = podmanMissing();

Deno.test({
  name: "ensureVolume: a volume another run created between the check and the create is fine",
  ignore: missing !== undefined,
}, async () => {
  await using svc = await startPodmanService();
  const podman = PodmanClient.unix(svc.socketPath);
  const signal = AbortSignal.timeout(60_000);
  const name = `gp-test-race-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await podman.createVolume(name, { signal }); // the other run's
    // What podman answers a second create (the status the old code expected was 409).
    const err = await podman.createVolume(name, { signal }).catch((e) => e);
    assert.ok(err instanceof Error, "a second create fails");
    let checks = 0;
    const racing = {
      volumeExists: (n: string, o: { signal: AbortSignal }) =>
        checks++ === 0 ? Promise.resolve(false) : podman.volumeExists(n, o),
      createVolume: podman.createVolume.bind(podman),
    };
    await ensureVolume(racing, name, {}, signal);
    assert.equal(checks, 2, "the volume's presence decided after the failed create");
    // A create that fails for another reason still fails.
    const bad = {
      volumeExists: () => Promise.resolve(false),
      createVolume: podman.createVolume.bind(podman),
    };
    await assert.rejects(ensureVolume(bad, "bad/name", {}, signal));
  } finally {
    await podman.removeVolume(name, { signal: AbortSignal.timeout(30_000) }).catch(() => {});
  }
});
