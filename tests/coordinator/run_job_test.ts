import assert from "node:assert/strict";
import { runJob } from "../../lib/coordinator/run.ts";
import type { JobSpec } from "../../lib/jobspec/mod.ts";
import { planJob } from "../../lib/plan/mod.ts";
import { decodeWorkSpec, formatSummaryLine } from "../../lib/workspec/mod.ts";
import { tempDir } from "../_helpers/mod.ts";
import type { AccessGrant } from "../../lib/relay/mod.ts";
import { cfg, FakeExecutor, MemStore, runFake, SECRET, spec } from "./_fakes.ts";

const builds = (id: string) =>
  JSON.stringify({
    "schema-version": "1.0.0",
    builds: [{ id, arches: ["x86_64"] }],
    timestamp: "2026-01-01T00:00:00Z",
  });

Deno.test("runJob: dispatch, WorkSpec, secret only in secretEnv, logs, report", async () => {
  await using tmp = await tempDir();
  const store = new MemStore();
  const exec = new FakeExecutor((l) => {
    l.onLine("hello from " + l.stageId, "stdout");
    l.onLine(`oops ${l.secretEnv.COSA_RELAY_SECRET_KEY} leaked`, "stderr");
    if (l.stageId === "base") {
      store.put("builds.json", builds("1"));
      store.put(
        "1/x86_64/meta.json",
        JSON.stringify({
          buildid: "1",
          images: { qemu: { path: "q.qcow2", sha256: "ab".repeat(32), size: 4 } },
        }),
      );
      store.put("1/x86_64/q.qcow2", "qcow");
    }
    return Promise.resolve({ exitCode: 0 });
  });
  const lines: string[] = [];
  const sp = spec([
    { id: "base", execution_order: 1 },
    { id: "needs qemu", require_artifacts: ["qemu"] },
  ]);
  const r = await runJob({
    spec: sp,
    plan: planJob(sp, { existing: { artifacts: ["qemu", "metal"] } }),
    workDir: tmp.path,
    executor: exec,
    relay: cfg,
    openStore: () => store,
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    pollIntervalMs: 5,
  });
  assert.equal(r.exitCode, 0);
  assert.equal(r.result, "succeeded");
  assert.equal(r.arch, "x86_64");
  assert.equal(r.latestBuild, "1");
  assert.deepEqual(r.stages.map((s) => s.result), ["succeeded", "succeeded"]);
  assert.deepEqual(r.stages[0].objects, [
    "1/x86_64/meta.json",
    "1/x86_64/q.qcow2",
    "builds.json",
  ]);
  const l2 = exec.launches[1];
  assert.equal(l2.env.COSA_FORCE_ARCH, "x86_64");
  assert.equal(l2.secretEnv.COSA_RELAY_SECRET_KEY, SECRET);
  assert.ok(!l2.env.COSA_WORK_POD_JSON.includes(SECRET));
  const ws = decodeWorkSpec(l2.env.COSA_WORK_POD_JSON);
  assert.deepEqual(ws.executeStages, ["needs qemu"]);
  assert.equal(ws.relay.host, "worker-side");
  const q = ws.remotefiles.find((f) => f.artifact)!;
  assert.equal(q.force_path, "builds/1/x86_64/q.qcow2");
  assert.equal(q.artifact!.sha256, "ab".repeat(32));
  assert.ok(lines.some((l) => /^\[needs qemu \+\d+\.\ds\] hello from needs qemu$/.test(l)));
  assert.ok(!lines.join("\n").includes(SECRET));
  assert.ok(lines.some((l) => l.endsWith("] oops *** leaked")));
  assert.ok(!Deno.readTextFileSync(`${tmp.path}/logs/base.log`).includes(SECRET));
  const log = Deno.readTextFileSync(`${tmp.path}/logs/needs_qemu.log`);
  assert.match(log, /^gangplank: starting worker/m);
  assert.match(log, /^hello from needs qemu$/m);
  assert.ok(lines.some((l) => /^STAGE\s+RESULT\s+EXIT\s+DURATION/.test(l)));
  assert.ok(JSON.stringify(r).length > 0 && !JSON.stringify(r).includes(SECRET));
});

