import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors/mod.ts";
import { containerHostOf, parsePodmanRunArgs } from "../../lib/executors/podman_cli.ts";
import { DEFAULT_WORKER_IMAGE } from "../../lib/podman/mod.ts";

Deno.test("podman-run flags: split from submit's, env fallbacks", () => {
  const { podman, rest } = parsePodmanRunArgs(
    [
      "-s",
      "job.yaml",
      "-i",
      "img:1",
      "-S",
      "/srv/x",
      "--sshkey=/k",
      "-a",
      "aarch64",
      "-e",
      "A=b=c",
    ],
    { CONTAINER_HOST: "ssh://core@h/run/p.sock", CONTAINER_SSHKEY: "/env/key" },
  );
  assert.deepEqual(rest, ["-s", "job.yaml", "-a", "aarch64"]);
  assert.equal(podman.image, "img:1");
  assert.equal(podman.srvDir, "/srv/x");
  assert.equal(podman.sshKey, "/k");
  assert.equal(podman.remote, "ssh://core@h/run/p.sock");
  assert.equal(podman.remoteSource, "CONTAINER_HOST");
  assert.equal(podman.archGiven, true);
  assert.deepEqual(podman.env, { A: "b=c" });
  assert.equal(podman.insecureIgnoreHostKey, false);
  assert.equal(podman.privileged, true);

  const d = parsePodmanRunArgs([], { CONTAINER_SSHKEY: "/env/key" }).podman;
  assert.equal(d.image, DEFAULT_WORKER_IMAGE);
  assert.equal(d.sshKey, "/env/key");
  assert.equal(d.remote, undefined);
  assert.equal(d.archGiven, false);
  assert.equal(d.keepaliveSeconds, 5);
  assert.equal(parsePodmanRunArgs([], { COSA_FORCE_ARCH: "s390x" }).podman.archGiven, true);
});

Deno.test("podman-run flags: bad values are usage errors", () => {
  for (const argv of [["--remote"], ["-i", "--spec"], ["-e", "NOEQUALS"], ["--keepalive", "0"]]) {
    assert.throws(() => parsePodmanRunArgs(argv, {}), UsageError, argv.join(" "));
  }
});

Deno.test("container host: --remote/CONTAINER_HOST, else the local socket (root or rootless)", () => {
  const p = parsePodmanRunArgs([], {}).podman;
  assert.deepEqual(containerHostOf(p, {}, 0), {
    kind: "unix",
    socketPath: "/run/podman/podman.sock",
  });
  assert.deepEqual(containerHostOf(p, { XDG_RUNTIME_DIR: "/run/user/1000" }, 1000), {
    kind: "unix",
    socketPath: "/run/user/1000/podman/podman.sock",
  });
  const r = parsePodmanRunArgs(["--remote", "ssh://h:2222/run/p.sock"], {}).podman;
  assert.deepEqual(containerHostOf(r, { USER: "alice" }, 1000), {
    kind: "ssh",
    user: "alice",
    host: "h",
    port: 2222,
    socketPath: "/run/p.sock",
  });
  const bad = parsePodmanRunArgs(["--remote", "tcp://h"], {}).podman;
  assert.throws(
    () => containerHostOf(bad, {}, 0),
    (e) => e instanceof UsageError && /^--remote: /.test(e.message),
  );
  const badEnv = parsePodmanRunArgs([], { CONTAINER_HOST: "tcp://h" }).podman;
  assert.throws(() => containerHostOf(badEnv, {}, 0), /CONTAINER_HOST: expected ssh:/);
});
