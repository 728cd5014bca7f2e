/**
 * The Build's output image pushed to a REAL registry (Debian's docker-registry, TLS from a test
 * CA, htpasswd auth) by a worker running the stand-in cosa and the real skopeo: the image is
 * read back with `skopeo inspect`. A wrong password, an untrusted certificate and an unreachable
 * registry each fail the stage with one line and leave no auth file behind.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobSpec, Registry } from "../../lib/jobspec/mod.ts";
import { BashRunner, runWorker, type WorkerResult } from "../../lib/worker/mod.ts";
import type { WorkSpec } from "../../lib/workspec/mod.ts";
import { outputRegistry, parseBuild, readPushSecret } from "../../lib/buildconfig/mod.ts";
import { ROOT, tempDir } from "../_helpers/mod.ts";
import { inspectImage, startRegistry, type TestRegistry } from "../_helpers/registry.ts";
import { MemStore } from "../worker/fakes.ts";

function buildTo(name: string) {
  return parseBuild(JSON.stringify({
    kind: "Build",
    apiVersion: "build.openshift.io/v1",
    metadata: { name: "cosa-1", namespace: "ci" },
    spec: {
      strategy: { type: "Custom", customStrategy: {} },
      output: { to: { kind: "DockerImage", name }, pushSecret: { name: "builder-dockercfg" } },
    },
  }));
}

/** The push secret OpenShift mounts at PUSH_DOCKERCFG_PATH, in its old `.dockercfg` form. */
async function pushSecretDir(dir: string, registry: string, user: string, pw: string) {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, ".dockercfg"),
    JSON.stringify({ [registry]: { auth: btoa(`${user}:${pw}`) } }),
    { mode: 0o600 },
  );
  return await readPushSecret(dir);
}

