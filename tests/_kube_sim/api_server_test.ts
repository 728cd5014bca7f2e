/**
 * The Kubernetes test API server against the real client (npm:@kubernetes/client-node):
 * CRUD with Status errors, selectors, paging, watch (events, resume, 410), logs (follow,
 * tail of a fast-exiting container), secrets into env and files, deletion.
 */

import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { startKubeApiServer } from "./api_server.ts";
import { clients, followLog, record, shPod, statusOf, waitPhase } from "./_client.ts";
import { ROOT, waitFor } from "../_helpers/mod.ts";
import { processesMatching } from "../_helpers/procs.ts";

const NS = "default";

// Process-mode volume mounts at their real paths need root (unshare --mount).
const notRoot = Deno.uid() !== 0;
if (notRoot) console.warn("not root: process-mode volume tests in api_server_test.ts skipped");
function rootTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: notRoot ? `${name} (SKIPPED: needs root)` : name, ignore: notRoot, fn });
}
const opts = { kubelet: { mode: "process" as const } };

Deno.test("kube api: create, watch ADDED/MODIFIED to Succeeded, follow the whole log", async () => {
  await using kube = await startKubeApiServer(opts);
  const { kc, core } = clients(kube);
  await using w = await record(kc, `/api/v1/namespaces/${NS}/pods`);
  const script =
    "echo hello; for i in 1 2 3; do echo line $i; done; echo oops >&2; printf 'tail-no-nl'";
  const created = await core.createNamespacedPod({ namespace: NS, body: shPod("p1", script) });
  assert.ok(created.metadata?.uid);
  assert.ok(Number(created.metadata?.resourceVersion) > 0);
  assert.ok(created.metadata?.creationTimestamp);
  assert.equal(created.status?.phase, "Pending");
  // like a client reacting to the first Running (or terminated) state, then following
  await waitFor(() => kube.podLog(NS, "p1", "main") !== undefined, { what: "container started" });
  const log = await followLog(kc, NS, "p1", "main");
  assert.equal(
    log.split("\n").sort().join("\n"),
    ["hello", "line 1", "line 2", "line 3", "oops", "tail-no-nl"].sort().join("\n"),
  );
  assert.ok(log.endsWith("tail-no-nl"), log);
  const pod = await waitPhase(kube, "p1");
  assert.equal(pod.status?.phase, "Succeeded");
  const cs = pod.status?.containerStatuses?.[0];
  assert.equal(cs?.state?.terminated?.exitCode, 0);
  assert.equal(cs?.state?.terminated?.reason, "Completed");
  assert.equal(pod.spec?.nodeName, kube.kubelet.nodeName);
  assert.ok(pod.status?.conditions?.some((c) => c.type === "Ready" && c.reason === "PodCompleted"));
  await waitFor(() => w.events.some((e) => e.object.status?.phase === "Succeeded"), {
    what: "Succeeded event",
  });
  const types = w.events.map((e) => e.type);
  assert.equal(types[0], "ADDED");
  assert.ok(types.slice(1).every((t) => t === "MODIFIED"), types.join());
  const phases = w.events.map((e) => e.object.status?.phase);
  assert.ok(phases.includes("Running"), phases.join());
  // resourceVersions strictly increase along the stream
  const rvs = w.events.map((e) => Number(e.object.metadata?.resourceVersion));
  assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b));
  await core.deleteNamespacedPod({ namespace: NS, name: "p1" });
  await waitFor(() => w.events.at(-1)?.type === "DELETED", { what: "DELETED event" });
  assert.equal(kube.pods().length, 0);
});

Deno.test("kube api: non-zero exit → Failed with exitCode and reason Error", async () => {
  await using kube = await startKubeApiServer(opts);
  const { core } = clients(kube);
  await core.createNamespacedPod({ namespace: NS, body: shPod("bad", "echo no; exit 3") });
  const pod = await waitPhase(kube, "bad");
  assert.equal(pod.status?.phase, "Failed");
  assert.equal(pod.status?.containerStatuses?.[0].state?.terminated?.exitCode, 3);
  assert.equal(pod.status?.containerStatuses?.[0].state?.terminated?.reason, "Error");
  assert.equal(kube.podLog(NS, "bad", "main"), "no\n");
});

