import assert from "node:assert/strict";
import {
  RELAY_SECRET_TARGET,
  uidOf,
  workerContainerName,
  workerContainerSpec,
} from "../../lib/podman/mod.ts";
import {
  LABEL_RUN_ID,
  LABEL_STAGE_ID,
  RELAY_SECRET_FILE,
  WORKER_COMMAND,
} from "../../lib/workspec/mod.ts";

const base = {
  runId: "gp-20260101000000-abcdef",
  stageId: "base",
  stageIndex: 0,
  image: "localhost/gangplank-worker:test",
  env: { COSA_WORK_POD_JSON: "eyJ9", COSA_FORCE_ARCH: "x86_64" },
};

Deno.test("worker spec: Gangplank's podman defaults (§8) and the worker command contract", () => {
  const s = workerContainerSpec({ ...base, volume: "vol-0", devices: ["/dev/kvm", "/dev/fuse"] });
  assert.equal(s.name, "gangplank-gp-20260101000000-abcdef-worker-0");
  assert.equal(s.image, base.image);
  assert.deepEqual([...(s.entrypoint as string[]), ...(s.command as string[])], [
    ...WORKER_COMMAND,
  ]);
  assert.equal(s.privileged, true);
  assert.equal(s.user, "builder");
  assert.equal(s.work_dir, "/srv");
  assert.equal(s.umask, "0022");
  assert.deepEqual(s.netns, { nsmode: "host" });
  assert.deepEqual(s.devices, [{ path: "/dev/kvm" }, { path: "/dev/fuse" }]);
  assert.deepEqual(s.volumes, [{ Name: "vol-0", Dest: "/srv", Options: [] }]);
  assert.deepEqual(s.mounts, []);
  assert.deepEqual(s.labels, { [LABEL_RUN_ID]: base.runId, [LABEL_STAGE_ID]: "base" });
  const env = s.env as Record<string, string>;
  assert.equal(env.COSA_WORK_POD_JSON, "eyJ9");
  assert.equal(env.COSA_FORCE_NO_CLUSTER, "1");
  assert.equal(env.XDG_RUNTIME_DIR, "/srv");
  assert.equal(env.DENO_DIR, "/tmp/deno");
  assert.equal(env.COSA_SRV_DIR, "/srv");
});

Deno.test("worker spec: --srv-dir bind mount, local worker mounts, overrides", () => {
  const s = workerContainerSpec({
    ...base,
    srvDir: "/var/srv",
    volume: "ignored-when-srvDir",
    mountWorker: { deno: "/opt/deno", worker: "/repo/dist/work.js" },
    privileged: false,
    user: "root",
    network: "private",
    extra: { hostname: "w0" },
  });
  assert.deepEqual(s.volumes, []);
  assert.deepEqual(s.mounts, [
    { destination: "/srv", type: "bind", source: "/var/srv", options: ["rw"] },
    { destination: "/usr/local/bin/deno", type: "bind", source: "/opt/deno", options: ["ro"] },
    {
      destination: "/usr/lib/gangplank/work.js",
      type: "bind",
      source: "/repo/dist/work.js",
      options: ["ro"],
    },
  ]);
  assert.equal(s.privileged, false);
  assert.equal(s.user, "root");
  assert.deepEqual(s.netns, { nsmode: "private" });
  assert.deepEqual(s.devices, []);
  assert.equal(s.hostname, "w0");
});

Deno.test("worker spec: the relay secret is a secret file, never in env, labels or argv", () => {
  const key = "very-secret-relay-key-123";
  const s = workerContainerSpec({
    ...base,
    secrets: [{
      name: "gangplank-run-0-cosa-relay-secret-key",
      target: RELAY_SECRET_TARGET,
      env: "COSA_RELAY_SECRET_FILE",
    }],
  });
  assert.doesNotMatch(JSON.stringify(s), new RegExp(key));
  assert.equal((s.env as Record<string, string>).COSA_RELAY_SECRET_FILE, RELAY_SECRET_FILE);
  assert.deepEqual(s.secrets, [{
    Source: "gangplank-run-0-cosa-relay-secret-key",
    Target: "gangplank-relay-secret-key",
    UID: 1000,
    GID: 1000,
    Mode: 0o400,
  }]);
});

Deno.test("worker spec: pure (fresh objects each call), names podman accepts", () => {
  const a = workerContainerSpec({ ...base, volume: "v" });
  const b = workerContainerSpec({ ...base, volume: "v" });
  assert.deepEqual(a, b);
  (a.env as Record<string, string>).X = "1";
  assert.equal((b.env as Record<string, string>).X, undefined);
  assert.match(workerContainerName("run/with spaces:and*stuff", 3), /^[a-zA-Z0-9][\w.-]*$/);
  assert.equal(uidOf("builder"), 1000);
  assert.equal(uidOf("root"), 0);
  assert.equal(uidOf("1234:5"), 1234);
  assert.equal(uidOf("someone"), undefined);
});

Deno.test("worker spec: stock cache volumes mounted read-only, the worker run from them", () => {
  const s = workerContainerSpec({
    ...base,
    volume: "vol-0",
    stockVolumes: { deno: "gangplank-deno-abc", worker: "gangplank-worker-def" },
  });
  assert.deepEqual(s.volumes, [
    { Name: "vol-0", Dest: "/srv", Options: [] },
    { Name: "gangplank-deno-abc", Dest: "/gangplank/deno", Options: ["ro"] },
    { Name: "gangplank-worker-def", Dest: "/gangplank/worker", Options: ["ro"] },
  ]);
  assert.deepEqual([...(s.entrypoint as string[]), ...(s.command as string[])], [
    "/gangplank/deno/deno",
    "run",
    "-A",
    "--no-prompt",
    "/gangplank/worker/work.js",
  ]);
  assert.match((s.env as Record<string, string>).PATH, /^\/gangplank\/deno:/);
  assert.deepEqual(s.mounts, [], "nothing of this machine is bound in");
});
