import assert from "node:assert/strict";
import { ConfigMap, Pod, Secret } from "kubernetes-models/v1";
import {
  type LabelledObject,
  metadataOf,
  MOUNT_REF_LABEL,
  MOUNT_REF_MAPPINGS,
  mountRefs,
  SECRET_LABEL,
  SECRET_MAPPINGS,
  secretMaps,
} from "../../lib/secrets/mod.ts";
import { workerPod } from "../../lib/podspec/mod.ts";

function secret(name: string, type: string, keys: string[]): LabelledObject {
  return { kind: "Secret", name, labels: { [SECRET_LABEL]: type }, keys };
}

function podWith(add: ReturnType<typeof secretMaps>) {
  return workerPod({
    runId: "run1",
    stageId: "s",
    stageIndex: 0,
    image: "img",
    env: {},
    secretFiles: { secretName: "gp-run1-relay", keys: ["COSA_RELAY_SECRET_KEY"] },
    secretMaps: add,
    timeoutSeconds: 60,
  });
}

Deno.test("secretMaps: every §7.3 row maps its env keys and files (0600 under /srv/.<type>/)", () => {
  assert.equal(SECRET_MAPPINGS.length, 9);
  const expected: Record<string, { env: Record<string, string>; files: Record<string, string> }> = {
    "aliyun": { env: {}, files: { ALIYUN_CONFIG_FILE: "config.json" } },
    "aws": {
      env: {
        AWS_ACCESS_KEY_ID: "aws_access_key_id",
        AWS_SECRET_ACCESS_KEY: "aws_secret_access_key",
        AWS_DEFAULT_REGION: "aws_default_region",
      },
      files: { AWS_CONFIG_FILE: "config", AWS_CA_BUNDLE: "aws_ca_bundle" },
    },
    "aws-cn": { env: {}, files: { AWS_CN_CONFIG_FILE: "config" } },
    "azure": {
      env: {},
      files: {
        AZURE_CONFIG: "azure.json",
        AZURE_CERT_KEY: "azure.pem",
        AZURE_PROFILE: "azureProfile.json",
      },
    },
    "gcp": { env: {}, files: { GCP_IMAGE_UPLOAD_CONFIG: "gcp.json" } },
    "internal-ca": { env: {}, files: { SSL_CERT_FILE: "ca.crt" } },
    "push-secret": { env: {}, files: { PUSH_AUTH_JSON: "docker.json" } },
    "pull-secret": { env: {}, files: { PULL_AUTH_JSON: "docker.json" } },
    "keytab": {
      env: {},
      files: { KOJI_KEYTAB: "keytab", KOJI_PRINCIPAL: "principle", KOJI_CONFIG: "config" },
    },
  };
  assert.deepEqual(SECRET_MAPPINGS.map((m) => m.type).sort(), Object.keys(expected).sort());
  for (const [type, want] of Object.entries(expected)) {
    const keys = [
      ...Object.values(want.env),
      ...Object.values(want.files),
      ...(type.endsWith("-secret") ? ["docker.cfg"] : []),
    ];
    const add = secretMaps([secret(`sec-${type}`, type, [...keys, "unrelated"])]);
    assert.deepEqual(add.warnings, [], type);
    for (const [env, key] of Object.entries(want.env)) {
      const e = add.env.find((x) => x.name === env);
      assert.deepEqual(e, {
        name: env,
        valueFrom: { secretKeyRef: { name: `sec-${type}`, key } },
      }, `${type} ${env}`);
    }
    for (const [env, key] of Object.entries(want.files)) {
      const e = add.env.find((x) => x.name === env);
      assert.deepEqual(e, { name: env, value: `/srv/.${type}/${key}` }, `${type} ${env}`);
    }
    assert.equal(add.env.length, Object.keys(want.env).length + Object.keys(want.files).length);
    assert.equal(add.volumes.length, 1);
    const vol = add.volumes[0];
    assert.equal(vol.secret?.secretName, `sec-${type}`);
    assert.equal(vol.secret?.defaultMode, 0o600);
    const items = vol.secret?.items ?? [];
    const fileKeys = [
      ...Object.values(want.files),
      ...(type.endsWith("-secret") ? ["docker.cfg"] : []),
    ];
    assert.deepEqual(items.map((i) => i.key).sort(), fileKeys.sort());
    for (const i of items) {
      assert.equal(i.mode, 0o600);
      assert.equal(i.path, i.key);
    }
    assert.deepEqual(add.mounts, [{ name: vol.name, mountPath: `/srv/.${type}`, readOnly: true }]);
    // No value ever: only names and keys.
    assert.ok(!JSON.stringify(add).includes("unrelated"));
    // The resulting pod is schema-valid.
    new Pod(podWith(add) as never).validate();
  }
});

Deno.test("secretMaps: AWS_CA_BUNDLE is a file path, not the certificate content (§12.1.23)", () => {
  const add = secretMaps([secret("aws", "aws", ["aws_ca_bundle"])]);
  assert.deepEqual(add.env, [{ name: "AWS_CA_BUNDLE", value: "/srv/.aws/aws_ca_bundle" }]);
  assert.ok(!JSON.stringify(add.env).includes("valueFrom"));
});