Deno.test("runJob: a failing stage gives a non-zero exit naming it; later groups do not run", async () => {
  await using tmp = await tempDir();
  const exec = new FakeExecutor((l) => Promise.resolve({ exitCode: l.stageId === "bad" ? 3 : 0 }));
  const lines: string[] = [];
  const sp = spec([
    { id: "ok", execution_order: 1 },
    { id: "bad", execution_order: 2 },
    { id: "later", execution_order: 3 },
  ]);
  const r = await runJob({
    spec: sp,
    plan: planJob(sp, { existing: { artifacts: ["qemu", "metal"] } }),
    workDir: tmp.path,
    executor: exec,
    relay: cfg,
    openStore: () => new MemStore(),
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
  });
  assert.equal(r.exitCode, 1);
  assert.equal(r.result, "failed");
  assert.equal(r.error?.stageId, "bad");
  assert.match(r.error!.message, /stage "bad" failed: exit code 3/);
  assert.deepEqual(r.stages.map((s) => s.result), ["succeeded", "failed", "not-run"]);
  assert.deepEqual(exec.launches.map((l) => l.stageId), ["ok", "bad"]);
  assert.ok(lines.some((l) => l.includes('stage "bad" failed: exit code 3')));
});

Deno.test("runJob: a dependency never produced times out naming it", async () => {
  await using tmp = await tempDir();
  const exec = new FakeExecutor(() => Promise.resolve({ exitCode: 0 }));
  const sp = spec([{ id: "wants-metal", require_artifacts: ["metal"] }]);
  const r = await runJob({
    spec: sp,
    plan: planJob(sp, { existing: { artifacts: ["qemu", "metal"] } }),
    workDir: tmp.path,
    executor: exec,
    relay: cfg,
    openStore: () => new MemStore(),
    log: () => {},
    signal: new AbortController().signal,
    dependencyTimeoutMs: 60,
    pollIntervalMs: 10,
  });
  assert.equal(r.exitCode, 1);
  assert.equal(r.error?.type, "DependencyTimeoutError");
  assert.equal(r.error?.stageId, "wants-metal");
  assert.match(r.error!.missing![0], /artifact "metal"/);
  assert.equal(exec.launches.length, 0);
});

Deno.test("runJob: inline registry secrets leave the WorkSpec and travel in secretEnv only", async () => {
  await using tmp = await tempDir();
  const AUTH = '{"auths":{"quay.io":{"auth":"c2VjcmV0LXJlZ2lzdHJ5LWF1dGg="}}}';
  const exec = new FakeExecutor((l) => {
    l.onLine(`echo ${AUTH}`, "stdout");
    return Promise.resolve({ exitCode: 0 });
  });
  const lines: string[] = [];
  const sp: JobSpec = {
    ...spec([{ id: "push", commands: ["true"] }]),
    publish_oscontainer: {
      registries: [
        { url: "quay.io/me/os:latest", secret_type: "inline", secret: AUTH },
        { url: "registry.example:5000/os", secret_type: "token" },
      ],
    },
  };
  const r = await runJob({
    spec: sp,
    plan: planJob(sp),
    workDir: tmp.path,
    executor: exec,
    relay: cfg,
    openStore: () => new MemStore(),
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    pollIntervalMs: 5,
  });
  assert.equal(r.exitCode, 0);
  const l = exec.launches[0];
  assert.ok(!JSON.stringify(l.env).includes(AUTH), "no registry secret in the worker's env");
  const ws = decodeWorkSpec(l.env.COSA_WORK_POD_JSON);
  assert.equal(ws.jobspec.publish_oscontainer?.registries?.[0].secret, undefined);
  assert.equal(ws.jobspec.publish_oscontainer?.registries?.[0].url, "quay.io/me/os:latest");
  assert.deepEqual(JSON.parse(l.secretEnv.COSA_REGISTRY_SECRETS), { "0": AUTH });
  assert.equal(sp.publish_oscontainer?.registries?.[0].secret, AUTH, "caller's spec untouched");
  assert.ok(!lines.join("\n").includes(AUTH), "secret redacted from the console");
  assert.ok(!Deno.readTextFileSync(`${tmp.path}/logs/push.log`).includes(AUTH));
});