Deno.test("kube api: Status errors 401, 404 (with details), 409, 422, 400", async () => {
  await using kube = await startKubeApiServer(opts);
  const { core } = clients(kube);
  const anon = await rawGet(kube, `/api/v1/namespaces/${NS}/pods`, { token: null });
  assert.equal(anon.status, 401);
  assert.equal(JSON.parse(anon.text).reason, "Unauthorized");
  const wrong = await rawGet(kube, `/api/v1/namespaces/${NS}/pods`, { token: "wrong" });
  assert.equal(wrong.status, 401);
  await assert.rejects(core.readNamespacedPod({ namespace: NS, name: "nope" }), (e) => {
    const s = statusOf(e);
    assert.equal(s.code, 404);
    assert.equal(s.reason, "NotFound");
    assert.equal(s.message, `pods "nope" not found`);
    return true;
  });
  const body = JSON.parse((await rawGet(kube, `/api/v1/namespaces/${NS}/secrets/zz`)).text);
  assert.deepEqual(body.details, { name: "zz", kind: "secrets" });
  assert.equal(body.kind, "Status");
  assert.equal(body.status, "Failure");
  await core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: "s1" }, stringData: { a: "b" } },
  });
  await assert.rejects(
    core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "s1" } } }),
    (e) => statusOf(e).code === 409 && statusOf(e).reason === "AlreadyExists",
  );
  await assert.rejects(
    core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "x", labels: { bad: "no spaces allowed" } },
        spec: { containers: [] },
      },
    }),
    (e) => statusOf(e).code === 422 && statusOf(e).reason === "Invalid",
  );
  await assert.rejects(
    core.listNamespacedPod({ namespace: NS, fieldSelector: "spec.bogus=1" }),
    (e) => statusOf(e).code === 400,
  );
  await assert.rejects(
    core.createNamespacedPod({ namespace: "nowhere", body: shPod("x", "true") }),
    (e) => statusOf(e).code === 404 && statusOf(e).message === `namespaces "nowhere" not found`,
  );
});

