import assert from "node:assert/strict";
import type { ListedObject } from "../../lib/coordinator/run.ts";
import { planJob } from "../../lib/plan/mod.ts";
import { decodeWorkSpec } from "../../lib/workspec/mod.ts";
import { tempDir } from "../_helpers/mod.ts";
import { FakeExecutor, MemStore, runFake, spec } from "./_fakes.ts";

/** A MemStore that counts every read, by operation and key. */
class CountingStore extends MemStore {
  reads = new Map<string, number>();
  #count(what: string) {
    this.reads.set(what, (this.reads.get(what) ?? 0) + 1);
  }
  override getJSON(b: string, k: string) {
    this.#count(`get ${k}`);
    return super.getJSON(b, k);
  }
  override stat(b: string, k: string) {
    this.#count(`stat ${k}`);
    return super.stat(b, k);
  }
  override list(b: string, p: string): Promise<ListedObject[]> {
    this.#count(`list ${p}`);
    return super.list(b, p);
  }
}

const builds = (id: string) =>
  JSON.stringify({
    "schema-version": "1.0.0",
    builds: [{ id, arches: ["x86_64"] }],
    timestamp: "2026-01-01T00:00:00Z",
  });
const meta = (id: string) =>
  JSON.stringify({
    buildid: id,
    images: { qemu: { path: "q.qcow2", sha256: "ab".repeat(32), size: 4 } },
  });

Deno.test("runJob: 20 parallel stages of a group read builds.json, the build and each object once", async () => {
  await using tmp = await tempDir();
  const store = new CountingStore();
  store.put("builds.json", builds("1"));
  store.put("1/x86_64/meta.json", meta("1"));
  store.put("1/x86_64/meta.qemu.json", JSON.stringify({ images: {} }));
  store.put("1/x86_64/q.qcow2", "qcow");
  store.put("cache/cache.tar.gz", "tarball");
  const exec = new FakeExecutor(() => Promise.resolve({ exitCode: 0 }));
  const sp = spec(Array.from({ length: 20 }, (_, i) => ({
    id: `p${i}`,
    execution_order: 1,
    require_artifacts: ["qemu"],
    request_cache: true,
  })));
  const { r } = await runFake(tmp.path, sp, exec, {
    store,
    plan: planJob(sp, { existing: { artifacts: ["qemu"], cache: true } }),
  });
  assert.equal(r.exitCode, 0);
  assert.equal(exec.launches.length, 20);
  // Every stage still gets every input: the build's metadata, builds.json, qemu, the cache.
  for (const l of exec.launches) {
    const ws = decodeWorkSpec(l.env.COSA_WORK_POD_JSON);
    assert.deepEqual(ws.remotefiles.map((f) => f.object).sort(), [
      "1/x86_64/meta.json",
      "1/x86_64/meta.qemu.json",
      "1/x86_64/q.qcow2",
      "builds.json",
      "cache/cache.tar.gz",
    ]);
    assert.equal(ws.remotefiles.find((f) => f.artifact)!.artifact!.sha256, "ab".repeat(32));
  }
  // One reading of the store for the whole group (builds.json once more for the report).
  assert.equal(store.reads.get("get builds.json"), 2);
  assert.equal(store.reads.get("list 1/x86_64/"), 1);
  assert.equal(store.reads.get("get 1/x86_64/meta.json"), 1);
  assert.equal(store.reads.get("get 1/x86_64/meta.qemu.json"), 1);
  assert.equal(store.reads.get("stat 1/x86_64/q.qcow2"), 1);
  assert.equal(store.reads.get("stat cache/cache.tar.gz"), 1);
});

Deno.test("runJob: a stage waiting in a group sees what another stage of the group wrote since, and the next group reads afresh", async () => {
  await using tmp = await tempDir();
  const store = new CountingStore();
  const exec = new FakeExecutor((l) => {
    // The builder of group 1 writes build 1; the one of group 2 build 2.
    if (l.stageId === "build" || l.stageId === "rebuild") {
      const id = l.stageId === "build" ? "1" : "2";
      store.put(`${id}/x86_64/meta.json`, meta(id));
      store.put(`${id}/x86_64/q.qcow2`, "qcow");
      store.put("builds.json", builds(id));
    }
    return Promise.resolve({ exitCode: 0 });
  });
  const sp = spec([
    { id: "build", execution_order: 1 },
    { id: "test", execution_order: 1, require_artifacts: ["qemu"] },
    { id: "rebuild", execution_order: 2 },
    { id: "test again", execution_order: 3, require_artifacts: ["qemu"] },
    { id: "test more", execution_order: 3, require_artifacts: ["qemu"] },
  ]);
  const { r } = await runFake(tmp.path, sp, exec, {
    store,
    plan: planJob(sp, { existing: { artifacts: ["qemu"] } }),
    dependencyTimeoutMs: 30_000,
  });
  assert.equal(r.exitCode, 0, JSON.stringify(r.error));
  assert.deepEqual(r.stages.map((s) => s.result), Array(5).fill("succeeded"));
  const qemuOf = (id: string) => {
    const ws = decodeWorkSpec(exec.launches.find((l) => l.stageId === id)!.env.COSA_WORK_POD_JSON);
    return ws.remotefiles.find((f) => f.artifact)!.object;
  };
  // "test" found nothing when its group started, and build 1 on a later check.
  assert.equal(qemuOf("test"), "1/x86_64/q.qcow2");
  assert.ok(r.stages[1].waitMs > 0);
  // Group 3 reads the store after group 2 ended: build 2, not what group 1 saw.
  assert.equal(qemuOf("test again"), "2/x86_64/q.qcow2");
  assert.equal(qemuOf("test more"), "2/x86_64/q.qcow2");
  assert.equal(store.reads.get("list 2/x86_64/"), 1);
});
