/**
 * The Kubernetes fault matrix on fake time: one stage run the way `submit --backend kube` runs
 * it (schedule → KubeExecutor → runPod) against an in-memory cluster that acts out each fault.
 * Each case asserts what the user gets (the typed error naming the stage, its exit code and the
 * cluster's reason), that the pod and the stage's Secret are deleted, that it ends within a
 * bounded (fake) time, and that no wait or stream is left behind. The wire-level halves of
 * these faults (watch reconnects, 410 Gone, Retry-After headers, the status JSON the API
 * server sends) are proven against the test API server in run_pod_test.ts and e2e_test.ts.
 */
import assert from "node:assert/strict";
import { StageFailedError } from "../../lib/coordinator/errors.ts";
import { KubeApiError } from "../../lib/kube/mod.ts";
import { workerPodName } from "../../lib/podspec/mod.ts";
import { FakeKube, running } from "./_fake_kube.ts";
import { exits, life, stageOn, START, status } from "./_stage_on_fake.ts";

/** The run's error: a StageFailedError for stage `build` with this exit code and reason. */
function assertStageFailed(
  error: unknown,
  exitCode: number,
  reason: RegExp | undefined,
): asserts error is StageFailedError {
  assert.ok(error instanceof StageFailedError, `a StageFailedError, got ${error}`);
  assert.equal(error.stageId, "build");
  assert.equal(error.workerExitCode, exitCode);
  if (reason) assert.match(error.reason ?? "", reason);
  else assert.equal(error.reason, undefined);
  assert.match(error.message, new RegExp(`^stage "build" failed: exit code ${exitCode}`));
}

/** `ms` is within [min, max]. */
function assertTook(ms: number, min: number, max: number) {
  assert.ok(ms >= min && ms <= max, `took ${ms} ms of fake time, expected ${min}..${max}`);
}

Deno.test("kube stage: success: exit 0, init and worker output in order, the tail without newline", async () => {
  const k = new FakeKube(life(
    ...START,
    [200, (k, n) => k.write(n, "worker", "hello\nwor")],
    [250, (k, n) => k.write(n, "worker", "ld\nno-newline")],
    exits(400, 0),
  ));
  const { result, lines, ms, pod } = await stageOn(k);
  assert.equal(result.error, undefined);
  assert.deepEqual(result.records.map((r) => [r.id, r.result, r.exitCode]), [
    ["build", "succeeded", 0],
  ]);
  const inits = k.createdPods[0].spec!.initContainers!.map((c) => c.name);
  assert.deepEqual(inits.toSorted(), ["ca-trust", "secrets"]);
  assert.deepEqual(lines, [...inits.map((c) => `${c}: ${c} ok`), "hello", "world", "no-newline"]);
  assertTook(ms, 400, 1000);
  assert.deepEqual(k.deletedPods, [pod]);
  const secrets = k.calls.filter((c) => c.startsWith("create secret ")).map((c) => c.slice(14));
  assert.equal(secrets.length, 1);
  assert.deepEqual(k.deletedSecrets, secrets);
});

Deno.test("kube stage: the worker's exit code, without a reason", async () => {
  const k = new FakeKube(life(...START, exits(300, 3)));
  const { result, ms } = await stageOn(k);
  assertStageFailed(result.error, 3, undefined);
  assert.equal(result.records[0].result, "failed");
  assertTook(ms, 300, 1000);
});

Deno.test("kube stage: a failing init container: its exit code and name; the worker never runs", async () => {
  const k = new FakeKube(life([100, (k, n) => {
    k.container(n, "secrets", { terminated: { exitCode: 0, reason: "Completed" } }, true);
    k.write(n, "ca-trust", "update-ca-trust: bad anchor\n");
    k.container(n, "ca-trust", { terminated: { exitCode: 7, reason: "Error" } }, true);
    k.status(n, (s) => s.phase = "Failed");
  }]));
  const { result, lines, ms } = await stageOn(k);
  assertStageFailed(result.error, 7, /^init container ca-trust failed: Error: exit code 7$/);
  assert.deepEqual(lines, ["ca-trust: update-ca-trust: bad anchor"]);
  assert.ok(!k.calls.some((c) => c.includes("/worker")), "no log stream of the worker");
  assertTook(ms, 100, 1000);
});