Deno.test("runJob: a waiting stage says what it waits for again every minute", async () => {
  await using tmp = await tempDir();
  const exec = new FakeExecutor(() => Promise.resolve({ exitCode: 0 }));
  const sp = spec([{ id: "wants-metal", require_artifacts: ["metal"] }]);
  // A clock that advances 10 s on every reading: five minutes pass in a few hundred checks.
  let t = 0;
  const lines: string[] = [];
  const r = await runJob({
    spec: sp,
    plan: planJob(sp, { existing: { artifacts: ["metal"] } }),
    workDir: tmp.path,
    executor: exec,
    relay: cfg,
    openStore: () => new MemStore(),
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    now: () => (t += 10_000),
    dependencyTimeoutMs: 5 * 60_000,
    pollIntervalMs: 1,
  });
  assert.equal(r.error?.type, "DependencyTimeoutError");
  const waiting = lines.filter((l) => l.includes('gangplank: waiting for artifact "metal"'));
  // Once at the start, then once per minute of the five (not once per check, not only once).
  assert.ok(waiting.length >= 4 && waiting.length <= 6, waiting.join("\n"));
  assert.ok(waiting.some((l) => /\(\d min so far\)/.test(l)), waiting.join("\n"));
});

Deno.test("runJob: worker progress lines go to the observer only, never the console or log file", async () => {
  await using tmp = await tempDir();
  const exec = new FakeExecutor((l) => {
    l.onLine("fetching", "stdout");
    l.onLine("gangway-progress: builder/big.raw: 1.0 MiB / 2.0 MiB (50%) 1.0 MiB/s", "stdout");
    l.onLine("fetched", "stdout");
    return Promise.resolve({ exitCode: 0 });
  });
  const seen: string[] = [];
  const { r, lines } = await runFake(tmp.path, spec([{ id: "only" }]), exec, {
    observer: {
      stageProgress: (id, text) => seen.push(`${id}: ${text}`),
      stageLine: (id, text) => seen.push(`${id} line: ${text}`),
    },
  });
  assert.equal(r.exitCode, 0);
  assert.ok(seen.includes("only: builder/big.raw: 1.0 MiB / 2.0 MiB (50%) 1.0 MiB/s"));
  assert.ok(seen.includes("only line: fetched"));
  assert.ok(!lines.some((l) => l.includes("gangway-progress") || l.includes("big.raw")));
  const log = await Deno.readTextFile(`${tmp.path}/logs/only.log`);
  assert.match(log, /^fetching\nfetched$/m);
  assert.doesNotMatch(log, /big\.raw/);
});