async function rawGet(
  kube: { url: string; token: string; caCert: string },
  path: string,
  opts: { accept?: string; token?: string | null } = {},
) {
  using client = Deno.createHttpClient({ caCerts: [kube.caCert] });
  const headers: Record<string, string> = opts.accept ? { accept: opts.accept } : {};
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? kube.token}`;
  const r = await fetch(`${kube.url}${path}`, { headers, client });
  return { status: r.status, text: await r.text(), type: r.headers.get("content-type") };
}

Deno.test("kube api: label selectors (=, ==, !=, in, notin, exists, !key), field selectors, paging", async () => {
  await using kube = await startKubeApiServer(opts);
  const { core } = clients(kube);
  const labels: Record<string, Record<string, string>> = {
    a: { run: "r1", stage: "build" },
    b: { run: "r1", stage: "test", extra: "x" },
    c: { run: "r2", stage: "build" },
    d: {},
  };
  for (const [name, l] of Object.entries(labels)) {
    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name, labels: l } } });
  }
  const names = async (labelSelector?: string, fieldSelector?: string) =>
    (await core.listNamespacedSecret({ namespace: NS, labelSelector, fieldSelector })).items
      .map((s) => s.metadata?.name).join(",");
  assert.equal(await names("run=r1"), "a,b");
  assert.equal(await names("run==r1,stage=build"), "a");
  assert.equal(await names("run!=r1"), "c,d");
  assert.equal(await names("stage in (build, test)"), "a,b,c");
  assert.equal(await names("stage notin (build)"), "b,d");
  assert.equal(await names("extra"), "b");
  assert.equal(await names("!extra,run"), "a,c");
  assert.equal(await names(undefined, "metadata.name=c"), "c");
  assert.equal(await names("run=r1", "metadata.name!=a"), "b");
  // limit + continue
  const seen: string[] = [];
  let cont: string | undefined;
  let pages = 0;
  do {
    const page = await core.listNamespacedSecret({ namespace: NS, limit: 3, _continue: cont });
    seen.push(...page.items.map((s) => s.metadata!.name!));
    cont = page.metadata?._continue;
    pages++;
  } while (cont && pages < 10);
  assert.deepEqual(seen, ["a", "b", "c", "d"]);
  assert.equal(pages, 2);
  // status.phase field selector on pods
  await core.createNamespacedPod({ namespace: NS, body: shPod("ok", "true") });
  await waitPhase(kube, "ok");
  const ph = await core.listNamespacedPod({
    namespace: NS,
    fieldSelector: "status.phase=Succeeded",
  });
  assert.deepEqual(ph.items.map((p) => p.metadata?.name), ["ok"]);
  const none = await core.listNamespacedPod({
    namespace: NS,
    fieldSelector: "status.phase=Running",
  });
  assert.equal(none.items.length, 0);
});

Deno.test("kube api: watch resumes from a resourceVersion; too old → ERROR 410", async () => {
  await using kube = await startKubeApiServer({ ...opts, historySize: 20 });
  const { kc, core } = clients(kube);
  const s1 = await core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: "one" } },
  });
  const rv = s1.metadata!.resourceVersion!;
  await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "two" } } });
  await core.patchNamespacedSecret(
    { namespace: NS, name: "two", body: { metadata: { labels: { x: "y" } } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
  await core.deleteNamespacedSecret({ namespace: NS, name: "one" });
  {
    await using w = await record(kc, `/api/v1/namespaces/${NS}/secrets`, { resourceVersion: rv });
    await waitFor(() => w.events.length >= 3, { what: "3 replayed events" });
    assert.deepEqual(
      w.events.map((e) => `${e.type} ${e.object.metadata?.name}`),
      ["ADDED two", "MODIFIED two", "DELETED one"],
    );
    // live events continue on the same stream
    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "three" } } });
    await waitFor(() => w.events.length === 4, { what: "live event" });
    assert.equal(w.events[3].object.metadata?.name, "three");
  }
  {
    // label-selected watch: an object that starts matching is ADDED, stops matching DELETED
    await using w = await record(kc, `/api/v1/namespaces/${NS}/secrets`, { labelSelector: "x=y" });
    await waitFor(() => w.events.length === 1, { what: "initial ADDED" });
    assert.equal(w.events[0].object.metadata?.name, "two");
    await core.patchNamespacedSecret(
      { namespace: NS, name: "three", body: { metadata: { labels: { x: "y" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await core.patchNamespacedSecret(
      { namespace: NS, name: "two", body: { metadata: { labels: { x: null } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor(() => w.events.length === 3, { what: "selector transitions" });
    assert.deepEqual(
      w.events.slice(1).map((e) => `${e.type} ${e.object.metadata?.name}`),
      ["ADDED three", "DELETED two"],
    );
  }
  for (let i = 0; i < 25; i++) {
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: `cm${i}` } } });
  }
  await using old = await record(kc, `/api/v1/namespaces/${NS}/secrets`, { resourceVersion: rv });
  await waitFor(() => old.events.length === 1, { what: "ERROR event" });
  assert.equal(old.events[0].type, "ERROR");
  assert.equal((old.events[0].object as unknown as { code: number }).code, 410);
  assert.equal(await old.ended, null);
});

Deno.test("kube api: update with a stale resourceVersion → 409 Conflict; merge patch", async () => {
  await using kube = await startKubeApiServer(opts);
  const { core } = clients(kube);
  const cm = await core.createNamespacedConfigMap({
    namespace: NS,
    body: { metadata: { name: "c" }, data: { k: "1" } },
  });
  const upd = await core.replaceNamespacedConfigMap({
    namespace: NS,
    name: "c",
    body: { ...cm, data: { k: "2" } },
  });
  assert.equal(upd.data?.k, "2");
  await assert.rejects(
    core.replaceNamespacedConfigMap({
      namespace: NS,
      name: "c",
      body: { ...cm, data: { k: "3" } },
    }),
    (e) => statusOf(e).code === 409 && statusOf(e).reason === "Conflict",
  );
  const patched = await core.patchNamespacedConfigMap(
    { namespace: NS, name: "c", body: { data: { j: "x" } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
  );
  assert.deepEqual(patched.data, { k: "2", j: "x" });
  const jp = await core.patchNamespacedConfigMap(
    { namespace: NS, name: "c", body: [{ op: "remove", path: "/data/k" }] },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
  );
  assert.deepEqual(jp.data, { j: "x" });
});

rootTest(
  "kube api: secretKeyRef env, secret volume (items, 0600), configMap, emptyDir, workingDir",
  async () => {
    await using kube = await startKubeApiServer(opts);
    const { kc, core } = clients(kube);
    const secretValue = "s3cr3t-value";
    const script = [
      `echo "env=$MY_SECRET"`,
      `echo "plain=$PLAIN"`,
      `echo "pwd=$(pwd)"`,
      `echo "file=$(cat /kube-sim-test/sec/dir/key.txt)"`,
      `echo "mode=$(stat -c %a /kube-sim-test/sec/dir/key.txt)"`,
      `echo "cm=$(cat /etc/kube-sim-test/cm/conf)"`,
      `echo "shared=$(cat /kube-sim-test/work/from-init)"`,
    ].join("; ");
    const pod: k8s.V1Pod = shPod("vol", script, {
      spec: {
        volumes: [
          {
            name: "sec",
            secret: {
              secretName: "creds",
              items: [{ key: "k", path: "dir/key.txt" }],
              defaultMode: 0o600,
            },
          },
          { name: "cm", configMap: { name: "conf" } },
          { name: "work", emptyDir: {} },
        ],
        initContainers: [{
          name: "init",
          image: "kube-sim/none:latest",
          command: ["sh", "-c", "echo hi-from-init > /kube-sim-test/work/from-init"],
          volumeMounts: [{ name: "work", mountPath: "/kube-sim-test/work" }],
        }],
      },
    });
    pod.spec!.containers[0].env = [
      { name: "MY_SECRET", valueFrom: { secretKeyRef: { name: "creds", key: "k" } } },
      { name: "PLAIN", value: "p-$(MY_SECRET_NOT_SET)" },
    ];
    pod.spec!.containers[0].workingDir = "/kube-sim-test/work";
    pod.spec!.containers[0].volumeMounts = [
      { name: "sec", mountPath: "/kube-sim-test/sec", readOnly: true },
      { name: "cm", mountPath: "/etc/kube-sim-test/cm" },
      { name: "work", mountPath: "/kube-sim-test/work" },
    ];
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: "conf" }, data: { conf: "c=1" } },
    });
    await core.createNamespacedPod({ namespace: NS, body: pod });
    // the secret does not exist yet: volume mount fails, pod stays Pending
    await waitFor(
      () =>
        kube.list("events").some((e) =>
          e.reason === "FailedMount" && e.message.includes(`secret "creds" not found`)
        ),
      { what: "FailedMount event" },
    );
    assert.equal(kube.store.get("pods", NS, "vol")?.status?.phase, "Pending");
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "creds" }, stringData: { k: secretValue } },
    });
    const done = await waitPhase(kube, "vol");
    const log = await followLog(kc, NS, "vol", "main");
    assert.equal(done.status?.phase, "Succeeded", log);
    assert.match(log, new RegExp(`^env=${secretValue}$`, "m"));
    assert.match(log, /^plain=p-\$\(MY_SECRET_NOT_SET\)$/m);
    assert.match(log, /^pwd=\/kube-sim-test\/work$/m);
    assert.match(log, new RegExp(`^file=${secretValue}$`, "m"));
    assert.match(log, /^mode=600$/m);
    assert.match(log, /^cm=c=1$/m);
    assert.match(log, /^shared=hi-from-init$/m);
    // the secret value is in no pod object ever stored
    for (const w of kube.store.writes.filter((x) => x.resource === "pods")) {
      assert.ok(!JSON.stringify(w.object).includes(secretValue));
    }
    await core.deleteNamespacedPod({ namespace: NS, name: "vol" });
    await waitFor(() => kube.pods().length === 0, { what: "pod removed" });
    // mount points under an existing host dir (/etc) were made in a private overlay; those
    // right under / were created on the host and are gone again
    assert.equal(await exists("/etc/kube-sim-test"), false);
    await waitFor(async () => !(await exists("/kube-sim-test")), { what: "mount points removed" });
  },
);

/** Whether any process's argv contains `needle`. */
function inAnyArgv(needle: string): Promise<boolean> {
  return Promise.resolve(processesMatching((cmd) => cmd.includes(needle)).length > 0);
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("kube api: missing secretKeyRef → CreateContainerConfigError until the secret appears", async () => {
  await using kube = await startKubeApiServer(opts);
  const { core } = clients(kube);
  const pod = shPod("env", `echo "v=$V"`);
  pod.spec!.containers[0].env = [{
    name: "V",
    valueFrom: { secretKeyRef: { name: "later", key: "v" } },
  }];
  await core.createNamespacedPod({ namespace: NS, body: pod });
  const waiting = await waitFor(() => {
    const st = kube.store.get("pods", NS, "env")?.status?.containerStatuses?.[0]?.state?.waiting;
    return st?.reason === "CreateContainerConfigError" ? st : undefined;
  }, { what: "CreateContainerConfigError" });
  assert.equal(waiting.message, `secret "later" not found`);
  await assert.rejects(core.readNamespacedPodLog({ namespace: NS, name: "env" }), (e) => {
    const s = statusOf(e);
    return s.code === 400 &&
      s.message === `container "main" in pod "env" is waiting to start: CreateContainerConfigError`;
  });
  await core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: "later" }, stringData: { v: "now" } },
  });
  const done = await waitPhase(kube, "env");
  assert.equal(done.status?.phase, "Succeeded");
  assert.equal(kube.podLog(NS, "env", "main"), "v=now\n");
});

Deno.test("kube api: graceful delete sets deletionTimestamp, SIGTERMs, then DELETED", async () => {
  await using kube = await startKubeApiServer(opts);
  const { kc, core } = clients(kube);
  await using w = await record(kc, `/api/v1/namespaces/${NS}/pods`, {
    fieldSelector: "metadata.name=long",
  });
  const marker = `marker-${crypto.randomUUID()}`;
  await core.createNamespacedPod({
    namespace: NS,
    body: shPod(
      "long",
      `trap 'echo got-term; exit 143' TERM; echo started; while :; do sleep 0.1; done # ${marker}`,
    ),
  });
  await waitPhase(kube, "long", ["Running"]);
  await waitFor(() => kube.podLog(NS, "long", "main")?.includes("started"), { what: "started" });
  const t0 = Date.now();
  const res = await core.deleteNamespacedPod({
    namespace: NS,
    name: "long",
    gracePeriodSeconds: 5,
  });
  assert.ok(res.metadata?.deletionTimestamp, "DELETE answers the pod marked for deletion");
  await waitFor(() => w.events.at(-1)?.type === "DELETED", { what: "DELETED", timeoutMs: 8000 });
  assert.ok(Date.now() - t0 < 4000, "the trap ends the container before the grace period");
  const last = w.events.at(-1)!.object;
  assert.equal(last.status?.containerStatuses?.[0].state?.terminated?.exitCode, 143);
  assert.ok(w.events.some((e) => e.type === "MODIFIED" && e.object.metadata?.deletionTimestamp));
  await assert.rejects(
    core.readNamespacedPod({ namespace: NS, name: "long" }),
    (e) => statusOf(e).code === 404,
  );
  assert.equal(await inAnyArgv(marker), false, "container process left behind");
});

