import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors/mod.ts";
import {
  decodeWorkSpec,
  encodeWorkSpec,
  ENV_RELAY_SECRET_KEY,
  remoteFileTarget,
  srvRelative,
  withoutRegistrySecrets,
  withRegistrySecrets,
  type WorkSpec,
  WorkSpecError,
} from "../../lib/workspec/mod.ts";
import type { JobSpec } from "../../lib/jobspec/mod.ts";

const SHA = "a".repeat(64);

function sample(): WorkSpec {
  return {
    remotefiles: [
      {
        bucket: "builder",
        object: "p/b.1/x86_64/q.qcow2",
        artifact: { name: "qemu", path: "q.qcow2", sha256: SHA, size: 10 },
        force_path: "/srv/builds/b.1/x86_64/q.qcow2",
      },
      {
        bucket: "builder",
        object: "p/cache/cache.tar.gz",
        compressed: true,
        force_extract_path: "/",
      },
      { bucket: "builder", object: "p/builds.json", force_path: "builds/builds.json" },
    ],
    jobspec: {
      job: {},
      recipe: {},
      minio: { bucket: "builder", key_prefix: "p" },
      stages: [{ id: "base", build_artifacts: ["base"] }],
    } as JobSpec,
    executeStages: ["base"],
    return: { bucket: "builder", key_prefix: "/p/" },
    relay: { host: "127.0.0.1", port: 9000, region: "us-east-1", secure: false, accesskey: "AK" },
  };
}

function rejects(mut: (w: Record<string, unknown>) => void, path: string | RegExp) {
  const w = JSON.parse(JSON.stringify(sample()));
  mut(w);
  assert.throws(() => decodeWorkSpec(JSON.stringify(w)), (e) => {
    assert.ok(e instanceof WorkSpecError, String(e));
    assert.ok(e instanceof UsageError);
    if (typeof path === "string") assert.equal(e.path, path, e.message);
    else assert.match(e.path, path);
    assert.ok(e.message.includes(e.path));
    return true;
  });
}

Deno.test("encode/decode round trip normalises paths and key prefix", () => {
  const ws = decodeWorkSpec(encodeWorkSpec(sample()));
  assert.equal(ws.remotefiles[0].force_path, "builds/b.1/x86_64/q.qcow2");
  assert.equal(ws.remotefiles[1].force_extract_path, "");
  assert.equal(ws.remotefiles[1].compressed, true);
  assert.equal(ws.remotefiles[2].force_path, "builds/builds.json");
  assert.equal(ws.return.key_prefix, "p");
  assert.deepEqual(ws.remotefiles[0].artifact, {
    name: "qemu",
    path: "q.qcow2",
    sha256: SHA,
    size: 10,
  });
  assert.equal(ws.jobspec.stages[0].id, "base");
  assert.equal(remoteFileTarget(ws.remotefiles[0]), "builds/b.1/x86_64/q.qcow2");
  assert.equal(remoteFileTarget({ bucket: "source", object: "a/b" }), "source/a/b");
  assert.ok(!encodeWorkSpec(sample()).includes("secret"));
});

Deno.test("decode: errors name the JSON path", () => {
  assert.throws(() => decodeWorkSpec("{nope"), WorkSpecError);
  assert.throws(() => decodeWorkSpec("[]"), WorkSpecError);
  rejects((w) => delete w.jobspec, "jobspec");
  rejects((w) => (w.executeStages = []), "executeStages");
  rejects((w) => (w.executeStages = ["nope"]), "executeStages[0]");
  rejects((w) => ((w.remotefiles as unknown[])[0] = 5), "remotefiles[0]");
  rejects(
    (w) => ((w.remotefiles as Record<string, unknown>[])[0].bucket = "../x"),
    "remotefiles[0].bucket",
  );
  rejects(
    (w) => ((w.remotefiles as Record<string, Record<string, unknown>>[])[0].artifact.sha256 = "zz"),
    "remotefiles[0].artifact.sha256",
  );
  rejects(
    (w) => ((w.remotefiles as Record<string, Record<string, unknown>>[])[0].artifact.size = -1),
    "remotefiles[0].artifact.size",
  );
  rejects((w) => ((w.relay as Record<string, unknown>).port = 0), "relay.port");
  rejects((w) => ((w.relay as Record<string, unknown>).accesskey = ""), "relay.accesskey");
  rejects((w) => ((w.return as Record<string, unknown>).bucket = "A_B"), "return.bucket");
  rejects(
    (w) => ((w.return as Record<string, unknown>).key_prefix = "a/../b"),
    "return.key_prefix",
  );
});

