import assert from "node:assert/strict";
import { lstat, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobSpec } from "../../lib/jobspec/mod.ts";
import { runWorker } from "../../lib/worker/mod.ts";
import type { WorkSpec } from "../../lib/workspec/mod.ts";
import { tempDir } from "../_helpers/mod.ts";
import { FakeRunner, MemStore, sha256 } from "./fakes.ts";

const B = "builder";

/**
 * The attack: a stage of an earlier group (or anyone who can write the job bucket) puts a
 * builds.json whose newest build id climbs out of /srv, next to a real-looking build there.
 */
async function attack(builds: unknown, stageMeta?: unknown) {
  const tmp = await tempDir("gp-hostile-");
  const srv = join(tmp.path, "srv");
  await mkdir(srv);
  // What the hostile id points at: a build outside srv, with an artifact.
  const outside = join(tmp.path, "outside", "evilbuild", "x86_64");
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, "loot.img"), "private data outside srv");
  await writeFile(
    join(outside, "meta.json"),
    JSON.stringify({
      buildid: "stolen",
      images: { qemu: { path: "loot.img", sha256: sha256("private data outside srv") } },
    }),
  );
  const store = new MemStore();
  store.put(B, "builds.json", JSON.stringify(builds));
  const runner = new FakeRunner(async (text) => {
    // A stage that writes its own hostile meta.json (when asked to).
    if (stageMeta !== undefined) {
      await mkdir(join(srv, "builds", "1", "x86_64"), { recursive: true });
      await writeFile(join(srv, "builds", "1", "x86_64", "meta.json"), JSON.stringify(stageMeta));
      await writeFile(
        join(srv, "builds", "builds.json"),
        JSON.stringify({ builds: [{ id: "1", arches: ["x86_64"] }] }),
      );
    }
    return text.includes("exit") ? 1 : 0;
  });
  const ws: WorkSpec = {
    remotefiles: stageMeta === undefined
      ? [{ bucket: B, object: "builds.json", force_path: "builds/builds.json" }]
      : [],
    jobspec: {
      job: {},
      recipe: {},
      minio: { bucket: B },
      stages: [{
        id: "s",
        commands: [stageMeta === undefined ? "echo {{.Meta.BuildID}}" : "cosa build"],
      }],
    } as unknown as JobSpec,
    executeStages: ["s"],
    return: { bucket: B, key_prefix: "" },
    relay: { host: "127.0.0.1", port: 1, region: "us-east-1", secure: false, accesskey: "AK" },
  };
  const lines: string[] = [];
  const r = await runWorker(ws, {
    srvDir: srv,
    env: { COSA_FORCE_ARCH: "x86_64" },
    secretKey: "K",
    store,
    runner,
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
  });
  return { tmp, srv, store, runner, r, lines };
}

Deno.test("worker: a build id climbing out of /srv is refused before the stage runs", async () => {
  for (
    const id of ["../../outside/evilbuild", "/abs/evilbuild", "a\nb", "", "..", "ok/../../x"]
  ) {
    const a = await attack({ builds: [{ id, arches: ["x86_64"] }] });
    await using _ = a.tmp;
    assert.notEqual(a.r.exitCode, 0, JSON.stringify(id));
    assert.match(a.r.message ?? "", /builds\.json/);
    // Nothing ran, nothing was uploaded, builds/latest was never created (let alone outside).
    assert.equal(a.runner.seen.length, 0, `the stage ran for ${JSON.stringify(id)}`);
    assert.deepEqual(a.store.puts, []);
    await assert.rejects(lstat(join(a.srv, "builds", "latest")));
    assert.deepEqual((await readdir(join(a.srv, "builds"))).sort(), ["builds.json"]);
    // The outside build is untouched and nothing was added next to it.
    assert.deepEqual(
      (await readdir(join(a.tmp.path, "outside", "evilbuild", "x86_64"))).sort(),
      ["loot.img", "meta.json"],
    );
  }
});

Deno.test("worker: a stage writing a meta.json whose artifact path leaves the build dir uploads nothing", async () => {
  const a = await attack({ builds: [] }, {
    buildid: "1",
    images: {
      qemu: {
        path: "../../../../outside/evilbuild/x86_64/loot.img",
        sha256: sha256("private data outside srv"),
      },
    },
  });
  await using _ = a.tmp;
  assert.equal(a.runner.seen.length, 1);
  assert.notEqual(a.r.exitCode, 0);
  assert.match(a.r.message ?? "", /images\.qemu\.path/);
  assert.deepEqual(a.store.puts, []);
  assert.deepEqual(a.r.artifactsReturned, []);
});
