/**
 * `submit` runs in-process (through the harness, as the script does) with local workers:
 * nothing given on the command line or in the JobSpec is dropped on the way to a worker —
 * stage overrides (file://, http://, rpm and tarball types), `-e`, `--env-file`, proxy and
 * credential variables — while the relay's key never reaches a stage's commands; and inputs
 * are refused before anything is created.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { packTarGz } from "../../lib/archive/mod.ts";
import { submit } from "../../lib/cli/mod.ts";
import { runInProcess } from "../_helpers/cli.ts";
import { tempDir } from "../_helpers/mod.ts";

const baseEnv = (tmp: string): Record<string, string> => ({
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  HOME: Deno.env.get("HOME") ?? "/root",
  TMPDIR: tmp,
  ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
});

/** A tar.gz at `dest` holding `files` (relative path → content). */
async function tarball(dest: string, files: Record<string, string>): Promise<void> {
  await using src = await tempDir("gp-ov-src-");
  for (const [p, text] of Object.entries(files)) {
    await Deno.mkdir(join(src.path, p, ".."), { recursive: true });
    await Deno.writeTextFile(join(src.path, p), text);
  }
  await packTarGz({ root: src.path, paths: ["."], dest });
}

Deno.test("overrides (file:// rpm, http:// rootfs tarball, file:// tarball) reach the worker's /srv/overrides", async () => {
  await using tmp = await tempDir("gp-cli-ov-");
  await Deno.mkdir(`${tmp.path}/pkgs`);
  await Deno.writeTextFile(`${tmp.path}/pkgs/foo-1.0.noarch.rpm`, "RPM-BYTES\n");
  await tarball(`${tmp.path}/all.tar.gz`, { "hello.txt": "hello\n", "rpm/bar.rpm": "BAR\n" });
  await tarball(`${tmp.path}/rootfs.tar.gz`, { "etc/motd": "welcome\n" });
  const rootfs = await Deno.readFile(`${tmp.path}/rootfs.tar.gz`);
  const gets: string[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      gets.push(new URL(req.url).pathname);
      return new URL(req.url).pathname === "/rootfs.tar.gz"
        ? new Response(rootfs)
        : new Response("no", { status: 404 });
    },
  );
  const seen = `${tmp.path}/seen`;
  await Deno.writeTextFile(
    `${tmp.path}/job.yaml`,
    `
stages:
  - id: ov
    overrides:
      - uri: file://pkgs/foo-1.0.noarch.rpm
        rpm: true
      - uri: http://127.0.0.1:${server.addr.port}/rootfs.tar.gz
        tarball: true
        tarball_type: rootfs
      - uri: file://${tmp.path}/all.tar.gz
        tarball: true
    commands: ["cp -r \\"$COSA_SRV_DIR/overrides\\" ${seen}"]
`,
  );
  const r = await runInProcess("submit", submit, ["-s", "job.yaml", "-w", "work"], {
    cwd: tmp.path,
    env: baseEnv(tmp.path),
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(await Deno.readTextFile(`${seen}/rpm/foo-1.0.noarch.rpm`), "RPM-BYTES\n");
  assert.equal(await Deno.readTextFile(`${seen}/rootfs/etc/motd`), "welcome\n");
  assert.equal(await Deno.readTextFile(`${seen}/hello.txt`), "hello\n");
  assert.equal(await Deno.readTextFile(`${seen}/rpm/bar.rpm`), "BAR\n");
  assert.deepEqual(gets, ["/rootfs.tar.gz"]);
  // Delivered through the store, where Gangplank put it.
  const cache = [...Deno.readDirSync(`${tmp.path}/work/builds/cache`)].map((e) => e.name);
  assert.ok(cache.some((n) => /^overrides-[a-z0-9]{10}\.tar\.gz$/.test(n)), cache.join(", "));
});

Deno.test("an override that cannot be fetched is bad input naming the stage and URI; no worker runs", async () => {
  await using tmp = await tempDir("gp-cli-ov-bad-");
  await Deno.writeTextFile(
    `${tmp.path}/job.yaml`,
    `stages:\n  - id: ov\n    overrides: [{uri: "file://missing.rpm", rpm: true}]\n` +
      `    commands: ["touch ${tmp.path}/ran"]\n`,
  );
  const r = await runInProcess("submit", submit, ["-s", "job.yaml", "-w", "work"], {
    cwd: tmp.path,
    env: baseEnv(tmp.path),
  });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /stage "ov": override file:\/\/missing\.rpm: .*missing\.rpm/);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.equal(existsSync(`${tmp.path}/ran`), false);
  assert.equal(existsSync(`${tmp.path}/work`), false, "checked before the work dir is made");
});

