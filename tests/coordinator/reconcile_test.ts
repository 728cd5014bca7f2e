/**
 * The coordinator's fallback for S3 endpoints that ignore conditional writes: builds the
 * workers report and builds.json lost are merged back; what cannot be restored fails the run.
 */
import assert from "node:assert/strict";
import { BuildsLostError, reconcileBuilds, reportedBuilds } from "../../lib/coordinator/mod.ts";
import { MemStore } from "../worker/fakes.ts";

const B = "builder";
const signal = new AbortController().signal;

function store(): MemStore & { stat(b: string, k: string): Promise<{ size: number } | undefined> } {
  const s = new MemStore() as MemStore & {
    stat(b: string, k: string): Promise<{ size: number } | undefined>;
  };
  s.stat = (b, k) => Promise.resolve(s.get(b, k) ? { size: s.get(b, k)!.length } : undefined);
  return s;
}

const builds = (...ids: string[]) =>
  JSON.stringify({
    "schema-version": "1.0.0",
    builds: ids.map((id) => ({ id, arches: ["x86_64"] })),
    timestamp: "",
  });

Deno.test("reconcile: a reported build builds.json lost is merged back (its meta.json exists)", async () => {
  const s = store();
  s.put(B, "p/builds.json", builds("b.2"));
  s.put(B, "p/b.1/x86_64/meta.json", "{}");
  s.put(B, "p/b.2/x86_64/meta.json", "{}");
  const r = await reconcileBuilds(s, { bucket: B, keyPrefix: "p" }, [
    { stageId: "one", builds: [{ id: "b.1", arches: ["x86_64"] }] },
    { stageId: "two", builds: [{ id: "b.2", arches: ["x86_64"] }] },
  ], { signal });
  assert.deepEqual(r.repaired, ["b.1/x86_64"]);
  const ids = JSON.parse(s.text(B, "p/builds.json")!).builds.map((b: { id: string }) => b.id);
  assert.deepEqual(ids, ["b.2", "b.1"]);
});

Deno.test("reconcile: nothing missing writes nothing", async () => {
  const s = store();
  s.put(B, "builds.json", builds("b.1"));
  const r = await reconcileBuilds(s, { bucket: B, keyPrefix: "" }, [
    { stageId: "one", builds: [{ id: "b.1", arches: ["x86_64"] }] },
  ], { signal });
  assert.deepEqual([r.repaired, s.puts], [[], []]);
});

Deno.test("reconcile: a lost build without meta.json, or one that stays lost, is an error", async () => {
  const s = store();
  s.put(B, "builds.json", builds());
  const e1 = await reconcileBuilds(s, { bucket: B, keyPrefix: "" }, [
    { stageId: "one", builds: [{ id: "b.1", arches: ["x86_64"] }] },
  ], { signal }).catch((e) => e);
  assert.ok(e1 instanceof BuildsLostError);
  assert.deepEqual(e1.lost.map((l: { id: string; stageId: string }) => [l.id, l.stageId]), [
    ["b.1", "one"],
  ]);
  assert.equal(e1.exitCode, 1);
  // A store that cannot write (no compare-and-swap): the loss is reported, never ignored.
  s.put(B, "b.1/x86_64/meta.json", "{}");
  const readOnly = { getJSON: s.getJSON.bind(s), stat: s.stat.bind(s) };
  const e2 = await reconcileBuilds(readOnly, { bucket: B, keyPrefix: "" }, [
    { stageId: "one", builds: [{ id: "b.1", arches: ["x86_64"] }] },
  ], { signal }).catch((e) => e);
  assert.ok(e2 instanceof BuildsLostError);
  assert.match(e2.lost[0].reason, /still missing/);
});

Deno.test("reportedBuilds: reads the summary's builds, ignores malformed entries", () => {
  assert.deepEqual(
    reportedBuilds({ builds: [{ id: "a", arches: ["x86_64", 3] }, "x", { id: 1 }, null] }),
    [{ id: "a", arches: ["x86_64"] }],
  );
  assert.deepEqual(reportedBuilds(undefined), []);
  assert.deepEqual(reportedBuilds({ builds: "nope" }), []);
});