const UNSCHEDULABLE = status(50, (s) => {
  s.conditions = [{
    type: "PodScheduled",
    status: "False",
    reason: "Unschedulable",
    message: "0/3 nodes are available: 3 Insufficient memory.",
  }];
});

Deno.test("kube stage: Unschedulable for longer than --unschedulable-timeout fails with the scheduler's message", async () => {
  const k = new FakeKube(life(UNSCHEDULABLE));
  const { result, ms, logs } = await stageOn(k, { unschedulableTimeoutMs: 120_000 });
  assertStageFailed(
    result.error,
    -1,
    /^Unschedulable: 0\/3 nodes are available: 3 Insufficient memory\.$/,
  );
  assertTook(ms, 120_050, 121_050);
  assert.equal(logs.filter((l) => l.includes("pending (Unschedulable")).length, 1, "said once");
});

Deno.test("kube stage: Unschedulable for a while, then scheduled: the limit counts one stretch", async () => {
  const k = new FakeKube(life(
    UNSCHEDULABLE,
    status(100_050, (s) => s.conditions = [{ type: "PodScheduled", status: "True" }]),
    status(100_100, (s) => {
      s.conditions = [{ type: "PodScheduled", status: "False", reason: "Unschedulable" }];
    }),
    status(200_000, (s) => s.conditions = [{ type: "PodScheduled", status: "True" }]),
    [200_100, (k, n) => START[0][1](k, n)],
    [200_150, (k, n) => running(k, n)],
    exits(200_300, 0),
  ));
  const { result, ms } = await stageOn(k, { unschedulableTimeoutMs: 120_000 });
  assert.equal(result.error, undefined);
  assertTook(ms, 200_300, 201_000);
});

Deno.test("kube stage: containers that cannot start fail at once with the kubelet's reason", async () => {
  for (
    const reason of [
      "ErrImagePull",
      "ImagePullBackOff",
      "InvalidImageName",
      "ErrImageNeverPull",
      "CreateContainerConfigError",
      "CreateContainerError",
      "RunContainerError",
    ]
  ) {
    const k = new FakeKube(life(
      [100, (k, n) => {
        k.container(n, "worker", {
          waiting: { reason, message: `failed to pull image "img": manifest unknown` },
        });
      }],
    ));
    const { result, ms } = await stageOn(k);
    assertStageFailed(
      result.error,
      -1,
      new RegExp(`^${reason}: failed to pull image "img": manifest unknown$`),
    );
    assertTook(ms, 100, 1000);
  }
});

Deno.test("kube stage: StartError (the runtime could not start the command): 128 and the runtime's message", async () => {
  const msg = 'failed to create containerd task: exec: "/usr/bin/dumb-init": no such file';
  const k = new FakeKube(life(
    ...START,
    exits(200, 128, { reason: "StartError", message: msg, phase: false }),
    status(300, (s) => s.phase = "Failed"),
  ));
  const { result, ms } = await stageOn(k);
  assertStageFailed(result.error, 128, new RegExp(`^StartError: ${msg}$`));
  assertTook(ms, 300, 1000);
});

Deno.test("kube stage: a restarted worker (CrashLoopBackOff) fails at once instead of running again", async () => {
  const k = new FakeKube(life(...START, [
    300,
    (k, n) =>
      k.status(n, (s) => {
        s.containerStatuses = [{
          name: "worker",
          image: "img",
          imageID: "",
          ready: false,
          restartCount: 1,
          state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 10s restarting" } },
          lastState: { terminated: { exitCode: 2, reason: "Error" } },
        }];
      }),
  ]));
  const { result, ms } = await stageOn(k);
  assertStageFailed(
    result.error,
    2,
    /^container worker was restarted: CrashLoopBackOff: back-off 10s restarting$/,
  );
  assertTook(ms, 300, 1000);
});

