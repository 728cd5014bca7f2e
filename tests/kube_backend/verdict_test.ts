import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { podVerdict } from "../../lib/kube/mod.ts";
import { isOpenShift3, normalizeArch } from "../../lib/executors/kube.ts";

const pod = (status: V1Pod["status"]): V1Pod => ({
  spec: { containers: [{ name: "worker" }], initContainers: [{ name: "ca-trust" }] },
  status,
});
const term = (exitCode: number, reason = exitCode ? "Error" : "Completed") => ({
  terminated: { exitCode, reason },
});

Deno.test("podVerdict: phase Failed is a failure (§12.1.16), exit code from the container", () => {
  assert.deepEqual(
    podVerdict(
      pod({ phase: "Failed", containerStatuses: [{ name: "worker", state: term(3) }] as never }),
    ),
    { kind: "done", exitCode: 3 },
  );
  const v = podVerdict(pod({
    phase: "Failed",
    reason: "DeadlineExceeded",
    message: "Pod was active on the node longer than the specified deadline",
    containerStatuses: [{ name: "worker", state: term(0) }] as never,
  }));
  assert.equal(v.kind, "failed");
  assert.ok(v.kind === "failed" && v.exitCode !== 0 && /DeadlineExceeded/.test(v.reason));
  assert.deepEqual(
    podVerdict(
      pod({ phase: "Succeeded", containerStatuses: [{ name: "worker", state: term(0) }] as never }),
    ),
    {
      kind: "done",
      exitCode: 0,
    },
  );
});

Deno.test("podVerdict: image pull, config errors, OOM, evicted, unschedulable, init failure", () => {
  const waiting = (reason: string) =>
    podVerdict(pod({
      phase: "Pending",
      containerStatuses: [{
        name: "worker",
        state: { waiting: { reason, message: "m" } },
      }] as never,
    }));
  for (const r of ["ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"]) {
    assert.deepEqual(waiting(r), { kind: "failed", exitCode: -1, reason: `${r}: m` });
  }
  assert.deepEqual(waiting("ContainerCreating"), { kind: "pending" });
  const oom = podVerdict(pod({
    phase: "Running",
    containerStatuses: [{
      name: "worker",
      state: { terminated: { exitCode: 137, reason: "OOMKilled" } },
    }] as never,
  }));
  assert.ok(oom.kind === "failed" && oom.exitCode === 137 && oom.reason.startsWith("OOMKilled"));
  const ev = podVerdict(pod({
    phase: "Failed",
    reason: "Evicted",
    message: "low on memory",
    containerStatuses: [{ name: "worker", state: { running: {} } }] as never,
  }));
  assert.deepEqual(ev, { kind: "failed", exitCode: 137, reason: "Evicted: low on memory" });
  const un = podVerdict(pod({
    phase: "Pending",
    conditions: [{
      type: "PodScheduled",
      status: "False",
      reason: "Unschedulable",
      message: "0/3 nodes",
    }] as never,
  }));
  assert.deepEqual(un, { kind: "pending", unschedulable: "Unschedulable: 0/3 nodes" });
  const init = podVerdict(pod({
    phase: "Pending",
    initContainerStatuses: [{ name: "ca-trust", state: term(2) }] as never,
  }));
  assert.ok(init.kind === "failed" && init.exitCode === 2 && /ca-trust/.test(init.reason));
  assert.deepEqual(
    podVerdict(
      pod({
        phase: "Running",
        containerStatuses: [{ name: "worker", state: { running: {} } }] as never,
      }),
    ),
    { kind: "running", started: ["worker"] },
  );
});

Deno.test("podVerdict: a restarted container (CrashLoopBackOff, or running again) is a failure with its last exit code", () => {
  const restarted = (state: object, lastState?: object, restartCount = 1) =>
    podVerdict(pod({
      phase: "Running",
      containerStatuses: [{ name: "worker", state, lastState, restartCount }] as never,
    }));
  assert.deepEqual(
    restarted(
      { waiting: { reason: "CrashLoopBackOff", message: "back-off 10s" } },
      { terminated: { exitCode: 2, reason: "Error" } },
    ),
    {
      kind: "failed",
      exitCode: 2,
      reason: "container worker was restarted: CrashLoopBackOff: back-off 10s",
    },
  );
  assert.deepEqual(
    restarted({ running: {} }, { terminated: { exitCode: 0, reason: "Completed" } }),
    { kind: "failed", exitCode: -1, reason: "container worker was restarted: Completed" },
  );
  // A first run (no restart) is still running.
  assert.deepEqual(restarted({ running: {} }, undefined, 0), {
    kind: "running",
    started: ["worker"],
  });
});

Deno.test("OpenShift 3.11 detection and architecture names", () => {
  assert.equal(isOpenShift3({ major: "1", minor: "11+" }), true);
  assert.equal(isOpenShift3({ major: "1", minor: "11" }), true);
  assert.equal(isOpenShift3({ major: "1", minor: "32" }), false);
  assert.equal(isOpenShift3({ major: "1", minor: "110" }), false);
  assert.equal(normalizeArch("amd64"), "x86_64");
  assert.equal(normalizeArch("arm64"), "aarch64");
  assert.equal(normalizeArch("s390x"), "s390x");
  assert.equal(normalizeArch("ppc64le"), "ppc64le");
});