Deno.test("-e, --env-file, proxy and credential variables reach local workers; the relay key and the rest of the environment do not", async () => {
  await using tmp = await tempDir("gp-cli-env-");
  await Deno.writeTextFile(
    `${tmp.path}/workers.env`,
    "# settings for every worker\n\nBAZ=qux with spaces\nexport FROM_EXPORT=1\n",
  );
  await Deno.writeTextFile(
    `${tmp.path}/job.yaml`,
    `stages:\n  - id: e\n    commands: ["env > ${tmp.path}/env.txt"]\n`,
  );
  const r = await runInProcess("submit", submit, [
    "-s",
    "job.yaml",
    "-w",
    "work",
    "-e",
    "FOO=bar=baz",
    "--env-file",
    "workers.env",
    "-e",
    "BAZ=from-flag",
  ], {
    cwd: tmp.path,
    env: {
      ...baseEnv(tmp.path),
      http_proxy: "http://proxy.example:3128",
      NO_PROXY: "localhost",
      GCP_IMAGE_UPLOAD_CONFIG: "/creds/gcp.json",
      AWS_SHARED_CREDENTIALS_FILE: "/creds/aws",
      AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
      COORDINATOR_ONLY: "must-not-leak",
    },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const env = Object.fromEntries(
    (await Deno.readTextFile(`${tmp.path}/env.txt`)).split("\n").filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  assert.equal(env.FOO, "bar=baz");
  assert.equal(env.BAZ, "from-flag", "-e wins over --env-file");
  assert.equal(env.FROM_EXPORT, "1");
  assert.equal(env.http_proxy, "http://proxy.example:3128");
  assert.equal(env.NO_PROXY, "localhost");
  assert.equal(env.GCP_IMAGE_UPLOAD_CONFIG, "/creds/gcp.json");
  assert.equal(env.AWS_ACCESS_KEY_ID, "AKIAEXAMPLE");
  assert.equal(env.COORDINATOR_ONLY, undefined);
  for (const k of Object.keys(env)) assert.doesNotMatch(k, /RELAY_SECRET|WORK_POD_JSON/, k);
});

Deno.test("user errors: exit 2, one line naming the input, nothing created", async () => {
  await using tmp = await tempDir("gp-cli-err-");
  await Deno.writeTextFile(`${tmp.path}/afile`, "x");
  await Deno.writeTextFile(`${tmp.path}/bad.json`, "{not json");
  await Deno.writeTextFile(`${tmp.path}/bad.env`, "NOT A PAIR\n");
  await Deno.writeTextFile(
    `${tmp.path}/job.yaml`,
    `stages:\n  - id: a\n    commands: ["touch ${tmp.path}/ran"]\n`,
  );
  // A stage requiring what nothing produces: refused by the run exactly as by the dry run.
  await Deno.writeTextFile(
    `${tmp.path}/needs.yaml`,
    `stages:\n  - id: aws\n    build_artifacts: [aws]\n    require_artifacts: [qemu]\n`,
  );
  const cases: [string[], RegExp][] = [
    [["-s", "job.yaml", "-w", "afile"], /-w .*afile: not a directory/],
    [["-s", "job.yaml", "-w", "w", "-m", "missing.json"], /missing\.json/],
    [["-s", "job.yaml", "-w", "w", "-m", "bad.json"], /bad\.json/],
    [["-s", "job.yaml", "-w", "w", "--env-file", "bad.env"], /--env-file bad\.env:1: /],
    [["-s", "job.yaml", "-w", "w", "--env-file", "nope.env"], /--env-file nope\.env/],
    [["-s", "job.yaml", "-w", "w", "-e", "COSA_RELAY_SECRET_KEY=x"], /COSA_RELAY_SECRET_KEY/],
    [["-s", "job.yaml", "-w", "w", "--image", "quay.io/x/y"], /--image .*local backend/],
    [["-s", "job.yaml", "-w", "w", "-A", "base"], /-A: only for a generated JobSpec/],
    [
      ["-s", "job.yaml", "-w", "w", "--backend", "local", "--kubeconfig", "k"],
      /--kubeconfig applies to --backend kube/,
    ],
    [
      ["-s", "job.yaml", "-w", "w", "--kubeconfig", "k", "--relay-address", "10.0.0.1"],
      /--kubeconfig k: no such file/,
    ],
    [["-s", "needs.yaml", "-w", "w"], /stage "aws" \(group \d\) requires artifact qemu/],
    [["-s", "needs.yaml", "-w", "w", "--dry-run"], /stage "aws" \(group \d\) requires/],
    [["-w", "w"], /nothing to run: give --spec/],
    [["-s", "nope.yaml", "-w", "w"], /nope\.yaml: cannot read JobSpec/],
    [["-s", "job.yaml", "-w", "w", "--run-id", "gp-1"], /--run-id applies to --cleanup only/],
    [["-s", "job.yaml", "-w", "w", "-o", "json"], /-o json: applies to --dry-run only/],
    // The dry run checks the same inputs as the run.
    [["-s", "job.yaml", "--dry-run", "--env-file", "bad.env"], /--env-file bad\.env:1: /],
    [["-s", "job.yaml", "--dry-run", "-m", "bad.json"], /bad\.json/],
    [["-s", "job.yaml", "--dry-run", "-w", "afile"], /-w .*afile: not a directory/],
  ];
  for (const [argv, want] of cases) {
    const r = await runInProcess("submit", submit, argv, {
      cwd: tmp.path,
      env: baseEnv(tmp.path),
    });
    const what = argv.join(" ");
    assert.equal(r.code, 2, `${what}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr, want, what);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: no stack trace`);
    assert.equal(existsSync(`${tmp.path}/w`), false, `${what}: created the work dir`);
    assert.equal(existsSync(`${tmp.path}/ran`), false, `${what}: ran a worker`);
  }
  // With --assume-existing both agree again: the dry run passes.
  const ok = await runInProcess("submit", submit, [
    "-s",
    "needs.yaml",
    "--dry-run",
    "--assume-existing",
  ], { cwd: tmp.path, env: baseEnv(tmp.path) });
  assert.equal(ok.code, 0, ok.stderr);
});