Deno.test("kube stage: OOMKilled: 137 and the reason, whether or not the pod's phase follows", async () => {
  for (const phase of [true, false]) {
    const k = new FakeKube(life(
      ...START,
      exits(500, 137, { reason: "OOMKilled", phase: false }),
      ...(phase ? [status(600, (s) => s.phase = "Failed")] : []),
    ));
    const { result, ms } = await stageOn(k);
    assertStageFailed(result.error, 137, /^OOMKilled: container worker ran out of memory$/);
    // Without the phase, the settle time (3 s) bounds the wait.
    if (phase) assertTook(ms, 600, 1000);
    else assertTook(ms, 3500, 4500);
  }
});

const EVICTED = "The node was low on resource: memory. Threshold quantity: 100Mi.";

Deno.test("kube stage: evicted by the kubelet (node pressure): 137 and Evicted with its message", async () => {
  // The phase first (containers still running), or the container killed first.
  const orders = [
    [status(
      1000,
      (s) => Object.assign(s, { phase: "Failed", reason: "Evicted", message: EVICTED }),
    )],
    [
      exits(1000, 137, { phase: false }),
      status(
        1200,
        (s) => Object.assign(s, { phase: "Failed", reason: "Evicted", message: EVICTED }),
      ),
    ],
  ];
  for (const steps of orders) {
    const k = new FakeKube(life(...START, ...steps));
    const { result, ms } = await stageOn(k);
    assertStageFailed(result.error, 137, new RegExp(`^Evicted: ${EVICTED}$`));
    assertTook(ms, 1000, 2000);
  }
});

Deno.test("kube stage: deleted by someone else (API eviction, drain, an operator): 143, said so, at once", async () => {
  const k = new FakeKube(life(
    ...START,
    [200, (k, n) => k.write(n, "worker", "working\n")],
    [1000, (k, n) => k.deleteBySomeoneElse(n, 30_000)],
  ));
  const { result, ms, lines, pod } = await stageOn(k);
  assertStageFailed(result.error, 143, new RegExp(`^pod ${pod} was deleted by someone else$`));
  assert.ok(lines.includes("working"));
  assertTook(ms, 1000, 2000); // not the 30 s grace period
});

Deno.test("kube stage: node lost: logs stop, the pod is evicted 5 min later and never confirmed gone", async () => {
  const k = new FakeKube(life(
    ...START,
    [200, (k, n) => k.write(n, "worker", "before\n")],
    [1000, (k, n) => {
      k.hangLog(n, "worker");
      k.cutLog(n, "worker");
      k.status(n, (s) => s.conditions = [{ type: "Ready", status: "Unknown" }]);
    }],
    // The taint manager deletes it; no kubelet ever confirms (our grace-0 delete forces it).
    [301_000, (k, n) => k.deleteBySomeoneElse(n, undefined)],
  ));
  const { result, ms, lines } = await stageOn(k);
  assertStageFailed(result.error, 143, /was deleted by someone else$/);
  assert.deepEqual(lines.filter((l) => !l.includes(":")), ["before"]);
  assertTook(ms, 301_000, 302_000);
});

Deno.test("kube stage: a pod running past the timeout: -1, said so, at the timeout", async () => {
  const k = new FakeKube(life(...START));
  const { result, ms } = await stageOn(k, { timeoutSeconds: 600 });
  assertStageFailed(result.error, -1, /^pod \S+ did not complete work in time \(600 s\)$/);
  assertTook(ms, 600_000, 601_000);
});

Deno.test("kube stage: activeDeadlineSeconds (DeadlineExceeded): the kubelet's reason", async () => {
  const k = new FakeKube(life(
    ...START,
    exits(5000, 137, { phase: false }),
    status(5000, (s) =>
      Object.assign(s, {
        phase: "Failed",
        reason: "DeadlineExceeded",
        message: "Pod was active on the node longer than the specified deadline",
      })),
  ));
  const { result } = await stageOn(k);
  assertStageFailed(
    result.error,
    137,
    /^DeadlineExceeded: Pod was active on the node longer than the specified deadline$/,
  );
});

Deno.test("kube stage: Ctrl-C: the stage is cancelled with the interrupt, pod and Secret deleted at once", async () => {
  const k = new FakeKube(life(...START));
  const { result, ms, pod } = await stageOn(k, { abortAt: 1000 });
  assert.match(String(result.error), /interrupted \(SIGINT\)/);
  assert.equal(result.records[0].result, "cancelled");
  assert.ok(k.deletedPods.includes(pod));
  assertTook(ms, 1000, 1000);
});

