import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors/mod.ts";
import { containerHostOf, parsePodmanRunArgs } from "../../lib/executors/podman_cli.ts";
import { DEFAULT_WORKER_IMAGE } from "../../lib/podman/mod.ts";
import { existsSync } from "node:fs";
import { ROOT, runScript, tempDir } from "../_helpers/mod.ts";

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

Deno.test("podman-run: an ssh:// host with no key or agent is bad input, caught before anything is created", async () => {
  await using tmp = await tempDir();
  const workDir = `${tmp.path}/work`;
  const r = await runScript("podman_run.ts", [
    "-s",
    `${ROOT}/examples/demo.jobspec.yaml`,
    "--remote",
    "ssh://nobody@127.0.0.1:1/run/podman/podman.sock",
    "-w",
    workDir,
  ], { env: { SSH_AUTH_SOCK: "", CONTAINER_SSHKEY: "" }, timeoutMs: 60_000 });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /no key to authenticate with/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.equal(existsSync(workDir), false, "the work dir must not be created");
});
