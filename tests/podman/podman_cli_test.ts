import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors/mod.ts";
import { containerHostOf } from "../../lib/executors/podman_cli.ts";
import { parseSubmitArgs, podmanRun, submit } from "../../lib/cli/mod.ts";
import { kubeOptions, podmanOptions } from "../../lib/cli/backends/mod.ts";
import { runInProcess } from "../_helpers/cli.ts";
import { DEFAULT_WORKER_IMAGE } from "../../lib/workspec/mod.ts";
import { existsSync } from "node:fs";
import { ROOT, tempDir } from "../_helpers/mod.ts";

const podmanArgs = (argv: string[], env: Record<string, string> = {}) => {
  const opts = parseSubmitArgs(argv, env, "podman-run");
  return { opts, podman: podmanOptions(opts, env) };
};

Deno.test("podman-run flags: one table with submit's, env fallbacks", () => {
  const { opts, podman } = podmanArgs(
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
  assert.equal(opts.spec, "job.yaml");
  assert.equal(opts.arch, "aarch64");
  assert.equal(opts.backend, "podman");
  assert.deepEqual(opts.workerEnv, { A: "b=c" });
  assert.equal(podman.image, "img:1");
  assert.equal(podman.srvDir, "/srv/x");
  assert.equal(podman.sshKey, "/k");
  assert.equal(podman.remote, "ssh://core@h/run/p.sock");
  assert.equal(podman.remoteSource, "CONTAINER_HOST");
  assert.equal(podman.insecureIgnoreHostKey, false);
  assert.equal(podman.privileged, true);

  const d = podmanArgs([], { CONTAINER_SSHKEY: "/env/key" });
  assert.equal(d.podman.image, DEFAULT_WORKER_IMAGE);
  assert.equal(d.podman.sshKey, "/env/key");
  assert.equal(d.podman.remote, undefined);
  assert.equal(d.opts.arch, undefined, "the podman host's arch unless -a/COSA_FORCE_ARCH");
  assert.equal(d.podman.keepaliveSeconds, 5);
  assert.equal(podmanArgs([], { COSA_FORCE_ARCH: "s390x" }).opts.arch, "s390x");
  // Gangplank's spellings: --srvDir, --sshKey
  const old = podmanArgs(["--srvDir", "/s", "--sshKey", "/k2"]);
  assert.equal(old.podman.srvDir, "/s");
  assert.equal(old.podman.sshKey, "/k2");
  assert.equal(old.opts.notes.length, 2);
});

Deno.test("podman-run flags: bad values are usage errors", () => {
  for (
    const argv of [
      ["--remote"],
      ["-e", "NOEQUALS"],
      ["--keepalive", "0"],
      ["--kubeconfig", "k"],
      ["--backend", "kube"],
    ]
  ) {
    assert.throws(() => podmanArgs(argv), UsageError, argv.join(" "));
  }
});

Deno.test("container host: --remote/CONTAINER_HOST, else the local socket (root or rootless)", () => {
  const p = podmanArgs([]).podman;
  assert.deepEqual(containerHostOf(p, {}, 0), {
    kind: "unix",
    socketPath: "/run/podman/podman.sock",
  });
  assert.deepEqual(containerHostOf(p, { XDG_RUNTIME_DIR: "/run/user/1000" }, 1000), {
    kind: "unix",
    socketPath: "/run/user/1000/podman/podman.sock",
  });
  const r = podmanArgs(["--remote", "ssh://h:2222/run/p.sock"]).podman;
  assert.deepEqual(containerHostOf(r, { USER: "alice" }, 1000), {
    kind: "ssh",
    user: "alice",
    host: "h",
    port: 2222,
    socketPath: "/run/p.sock",
  });
  const bad = podmanArgs(["--remote", "tcp://h"]).podman;
  assert.throws(
    () => containerHostOf(bad, {}, 0),
    (e) => e instanceof UsageError && /^--remote: /.test(e.message),
  );
  const badEnv = podmanArgs([], { CONTAINER_HOST: "tcp://h" }).podman;
  assert.throws(() => containerHostOf(badEnv, {}, 0), /CONTAINER_HOST: expected ssh:/);
});

/** Bad input: exit 2, one line of stderr matching `why`, and no work dir created. */
function assertRefused(
  r: { code: number; stdout: string; stderr: string },
  why: RegExp,
  workDir: string,
): void {
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, why);
  assert.equal(existsSync(workDir), false, "the work dir must not be created");
}

Deno.test("podman-run: an ssh:// host with no key or agent is bad input, caught before anything is created", async () => {
  await using tmp = await tempDir();
  const workDir = `${tmp.path}/work`;
  const r = await runInProcess("podman-run", podmanRun, [
    "-s",
    `${ROOT}/examples/demo.jobspec.yaml`,
    "--remote",
    "ssh://nobody@127.0.0.1:1/run/podman/podman.sock",
    "-w",
    workDir,
  ], { env: { SSH_AUTH_SOCK: "", CONTAINER_SSHKEY: "" }, timeoutMs: 60_000, cwd: tmp.path });
  assertRefused(r, /no key to authenticate with/, workDir);
});

Deno.test("--worker-source/--deno-image: podman and kube read them; bad values and the local backend refuse them", async () => {
  const { podman } = podmanArgs(["--worker-source", "stock", "--deno-image", "reg/deno:1"]);
  assert.equal(podman.workerSource, "stock");
  assert.equal(podman.denoImage, "reg/deno:1");
  const d = podmanArgs([]).podman;
  assert.equal(d.workerSource, undefined, "unset: the stock source (the executor's default)");
  assert.equal(d.denoImage, undefined);
  const kube = kubeOptions(
    parseSubmitArgs(["--backend", "kube", "--worker-source", "stock", "--deno-image", "r/d:2"], {}),
  );
  assert.deepEqual([kube.workerSource, kube.denoImage], ["stock", "r/d:2"]);
  // The image source would not use a Deno image: refused by kube as by podman, never ignored.
  assert.throws(
    () =>
      kubeOptions(
        parseSubmitArgs(["--backend", "kube", "--worker-source", "image", "--deno-image", "x"], {}),
      ),
    (e) =>
      e instanceof UsageError && /--deno-image x: applies to --worker-source stock/.test(e.message),
  );
  assert.throws(
    () => podmanArgs(["--worker-source", "bogus"]),
    (e) => e instanceof UsageError && /--worker-source/.test(e.message) && /bogus/.test(e.message),
  );
  for (const flag of [["--worker-source", "stock"], ["--deno-image", "reg/deno:1"]]) {
    await using tmp = await tempDir();
    const r = await runInProcess("submit", submit, [
      "-s",
      `${ROOT}/examples/demo.jobspec.yaml`,
      "-w",
      `${tmp.path}/work`,
      ...flag,
    ], { timeoutMs: 60_000, cwd: tmp.path });
    assertRefused(
      r,
      new RegExp(`${flag[0]}: the local backend runs workers as processes`),
      `${tmp.path}/work`,
    );
  }
});

Deno.test("podman-run: --deno-image with --worker-source image is refused (it would be ignored)", async () => {
  await using tmp = await tempDir();
  const r = await runInProcess("podman-run", podmanRun, [
    "-s",
    `${ROOT}/examples/demo.jobspec.yaml`,
    "--worker-source",
    "image",
    "--deno-image",
    "reg/deno:1",
    "-w",
    `${tmp.path}/work`,
  ], { timeoutMs: 60_000, cwd: tmp.path });
  assertRefused(
    r,
    /--deno-image reg\/deno:1: applies to --worker-source stock/,
    `${tmp.path}/work`,
  );
});