Deno.test("kube api: close() kills running containers (no process left)", async () => {
  const marker = `marker-${crypto.randomUUID()}`;
  const kube = await startKubeApiServer(opts);
  try {
    const { core } = clients(kube);
    await core.createNamespacedPod({ namespace: NS, body: shPod("bg", `sleep 30 # ${marker}`) });
    await waitPhase(kube, "bg", ["Running"]);
    assert.equal(await inAnyArgv(marker), true);
  } finally {
    await kube.close();
  }
  assert.equal(await inAnyArgv(marker), false, "container process left behind");
});

Deno.test("kube api: a follow started while running gets a burst written right before exit", async () => {
  await using kube = await startKubeApiServer(opts);
  const { kc, core } = clients(kube);
  await core.createNamespacedPod({
    namespace: NS,
    body: shPod("burst", "echo begin; sleep 0.5; seq 1 3000; printf end"),
  });
  await waitFor(() => kube.podLog(NS, "burst", "main")?.includes("begin"), { what: "begin" });
  const log = await followLog(kc, NS, "burst", "main");
  const lines = log.split("\n");
  assert.equal(lines[0], "begin");
  assert.equal(lines.length, 3002);
  assert.equal(lines[3000], "3000");
  assert.equal(lines[3001], "end");
});

Deno.test("kube api: deletecollection by label selector; pods/log tailLines and timestamps", async () => {
  await using kube = await startKubeApiServer(opts);
  const { kc, core } = clients(kube);
  for (const n of ["a", "b", "c"]) {
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod(n, "for i in 1 2 3 4 5; do echo l$i; done", {
        labels: { grp: n === "c" ? "two" : "one" },
      }),
    });
  }
  for (const n of ["a", "b", "c"]) await waitPhase(kube, n);
  const tail = await followLog(kc, NS, "a", "main", { tailLines: 2 });
  assert.equal(tail, "l4\nl5\n");
  const ts = await followLog(kc, NS, "a", "main", { tailLines: 1, timestamps: true });
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z l5\n$/);
  await core.deleteCollectionNamespacedPod({ namespace: NS, labelSelector: "grp=one" });
  await waitFor(() => kube.pods().length === 1, { what: "two pods deleted" });
  assert.equal(kube.pods()[0].metadata.name, "c");
});

