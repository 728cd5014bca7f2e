/**
 * The attack: a stage of an earlier group returned a "cache" that is a zip bomb (~2 MB of gzip
 * holding 2 GiB). The next worker (scripts/work.ts, against a real relay) refuses to extract it
 * with a clear error before running anything, and leaves nothing extracted in /srv.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { JobSpec } from "../../lib/jobspec/mod.ts";
import { startRelay } from "../../lib/relay/mod.ts";
import { encodeWorkSpec, type WorkSpec } from "../../lib/workspec/mod.ts";
import { runScript, tempDir } from "../_helpers/mod.ts";
import { bomb } from "../archive/_bomb.ts";

Deno.test("worker: a zip-bomb cache tarball is refused, nothing extracted, the stage never runs", async () => {
  await using root = await tempDir("gp-bomb-root-");
  await Deno.mkdir(join(root.path, "builds", "cache"), { recursive: true });
  const gz = bomb([["srv/cache/pkgcache/innocent.rpm", 0], ["srv/cache/cache.qcow2", 32]]);
  await Deno.writeFile(join(root.path, "builds", "cache", "cache.tar.gz"), gz);
  await using relay = await startRelay({ root: root.path, bucketDirs: { builder: "builds" } });
  await using srv = await tempDir("gp-bomb-srv-");
  const cfg = relay.config();
  const ws: WorkSpec = {
    remotefiles: [{ bucket: "builder", object: "cache/cache.tar.gz", compressed: true }],
    jobspec: {
      job: {},
      recipe: {},
      minio: { bucket: "builder" },
      stages: [{ id: "s", commands: ["touch ran"] }],
    } as unknown as JobSpec,
    executeStages: ["s"],
    return: { bucket: "builder", key_prefix: "" },
    relay: {
      host: cfg.host,
      port: cfg.port,
      region: cfg.region,
      secure: false,
      accesskey: cfg.accesskey,
    },
  };
  const env = (limit: string) => ({
    COSA_WORK_POD_JSON: encodeWorkSpec(ws),
    COSA_RELAY_SECRET_KEY: cfg.secretkey,
    COSA_SRV_DIR: srv.path,
    COSA_FORCE_ARCH: "x86_64",
    COSA_EXTRACT_MAX_BYTES: limit,
    PATH: "/usr/bin:/bin",
  });

  const r = await runScript("work.ts", [], { env: env("1GiB"), timeoutMs: 60_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /cache\/cache\.tar\.gz.*refusing to extract: its content exceeds 1073741824 bytes/,
  );
  // Nothing extracted (not even the small file before the bomb), and the stage never ran.
  const left: string[] = [];
  for await (const e of Deno.readDir(srv.path)) left.push(e.name);
  assert.deepEqual(left, []);

  // A limit that is not a size is bad input: exit 2, before anything is fetched.
  const bad = await runScript("work.ts", [], { env: env("lots"), timeoutMs: 60_000 });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /COSA_EXTRACT_MAX_BYTES: "lots" is not a size/);
});