Deno.test("secretMaps: docker.cfg alone, partial keys, unknown types, duplicates, wrong kind", () => {
  const only = secretMaps([secret("p", "pull-secret", ["docker.cfg"])]);
  assert.deepEqual(only.env, [{ name: "PULL_AUTH_JSON", value: "/srv/.pull-secret/docker.cfg" }]);

  const partial = secretMaps([secret("a", "aws", ["aws_default_region"])]);
  assert.equal(partial.volumes.length, 0, "no file keys, no volume");
  assert.equal(partial.env.length, 1);

  const mixed = secretMaps([
    secret("b-second", "gcp", ["gcp.json"]),
    secret("a-first", "gcp", ["gcp.json"]),
    secret("x", "nonsense", ["k"]),
    secret("none", "gcp", ["other"]),
    { kind: "ConfigMap", name: "cm", labels: { [SECRET_LABEL]: "aws" }, keys: ["config"] },
    { kind: "Secret", name: "unlabelled", labels: {}, keys: ["config"] },
  ]);
  assert.equal(mixed.volumes.length, 1);
  assert.equal(mixed.volumes[0].secret?.secretName, "a-first");
  assert.equal(mixed.warnings.length, 4, mixed.warnings.join("\n"));
  assert.ok(mixed.warnings.some((w) => w.includes("nonsense")));
  assert.ok(mixed.warnings.some((w) => w.includes("b-second")));
  assert.ok(mixed.warnings.some((w) => w.includes("ConfigMap cm")));
  assert.ok(mixed.warnings.some((w) => w.includes("Secret none")));
});

Deno.test("metadataOf keeps names, labels and keys, never values", () => {
  const obj = {
    metadata: { name: "s", labels: { [SECRET_LABEL]: "aws" } },
    data: { aws_access_key_id: btoa("AKIA-SECRET-VALUE") },
    binaryData: { blob: "AAAA" },
  };
  const m = metadataOf("Secret", obj);
  assert.deepEqual(m, {
    kind: "Secret",
    name: "s",
    labels: { [SECRET_LABEL]: "aws" },
    keys: ["aws_access_key_id", "blob"],
  });
  assert.ok(!JSON.stringify(m).includes(btoa("AKIA-SECRET-VALUE")));
});

Deno.test("mountRefs: every §7.4 row, real kind, octal modes (never decimal 444)", () => {
  const expected: Record<string, [string, string]> = {
    "internal-ca": ["pki", "/etc/pki/ca-trust/source/anchors2"],
    "docker.json": ["docker-json", "/srv/secrets/auths"],
    "koji-ca": ["koji-ca", "/etc/pki/brew"],
    "koji-config": ["koji-config", "/etc/koji.conf.d"],
    "krb5.conf": ["koji-kerberos", "/etc/krb5.conf.d"],
  };
  assert.deepEqual(MOUNT_REF_MAPPINGS.map((m) => m.type).sort(), Object.keys(expected).sort());
  for (const row of MOUNT_REF_MAPPINGS) {
    for (const kind of ["Secret", "ConfigMap"] as const) {
      const add = mountRefs([{
        kind,
        name: `obj-${row.volume}`,
        labels: { [MOUNT_REF_LABEL]: row.type },
        keys: ["a"],
      }]);
      assert.deepEqual(add.warnings, []);
      const [vol] = add.volumes;
      assert.equal(vol.name, expected[row.type][0]);
      assert.deepEqual(add.mounts, [{
        name: vol.name,
        mountPath: expected[row.type][1],
        readOnly: true,
      }]);
      if (kind === "Secret") {
        assert.equal(vol.configMap, undefined, `${row.type}: a Secret is mounted as a Secret`);
        assert.equal(vol.secret?.secretName, `obj-${row.volume}`);
        const mode = vol.secret?.defaultMode;
        assert.ok(mode === 0o444 || mode === 0o600, `mode ${mode}`);
        if (!row.public) assert.equal(mode, 0o600, `${row.type} secret stays private`);
      } else {
        assert.equal(vol.secret, undefined);
        assert.equal(vol.configMap?.name, `obj-${row.volume}`);
        assert.ok([0o444, 0o600].includes(vol.configMap?.defaultMode ?? -1));
      }
      assert.notEqual(vol.secret?.defaultMode ?? vol.configMap?.defaultMode, 444);
      assert.equal(add.initMounts.length, row.type === "internal-ca" ? 1 : 0);
    }
  }
  const dup = mountRefs([
    { kind: "ConfigMap", name: "b", labels: { [MOUNT_REF_LABEL]: "koji-ca" }, keys: [] },
    { kind: "ConfigMap", name: "a", labels: { [MOUNT_REF_LABEL]: "koji-ca" }, keys: [] },
    { kind: "ConfigMap", name: "c", labels: { [MOUNT_REF_LABEL]: "what" }, keys: [] },
  ]);
  assert.equal(dup.volumes.length, 1);
  assert.equal(dup.volumes[0].configMap?.name, "a");
  assert.equal(dup.warnings.length, 2);
});

Deno.test("mapped Secrets/ConfigMaps used in tests are themselves valid objects", () => {
  new Secret({ metadata: { name: "s", labels: { [SECRET_LABEL]: "aws" } }, data: {} }).validate();
  new ConfigMap({ metadata: { name: "c", labels: { [MOUNT_REF_LABEL]: "krb5.conf" } } }).validate();
});