rootTest(
  "kube api: restartPolicy OnFailure restarts a failed container; previous log; Always → CrashLoopBackOff",
  async () => {
    await using kube = await startKubeApiServer(opts);
    const { core } = clients(kube);
    const script = "if [ -f /etc/kube-sim-rt/done ]; then echo second; exit 0; fi; " +
      "touch /etc/kube-sim-rt/done; echo first; exit 1";
    const pod = shPod("rt", script, {
      spec: { restartPolicy: "OnFailure", volumes: [{ name: "state", emptyDir: {} }] },
    });
    pod.spec!.containers[0].volumeMounts = [{ name: "state", mountPath: "/etc/kube-sim-rt" }];
    await core.createNamespacedPod({ namespace: NS, body: pod });
    const done = await waitPhase(kube, "rt");
    assert.equal(done.status?.phase, "Succeeded");
    const cs = done.status!.containerStatuses![0];
    assert.equal(cs.restartCount, 1);
    assert.equal(cs.lastState?.terminated?.exitCode, 1);
    assert.equal(await core.readNamespacedPodLog({ namespace: NS, name: "rt" }), "second\n");
    assert.equal(
      await core.readNamespacedPodLog({ namespace: NS, name: "rt", previous: true }),
      "first\n",
    );

    await core.createNamespacedPod({
      namespace: NS,
      body: shPod("crash", "echo run; exit 1", { spec: { restartPolicy: "Always" } }),
    });
    const crashing = await waitFor(() => {
      const p = kube.store.get("pods", NS, "crash");
      const c = p?.status?.containerStatuses?.[0];
      return c?.restartCount >= 2 && c?.state?.waiting?.reason === "CrashLoopBackOff"
        ? p
        : undefined;
    }, { what: "CrashLoopBackOff" });
    assert.equal(crashing.status.phase, "Running");
    await core.deleteNamespacedPod({ namespace: NS, name: "crash" });
    await waitFor(() => !kube.store.get("pods", NS, "crash"), { what: "crash pod deleted" });
  },
);