Deno.test("runJob with the embedded relay: each stage its own credential, revoked when it ends (success, failure, cancel)", async () => {
  await using tmp = await tempDir();
  const store = new MemStore();
  const minted: { grant: AccessGrant; key: string; revokedAt?: number }[] = [];
  let clock = 0;
  const relay = {
    config: () => cfg,
    grant(access: AccessGrant) {
      const entry: (typeof minted)[number] = {
        grant: access,
        key: `stage-secret-${minted.length}`,
      };
      minted.push(entry);
      return {
        credentials: { accessKey: `AK${minted.length}`, secretKey: entry.key },
        revoke: () => (entry.revokedAt ??= ++clock),
        [Symbol.dispose]: () => (entry.revokedAt ??= ++clock),
      };
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  const ended = new Map<string, number>();
  const checks: string[] = [];
  const exec = new FakeExecutor(async (l) => {
    const i = minted.findIndex((m) => m.key === l.secretEnv.COSA_RELAY_SECRET_KEY);
    // While the stage runs its credential is live, and it is the one the worker got.
    if (i < 0 || minted[i].revokedAt !== undefined) checks.push(`${l.stageId}: not live`);
    if (decodeWorkSpec(l.env.COSA_WORK_POD_JSON).relay.accesskey !== `AK${i + 1}`) {
      checks.push(`${l.stageId}: another access key`);
    }
    l.onLine(`leak ${l.secretEnv.COSA_RELAY_SECRET_KEY}`, "stdout");
    if (l.stageId === "slow") {
      if (!l.signal.aborted) {
        await new Promise((r) => l.signal.addEventListener("abort", r, { once: true }));
      }
      ended.set(l.stageId, ++clock);
      return { exitCode: 143, reason: "cancelled" };
    }
    ended.set(l.stageId, ++clock);
    return { exitCode: l.stageId === "bad" ? 3 : 0 };
  });
  const lines: string[] = [];
  const sp = spec([
    { id: "ok", execution_order: 1, return_cache: true, return_files: ["out/x"] },
    { id: "bad", execution_order: 2 },
    { id: "slow", execution_order: 2 },
  ]);
  const r = await runJob({
    spec: sp,
    plan: planJob(sp),
    workDir: tmp.path,
    executor: exec,
    startRelay: () => Promise.resolve(relay),
    openStore: () => store,
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    pollIntervalMs: 5,
  });
  assert.equal(r.exitCode, 1);
  assert.deepEqual(checks, []);
  assert.deepEqual(exec.launches.map((l) => l.stageId).sort(), ["bad", "ok", "slow"]);
  const credOf = (id: string) =>
    minted.find((m) =>
      m.key === exec.launches.find((l) => l.stageId === id)!.secretEnv.COSA_RELAY_SECRET_KEY
    )!;
  for (const id of ["ok", "bad", "slow"]) {
    const m = credOf(id);
    assert.ok(m.revokedAt !== undefined && m.revokedAt > ended.get(id)!, `${id} revoked after`);
  }
  // The grant is the plan's: builds.json conditionally, the caches and files "ok" returns.
  const w = credOf("ok").grant.write;
  assert.ok(w.some((e) => e.prefix === "builds.json" && e.exact && e.conditional));
  assert.ok(w.some((e) => e.prefix === "cache/cache.tar.gz" && e.exact));
  assert.ok(w.some((e) => e.prefix === "cache/out/x" && e.exact));
  assert.ok(!credOf("bad").grant.write.some((e) => e.prefix.startsWith("cache/")));
  // Stage keys are redacted like the run's.
  assert.ok(!lines.some((l) => l.includes("stage-secret-")), lines.join("\n"));
});

Deno.test("runJob: stages whose workers account for their uploads do not re-list the job bucket", async () => {
  await using tmp = await tempDir();
  // A bucket holding years of builds: listing it after every stage is what must not happen.
  class CountingStore extends MemStore {
    lists = 0;
    override list(b: string, p: string) {
      this.lists++;
      return super.list(b, p);
    }
  }
  const store = new CountingStore();
  for (let i = 0; i < 50; i++) store.put(`old/${i}/x86_64/meta.json`, "{}");
  const exec = new FakeExecutor((l) => {
    store.put(`${l.stageId}.txt`, l.stageId);
    l.onLine(
      formatSummaryLine({
        exitCode: 0,
        stageIds: [l.stageId],
        bytesIn: 0,
        bytesOut: l.stageId.length,
        filesFetched: 0,
        filesSkipped: 0,
        artifactsReturned: [],
        uploaded: 1,
        uploadedKeys: [`${l.stageId}.txt`],
        uploadErrors: 0,
      }),
      "stdout",
    );
    return Promise.resolve({ exitCode: 0 });
  });
  const sp = spec([1, 2, 3, 4].map((n) => ({ id: `st${n}`, execution_order: n })));
  const { r } = await runFake(tmp.path, sp, exec, { store });
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.stages.map((s) => s.objects), [
    ["st1.txt"],
    ["st2.txt"],
    ["st3.txt"],
    ["st4.txt"],
  ]);
  assert.equal(store.lists, 1, "one listing at the start of the run, none per stage");
});