const apiError = (status: number, op: string) =>
  new KubeApiError({
    operation: op,
    status,
    reason: status === 503 ? "ServiceUnavailable" : "GatewayTimeout",
    detail: "the server is currently unable to handle the request",
    attempts: 6,
  });

Deno.test("kube stage: the API failing on create (after its retries): KubeApiError naming the call; Secret deleted", async () => {
  const k = new FakeKube(life(...START));
  k.createFaults.push({ error: apiError(503, "create pod gp") });
  const { result } = await stageOn(k);
  assert.ok(result.error instanceof KubeApiError);
  assert.equal(result.error.status, 503);
  assert.equal(result.error.attempts, 6);
  assert.equal(result.records[0].result, "failed");
  assert.match(
    result.records[0].reason ?? "",
    /create pod gp failed \(HTTP 503 ServiceUnavailable\)/,
  );
  assert.equal(k.deletedSecrets.length, 1);
});

Deno.test("kube stage: a create answered 5xx after the server created the pod: the pod is still deleted", async () => {
  // A proxy in front of the API server timing out (504) while the create went through.
  const k = new FakeKube(life(...START));
  k.createFaults.push({ error: apiError(504, "create pod gp"), afterCreate: true });
  const { result, pod } = await stageOn(k);
  assert.ok(result.error instanceof KubeApiError && result.error.status === 504);
  assert.deepEqual(k.deletedPods, [pod]);
});

Deno.test("kube stage: the watch giving up (after its reconnects): KubeApiError; pod and Secret deleted", async () => {
  const k = new FakeKube(life(...START, [1000, (k, n) => {
    k.failWatch(
      n,
      new KubeApiError({
        operation: `watch pod ${n}`,
        status: 403,
        reason: "Forbidden",
        detail: "no",
      }),
    );
  }]));
  const { result, ms } = await stageOn(k);
  assert.ok(result.error instanceof KubeApiError);
  assert.equal(result.error.status, 403);
  assert.match(result.error.operation, /^watch pod /);
  assertTook(ms, 1000, 2000);
});

Deno.test("kube stage: deletes that never answer are given up after 30 s: the result stands", async () => {
  const k = new FakeKube(life(...START, exits(300, 0)));
  k.deleteHangs = true;
  k.secretDeleteHangs = true;
  const { result, ms, logs, pod } = await stageOn(k, { leftovers: true });
  assert.equal(result.error, undefined);
  assert.equal(result.records[0].result, "succeeded");
  assert.ok(logs.some((l) => l.startsWith(`pod ${pod}: delete failed`)), logs.join("\n"));
  assert.ok(logs.some((l) => /^kube: deleting Secret \S+: timed out/.test(l)), logs.join("\n"));
  // 300 ms of work, then at most 30 s for the pod and 30 s for the Secret.
  assertTook(ms, 60_300, 61_000);
});

Deno.test("kube stage: a leftover pod of the same name is replaced; one that never goes fails the create", async () => {
  const leftover = (k: FakeKube) => {
    const name = workerPodName("run-1", 0, "build");
    k.pods.set(name, { metadata: { name, resourceVersion: "1" }, spec: { containers: [] } });
    return name;
  };
  {
    const k = new FakeKube(life(...START, exits(300, 0)));
    const name = leftover(k);
    const { result, pod } = await stageOn(k);
    assert.equal(pod, name, "the deterministic worker pod name");
    assert.equal(result.error, undefined);
    assert.deepEqual(k.calls.filter((c) => /^(create|delete) pod/.test(c)), [
      `create pod ${pod}`,
      `delete pod ${pod}`,
      `create pod ${pod}`,
      `delete pod ${pod}`,
    ]);
  }
  {
    const k = new FakeKube(life(...START, exits(300, 0)));
    const name = leftover(k);
    k.stuck.add(name); // a finalizer nobody removes
    const { result, ms } = await stageOn(k, { leftovers: true });
    assert.ok(result.error instanceof KubeApiError && result.error.status === 409);
    assertTook(ms, 30_000, 31_000);
    assert.deepEqual([...k.secrets.keys()], [], "the Secret is deleted");
  }
});