Deno.test("kube api: pod validation (quantities, requests ≤ limits, env names) and service account admission", async () => {
  await using kube = await startKubeApiServer({ ...opts, requireServiceAccounts: true });
  const { core } = clients(kube);
  const bad = (mutate: (p: k8s.V1Pod) => void) => {
    const p = shPod("v", "true");
    mutate(p);
    return core.createNamespacedPod({ namespace: NS, body: p });
  };
  const invalid = (e: unknown) => statusOf(e).code === 422 && statusOf(e).reason === "Invalid";
  await assert.rejects(
    bad((p) => p.spec!.containers[0].resources = { requests: { cpu: "4" }, limits: { cpu: "2" } }),
    invalid,
  );
  await assert.rejects(
    bad((p) => p.spec!.containers[0].resources = { limits: { memory: "4 GiB" } }),
    invalid,
  );
  await assert.rejects(
    bad((p) => p.spec!.containers[0].env = [{ name: "1X", value: "" }]),
    invalid,
  );
  await assert.rejects(
    bad((p) => p.spec!.serviceAccountName = "builder"),
    (e) =>
      statusOf(e).code === 403 && /serviceaccount "builder" not found/.test(statusOf(e).message),
  );
  await core.createNamespacedServiceAccount({
    namespace: NS,
    body: { metadata: { name: "builder" } },
  });
  await bad((p) => {
    p.spec!.serviceAccountName = "builder";
    p.spec!.containers[0].resources = {
      requests: { cpu: "2", memory: "4Gi" },
      limits: { cpu: "2", memory: "4Gi" },
    };
  });
  assert.equal((await waitPhase(kube, "v")).status?.phase, "Succeeded");
});