async function runStage(
  dir: string,
  registry: Registry,
  env: Record<string, string>,
): Promise<{ r: WorkerResult; lines: string[]; srv: string }> {
  const srv = join(dir, `srv-${crypto.randomUUID().slice(0, 6)}`);
  await mkdir(srv);
  const ws: WorkSpec = {
    remotefiles: [],
    jobspec: {
      job: {},
      recipe: { git_url: "https://example.com/fake-config.git" },
      minio: { bucket: "builder" },
      stages: [{ id: "build", commands: ["cosa fetch", "cosa build"] }],
      publish_oscontainer: { registries: [registry] },
    } as JobSpec,
    executeStages: ["build"],
    return: { bucket: "builder", key_prefix: "" },
    relay: { host: "127.0.0.1", port: 1, region: "us-east-1", secure: false, accesskey: "AK" },
  };
  const lines: string[] = [];
  const r = await runWorker(ws, {
    srvDir: srv,
    env: {
      COSA_FORCE_ARCH: "x86_64",
      PATH: `${ROOT}/examples/fake-cosa:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      ...env,
    },
    secretKey: "S3CR3T-KEY",
    store: new MemStore(),
    runner: new BashRunner(),
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    saTokenPath: join(dir, "no-token"),
  });
  return { r, lines, srv };
}

async function noAuthLeft(srv: string) {
  assert.equal(existsSync(join(srv, ".docker")), false, "the .docker dir is removed");
  const left = (await readdir(srv, { recursive: true })).filter((p) =>
    /config\.json$|auth\.json$/.test(String(p))
  );
  assert.deepEqual(left, [], "no auth file anywhere in srv");
}

function assertFailure(
  out: { r: WorkerResult; lines: string[] },
  reg: TestRegistry,
  reason: RegExp,
) {
  assert.equal(out.r.exitCode, 1, out.r.message);
  const msg = out.r.message ?? "";
  assert.equal(msg.includes("\n"), false, "one line");
  assert.match(msg, new RegExp(`registry ${reg.address.replace(/\./g, "\\.")}`));
  assert.match(msg, /upload-oscontainer exited with code 1: /);
  assert.match(msg, reason, `the failure says why: ${msg}`);
  for (const l of [msg, ...out.lines]) {
    assert.equal(l.includes(reg.password), false, "no password in any line");
  }
}

Deno.test("output.to DockerImage: the new OSTree lands in the real registry with the build id's tag and the output's tag", async () => {
  await using reg = await startRegistry();
  await using d = await tempDir("gp-bc-push-");
  const auth = await pushSecretDir(join(d.path, "push"), reg.address, reg.user, reg.password);
  const target = `${reg.address}/coreos/fcos:stable`;
  const registry = await outputRegistry(buildTo(target), {
    pushAuth: auth,
    signal: new AbortController().signal,
  });
  assert.ok(registry);
  const out = await runStage(d.path, registry, { SSL_CERT_FILE: reg.caFile });
  assert.equal(out.r.exitCode, 0, `${out.r.message}\n${out.lines.join("\n")}`);
  const id = out.r.buildId!;
  for (const tag of [id, "stable"]) {
    const i = await inspectImage(reg, `${reg.address}/coreos/fcos:${tag}`);
    assert.ok(i.ok, i.stderr);
    assert.equal(
      (i.json!.Labels as Record<string, string>)["coreos-assembler.image-config.build"],
      id,
    );
    assert.equal((i.json!.Layers as string[]).length, 1);
  }
  await noAuthLeft(out.srv);
  for (const l of out.lines) assert.equal(l.includes(reg.password), false);
});

Deno.test("a wrong password, an untrusted certificate, an unreachable registry: the stage fails with one line, no auth file left", async () => {
  await using reg = await startRegistry();
  await using d = await tempDir("gp-bc-push-");
  const target = `${reg.address}/coreos/fcos:stable`;
  const signal = new AbortController().signal;
  const wrong = await pushSecretDir(join(d.path, "wrong"), reg.address, reg.user, "not-it");
  const good = await pushSecretDir(join(d.path, "good"), reg.address, reg.user, reg.password);
  const wrongReg = (await outputRegistry(buildTo(target), { pushAuth: wrong, signal }))!;
  const out1 = await runStage(d.path, wrongReg, { SSL_CERT_FILE: reg.caFile });
  assertFailure(out1, reg, /unauthorized|authentication required/i);
  await noAuthLeft(out1.srv);
  // The right password, but this machine does not trust the registry's CA.
  const goodReg = (await outputRegistry(buildTo(target), { pushAuth: good, signal }))!;
  const out2 = await runStage(d.path, goodReg, {});
  assertFailure(out2, reg, /x509|certificate/i);
  await noAuthLeft(out2.srv);
  // The image is not there after either failure.
  assert.equal((await inspectImage(reg, target)).ok, false);
  // Unreachable: the registry is gone.
  await reg.service.stop();
  const out3 = await runStage(d.path, goodReg, { SSL_CERT_FILE: reg.caFile });
  assertFailure(out3, reg, /connection refused|connect/i);
  await noAuthLeft(out3.srv);
});

Deno.test("buildstrategy_tls_verify false: pushes to a registry whose CA is not trusted", async () => {
  await using reg = await startRegistry();
  await using d = await tempDir("gp-bc-push-");
  const good = await pushSecretDir(join(d.path, "good"), reg.address, reg.user, reg.password);
  const target = `${reg.address}/coreos/insecure:latest`;
  const registry = (await outputRegistry(buildTo(target), {
    pushAuth: good,
    tlsVerify: false,
    signal: new AbortController().signal,
  }))!;
  assert.equal(registry.tls_verify, false);
  const out = await runStage(d.path, registry, {});
  assert.equal(out.r.exitCode, 0, `${out.r.message}\n${out.lines.join("\n")}`);
  assert.ok((await inspectImage(reg, `${reg.address}/coreos/insecure:${out.r.buildId}`)).ok);
  await noAuthLeft(out.srv);
});