Deno.test("decode: refuses a secret key inside the WorkSpec without echoing it", () => {
  const w = JSON.parse(JSON.stringify(sample()));
  w.relay.secretkey = "TOPSECRET123";
  assert.throws(() => decodeWorkSpec(JSON.stringify(w)), (e) => {
    assert.ok(e instanceof WorkSpecError);
    assert.equal(e.path, "relay.secretkey");
    assert.ok(!e.message.includes("TOPSECRET123"));
    assert.ok(e.message.includes(ENV_RELAY_SECRET_KEY));
    return true;
  });
});

Deno.test("decode: refuses paths and keys escaping the srv dir", () => {
  const rf = (k: string, v: unknown) =>
  (
    w: Record<string, unknown>,
  ) => ((w.remotefiles as Record<string, unknown>[])[0][k] = v);
  rejects(rf("force_path", "../etc/passwd"), "remotefiles[0].force_path");
  rejects(rf("force_path", "/etc/passwd"), "remotefiles[0].force_path");
  rejects(rf("force_path", "/srv/../etc/passwd"), "remotefiles[0].force_path");
  rejects(rf("force_path", "builds/../../x"), "remotefiles[0].force_path");
  rejects(rf("force_path", "/srv"), "remotefiles[0].force_path");
  rejects(rf("force_extract_path", "/tmp"), "remotefiles[0].force_extract_path");
  rejects(rf("force_extract_path", "../"), "remotefiles[0].force_extract_path");
  rejects(rf("object", "../../etc/passwd"), "remotefiles[0].object");
  rejects(rf("object", "/abs"), "remotefiles[0].object");
  const noForce = (w: Record<string, unknown>) => {
    const f = (w.remotefiles as Record<string, unknown>[])[0];
    delete f.force_path;
    f.object = "a/./b";
  };
  rejects(noForce, "remotefiles[0].object");
});

Deno.test("srvRelative", () => {
  assert.equal(srvRelative("/srv/builds/x"), "builds/x");
  assert.equal(srvRelative("builds/./x/"), "builds/x");
  assert.equal(srvRelative("/"), "");
  assert.equal(srvRelative(""), "");
  assert.equal(srvRelative("a/../b"), undefined);
  assert.equal(srvRelative("/srvx/a"), undefined);
  assert.equal(srvRelative("/etc"), undefined);
  assert.equal(srvRelative("a\0b"), undefined);
});

Deno.test("registry secrets: split out of a JobSpec copy and put back, original untouched", () => {
  const spec = {
    job: {},
    recipe: {},
    minio: { bucket: "builder" },
    stages: [{ id: "a", commands: ["true"] }],
    publish_oscontainer: {
      registries: [
        { url: "quay.io/a/b", secret_type: "inline" as const, secret: '{"auths":{}}' },
        { url: "r.example/c", secret_type: "token" as const },
      ],
    },
  } as JobSpec;
  const { spec: wire, secrets } = withoutRegistrySecrets(spec);
  assert.deepEqual(secrets, { "0": '{"auths":{}}' });
  assert.equal(wire.publish_oscontainer?.registries?.[0].secret, undefined);
  assert.equal(spec.publish_oscontainer?.registries?.[0].secret, '{"auths":{}}');
  assert.deepEqual(withRegistrySecrets(wire, secrets), spec);
});