Deno.test("kube api: aborting the signal closes the server and stops its pods", async () => {
  const ac = new AbortController();
  const kube = await startKubeApiServer({ ...opts, signal: ac.signal });
  const marker = `marker-${crypto.randomUUID()}`;
  const { core } = clients(kube);
  await core.createNamespacedPod({ namespace: NS, body: shPod("s", `sleep 30 # ${marker}`) });
  await waitPhase(kube, "s", ["Running"]);
  ac.abort();
  await kube.close(); // the same close, awaited
  assert.equal(await inAnyArgv(marker), false);
  await assert.rejects(rawGet(kube, "/version"));
  await assert.rejects(startKubeApiServer({ signal: ac.signal }));
});

rootTest("kube api: a pod reaches the API with client-node's in-cluster config", async () => {
  await using kube = await startKubeApiServer(opts);
  const { core } = clients(kube);
  await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: { name: "hop" },
      spec: {
        restartPolicy: "Never",
        containers: [{
          name: "main",
          image: "kube-sim/none:latest",
          workingDir: ROOT,
          command: [Deno.execPath(), "run", "-A", `${ROOT}/tests/_kube_sim/_in_cluster_probe.ts`],
        }],
      },
    },
  });
  const pod = await waitPhase(kube, "hop", ["Succeeded", "Failed"], 60_000);
  const log = kube.podLog(NS, "hop", "main") ?? "";
  assert.equal(pod.status?.phase, "Succeeded", log);
  assert.match(log, new RegExp(`^server=https://${kube.nodeIP}:${new URL(kube.url).port}$`, "m"));
  assert.match(log, /^pods=hop$/m);
});
