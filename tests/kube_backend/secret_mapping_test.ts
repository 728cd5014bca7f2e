/**
 * Secret mapping end to end through the simulated kubelet (podman, worker test image): every
 * §7.3 row becomes env vars (`secretKeyRef`) and 0600 files under `/srv/.<type>/`, every §7.4
 * row a mount of the object's real kind; checked from inside the worker container by hash, so
 * no value is ever printed. The pod spec itself carries no value.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { ensureTestImage, podmanMissing, TEST_WORKER_IMAGE } from "../_helpers/podman.ts";
import { type KObj, startKubeApiServer } from "../_kube_sim/api_server.ts";
import { KubeClient } from "../../lib/kube/mod.ts";
import { KubeExecutor } from "../../lib/executors/kube.ts";
import {
  MOUNT_REF_LABEL,
  MOUNT_REF_MAPPINGS,
  SECRET_LABEL,
  SECRET_MAPPINGS,
} from "../../lib/secrets/mod.ts";

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/kube_backend/secret_mapping_test.ts: ${missing}`);

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const b64 = (s: string) => Buffer.from(s).toString("base64");

Deno.test({
  name: "secret mapping e2e: every §7.3 and §7.4 row, files 0600, env vars set, no value in specs",
  ignore: missing !== undefined,
}, async () => {
  await ensureTestImage();
  await using kube = await startKubeApiServer({ kubelet: { mode: "podman" } });
  const values = new Map<string, string>(); // "<secret>/<key>" → value
  const put = (
    kind: "secrets" | "configmaps",
    name: string,
    labels: Record<string, string>,
    keys: string[],
  ) => {
    const data: Record<string, string> = {};
    for (const k of keys) {
      const v = `${name}-${k}-${crypto.randomUUID()}`;
      values.set(`${name}/${k}`, v);
      data[k] = kind === "secrets" ? b64(v) : v;
    }
    kube.store.create(kind, {
      apiVersion: "v1",
      kind: kind === "secrets" ? "Secret" : "ConfigMap",
      metadata: { namespace: "default", name, labels },
      data,
    } as KObj);
  };
  // §7.3: one Secret per row with every key the row knows (+ docker.cfg alternatives).
  const expectEnv: { env: string; value: string }[] = [];
  const expectFile: { env: string; path: string; value: string }[] = [];
  for (const row of SECRET_MAPPINGS) {
    const name = `cred-${row.type}`;
    const keys = [...row.envs.map((e) => e.key), ...row.files.flatMap((f) => f.keys)];
    put("secrets", name, { [SECRET_LABEL]: row.type }, keys);
    for (const e of row.envs) {
      expectEnv.push({ env: e.env, value: values.get(`${name}/${e.key}`)! });
    }
    for (const f of row.files) {
      expectFile.push({
        env: f.env,
        path: `/srv/.${row.type}/${f.keys[0]}`,
        value: values.get(`${name}/${f.keys[0]}`)!,
      });
    }
  }
  // §7.4: Secret or ConfigMap per row (krb5.conf as a Secret: mounted as a Secret).
  const expectMount: { path: string; mode: string; value: string }[] = [];
  for (const row of MOUNT_REF_MAPPINGS) {
    const kind = row.type === "krb5.conf"
      ? "secrets"
      : row.defaultKind === "Secret"
      ? "secrets"
      : "configmaps";
    const name = `mount-${row.volume}`;
    put(kind, name, { [MOUNT_REF_LABEL]: row.type }, ["file.crt"]);
    const mode = kind === "secrets" && !row.public ? "600" : "444";
    expectMount.push({
      path: `${row.mountPath}/file.crt`,
      mode,
      value: values.get(`${name}/file.crt`)!,
    });
  }
  // SSL_CERT_FILE is both the CA-trust default and the internal-ca mapping: the mapping wins.
  const fileEnvs = expectFile.map((f) => f.env);
  const script = [
    ...expectEnv.map((e) =>
      `printf 'env ${e.env} %s\\n' "$(printf %s "$${e.env}" | sha256sum | cut -c1-64)"`
    ),
    ...fileEnvs.map((e) =>
      `f="$${e}"; printf 'file ${e} %s %s %s\\n' "$f" "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -c1-64)"`
    ),
    ...expectMount.map((m) =>
      `printf 'mount ${m.path} %s %s\\n' "$(stat -c %a "${m.path}")" "$(sha256sum < "${m.path}" | cut -c1-64)"`
    ),
    `printf 'relay %s %s\\n' "$(stat -c %a "$COSA_RELAY_SECRET_FILE")" "$(sha256sum < "$COSA_RELAY_SECRET_FILE" | cut -c1-64)"`,
    `printf 'relay-env %s\\n' "\${COSA_RELAY_SECRET_KEY:-none}"`,
    `printf 'bundle %s\\n' "$(test -f "/etc/containers/certs.d/ca.crt" && echo present)"`,
    // The CA-trust init container put the internal-ca mount-ref into the bundle.
    `grep -qF "$(cat /etc/pki/ca-trust/source/anchors2/file.crt)" /etc/containers/certs.d/ca.crt && echo bundle-has-internal-ca`,
  ].join("\n");

  const client = KubeClient.connect({ target: { kind: "kubeconfig", path: kube.kubeconfigPath } });
  const logs: string[] = [];
  const lines: string[] = [];
  const relayKey = `relay-${crypto.randomUUID()}`;
  const podSnapshots: string[] = [];
  const cleanups: (() => void)[] = [];
  {
    await using exec = new KubeExecutor({
      client,
      image: TEST_WORKER_IMAGE,
      command: ["/bin/sh", "-c", script],
      // Root image, no fsGroup: the modes are the mapping's own (fsGroup adds group-read).
      fsGroup: "none",
      log: (m) => logs.push(m),
    });
    const signal = AbortSignal.timeout(120_000);
    const snap = setInterval(() => podSnapshots.push(JSON.stringify(kube.pods())), 50);
    signal.addEventListener("abort", () => clearInterval(snap));
    cleanups.push(() => clearInterval(snap));
    const ep = await exec.prepare({ host: kube.nodeIP, port: 9 }, { runId: "map-test", signal });
    assert.deepEqual(ep, { host: kube.nodeIP, port: 9 });
    assert.equal(await exec.arch({ signal }), "x86_64");
    const out = await exec.runStage({
      runId: "map-test",
      stageId: "check",
      stageIndex: 0,
      env: { COSA_FORCE_ARCH: "x86_64" },
      secretEnv: { COSA_RELAY_SECRET_KEY: relayKey },
      onLine: (l) => lines.push(l),
      signal,
    });
    assert.equal(
      out.exitCode,
      0,
      `${JSON.stringify(out)}\n${lines.join("\n")}\n${logs.join("\n")}`,
    );
    // The stage's Secret went when the stage ended.
    assert.equal(
      kube.secrets({ labelSelector: "gangplank.coreos-assembler.coreos.com/run-id=map-test" })
        .length,
      0,
    );
  }
  assert.equal(
    kube.secrets({ labelSelector: "gangplank.coreos-assembler.coreos.com/run-id=map-test" }).length,
    0,
  );
  assert.equal(kube.pods().length, 0);
  const text = lines.join("\n");
  for (const e of expectEnv) {
    assert.ok(text.includes(`env ${e.env} ${sha(e.value)}`), `${e.env}\n${text}`);
  }
  for (const f of expectFile) {
    assert.ok(text.includes(`file ${f.env} ${f.path} 600 ${sha(f.value)}`), `${f.env}\n${text}`);
  }
  for (const m of expectMount) {
    assert.ok(text.includes(`mount ${m.path} ${m.mode} ${sha(m.value)}`), `${m.path}\n${text}`);
  }
  // The relay key: a 0600 file (from the memory volume), not an env var.
  assert.ok(text.includes(`relay 600 ${sha(relayKey)}`), text);
  assert.ok(text.includes("relay-env none"), text);
  assert.ok(text.includes("bundle present"), "the CA-trust init container wrote SSL bundle");
  assert.ok(text.includes("bundle-has-internal-ca"), text);
  // No value in the output, nor in any request the kubelet or we made visible (pod objects).
  assert.ok(podSnapshots.some((p) => p.includes("secretKeyRef")), "pods were recorded");
  for (const v of [...values.values(), relayKey]) {
    assert.ok(!text.includes(v));
    for (const p of podSnapshots) {
      assert.ok(!p.includes(v) && !p.includes(b64(v)), "value in a pod");
    }
  }
});
