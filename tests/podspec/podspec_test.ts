import assert from "node:assert/strict";
import { Pod, Secret } from "kubernetes-models/v1";
import {
  CA_BUNDLE,
  caTrustScript,
  dryRunObjects,
  hopPod,
  hopSecret,
  KVM_RESOURCE,
  labelValue,
  redactSecret,
  RUN_ID_LABEL,
  runSecret,
  runSecretName,
  runSelector,
  SECRET_PLACEHOLDER,
  SECRETS_DIR,
  SECRETS_SOURCE_DIR,
  STAGE_ID_LABEL,
  workerPod,
  workerPodName,
  type WorkerPodOptions,
} from "../../lib/podspec/mod.ts";
import { MOUNT_REF_LABEL, mountRefs, SECRET_LABEL, secretMaps } from "../../lib/secrets/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";

const RELAY_KEY = "relay-secret-value-9f8e7d6c5b4a";
const LABEL_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function opts(over: Partial<WorkerPodOptions> = {}): WorkerPodOptions {
  const runId = "20261126-abcdef";
  return {
    runId,
    stageId: "Build Base!",
    stageIndex: 2,
    image: "localhost/gangplank-worker:test",
    env: { COSA_WORK_POD_JSON: '{"executeStages":["x"]}', COSA_FORCE_ARCH: "x86_64" },
    secretFiles: { secretName: runSecretName(runId), keys: ["COSA_RELAY_SECRET_KEY"] },
    timeoutSeconds: 5400,
    ...over,
  };
}

function validatePod(p: unknown) {
  new Pod(p as never).validate();
}

Deno.test("workerPod: schema-valid, Never restart, labels, names, deadline ≥ timeout", () => {
  const pod = workerPod(opts());
  validatePod(pod);
  assert.equal(pod.spec?.restartPolicy, "Never");
  assert.ok((pod.spec?.activeDeadlineSeconds ?? 0) >= 5400);
  assert.match(pod.metadata!.name!, DNS_LABEL_RE);
  assert.ok(pod.metadata!.name!.length <= 63);
  assert.equal(pod.metadata?.name, workerPodName("20261126-abcdef", 2, "Build Base!"));
  assert.equal(pod.metadata?.labels?.[RUN_ID_LABEL], "20261126-abcdef");
  for (const v of Object.values(pod.metadata!.labels!)) assert.match(v, LABEL_RE);
  assert.match(pod.metadata!.labels![STAGE_ID_LABEL], LABEL_RE);
  assert.equal(pod.spec?.serviceAccountName, undefined);
  const main = pod.spec!.containers[0];
  assert.deepEqual(main.command, [
    "/usr/local/bin/deno",
    "run",
    "-A",
    "--no-prompt",
    "/usr/lib/gangplank/work.js",
  ]);
  assert.equal(main.workingDir, "/srv");
  const env = Object.fromEntries((main.env ?? []).map((e) => [e.name, e]));
  assert.equal(env.DENO_DIR.value, "/tmp/deno");
  assert.equal(env.COSA_SRV_DIR.value, "/srv");
  assert.equal(env.COSA_FORCE_ARCH.value, "x86_64");
  // The key is a file in a memory volume the worker can delete, never an env var
  // (secretKeyRef would leave it in /proc/<worker pid>/environ).
  assert.equal(env.COSA_RELAY_SECRET_KEY, undefined);
  assert.ok(!JSON.stringify(pod).includes("secretKeyRef"));
  assert.equal(env.COSA_RELAY_SECRET_FILE.value, `${SECRETS_DIR}/COSA_RELAY_SECRET_KEY`);
  const vols = Object.fromEntries(pod.spec!.volumes!.map((v) => [v.name, v]));
  const inMain = main.volumeMounts!.find((m) => m.mountPath === SECRETS_DIR)!;
  assert.deepEqual(vols[inMain.name].emptyDir, { medium: "Memory", sizeLimit: "1Mi" });
  const copier = pod.spec!.initContainers!.find((c) => c.name === "secrets")!;
  const src = copier.volumeMounts!.find((m) => m.mountPath === SECRETS_SOURCE_DIR)!;
  assert.equal(vols[src.name].secret?.secretName, runSecretName("20261126-abcdef"));
  assert.ok(copier.volumeMounts!.some((m) => m.name === inMain.name));
  // The Secret itself is mounted into the copying init container only.
  for (const c of [main, pod.spec!.initContainers![0]]) {
    assert.ok(!c.volumeMounts!.some((m) => m.name === src.name), c.name);
  }
  assert.match(copier.command!.join(" "), /umask 077/);
  // Without secrets there is neither the init container nor the volumes.
  const none = workerPod(opts({ secretFiles: { secretName: "x", keys: [] } }));
  assert.deepEqual(none.spec!.initContainers!.map((c) => c.name), ["ca-trust"]);
  assert.equal(none.spec!.volumes!.length, 4);
  assert.deepEqual(main.resources?.requests, { cpu: "2", memory: "4Gi" });
  assert.deepEqual(main.resources?.limits, main.resources?.requests);
  assert.equal(main.securityContext, undefined);
  // With a service account:
  assert.equal(workerPod(opts({ serviceAccount: "builder" })).spec?.serviceAccountName, "builder");
  // Short timeouts still leave the deadline at or above the timeout.
  for (const t of [1, 59, 1800, 7200]) {
    assert.ok(workerPod(opts({ timeoutSeconds: t })).spec!.activeDeadlineSeconds! >= t);
  }
});

Deno.test("workerPod: the CA bundle lands in the volume SSL_CERT_FILE points at (§12.1.26)", () => {
  const pod = workerPod(opts());
  const main = pod.spec!.containers[0];
  const init = pod.spec!.initContainers![0];
  const ssl = main.env!.find((e) => e.name === "SSL_CERT_FILE")!.value!;
  assert.equal(ssl, CA_BUNDLE);
  const dir = ssl.slice(0, ssl.lastIndexOf("/"));
  const mainMount = main.volumeMounts!.find((m) => m.mountPath === dir);
  const initMount = init.volumeMounts!.find((m) => m.mountPath === dir);
  assert.ok(mainMount && initMount, `${dir} is mounted in both containers`);
  assert.equal(mainMount.name, initMount.name);
  assert.ok(pod.spec!.volumes!.some((v) => v.name === mainMount.name && v.emptyDir));
  const script = init.command!.join(" ");
  assert.ok(script.includes(`>> ${ssl}`), "the init script appends to SSL_CERT_FILE");
  assert.ok(script.includes(`: > ${ssl}`));
  // Every path the init script writes to under /etc/containers is the volume.
  assert.ok(!/cert\.d\b/.test(script), "no stray cert.d path");
});

Deno.test("workerPod: OpenShift 3 vs 4, KVM, s390x memory, resource overrides", () => {
  const v4 = workerPod(opts({ kvm: true }));
  const r4 = v4.spec!.containers[0].resources!;
  assert.equal(r4.requests?.[KVM_RESOURCE], "1");
  assert.equal(r4.limits?.[KVM_RESOURCE], "1");
  validatePod(v4);
  const v3 = workerPod(opts({ ocp3: true }));
  validatePod(v3);
  for (const c of [...v3.spec!.containers, ...v3.spec!.initContainers!]) {
    assert.deepEqual(c.securityContext, { runAsUser: 0, runAsGroup: 1000, privileged: true });
  }
  assert.ok(v3.spec!.initContainers![0].command![2].includes("/dev/kvm"));
  assert.ok(!caTrustScript(false).includes("/dev/kvm"));
  assert.equal(
    workerPod(opts({ arch: "s390x" })).spec!.containers[0].resources!.limits!.memory,
    "12Gi",
  );
  const fs = workerPod(opts({ fsGroup: 1000 }));
  validatePod(fs);
  assert.deepEqual(fs.spec!.securityContext, { fsGroup: 1000 });
  assert.equal(workerPod(opts()).spec!.securityContext, undefined);
  const custom = workerPod(opts({ resources: { cpu: "500m", memory: "1Gi" } }));
  assert.deepEqual(custom.spec!.containers[0].resources!.requests, { cpu: "500m", memory: "1Gi" });
});

Deno.test("workerPod: fresh objects every call", () => {
  const a = workerPod(opts());
  a.spec!.containers[0].env!.push({ name: "X", value: "y" });
  a.metadata!.labels!.x = "y";
  a.spec!.volumes!.pop();
  const b = workerPod(opts());
  assert.ok(!b.spec!.containers[0].env!.some((e) => e.name === "X"));
  assert.equal(b.metadata!.labels!.x, undefined);
  assert.equal(b.spec!.volumes!.length, 6);
});

Deno.test("workerPod with secret maps and mount refs: valid, env order, init gets the CA", () => {
  const sm = secretMaps([
    {
      kind: "Secret",
      name: "aws",
      labels: { [SECRET_LABEL]: "aws" },
      keys: ["aws_access_key_id", "config"],
    },
    { kind: "Secret", name: "ca", labels: { [SECRET_LABEL]: "internal-ca" }, keys: ["ca.crt"] },
  ]);
  const mr = mountRefs([
    { kind: "Secret", name: "ica", labels: { [MOUNT_REF_LABEL]: "internal-ca" }, keys: ["a.crt"] },
    { kind: "Secret", name: "krb", labels: { [MOUNT_REF_LABEL]: "krb5.conf" }, keys: ["x"] },
  ]);
  const pod = workerPod(opts({ mounts: mr, secretMaps: sm }));
  validatePod(pod);
  const main = pod.spec!.containers[0];
  const names = main.env!.map((e) => e.name);
  assert.equal(new Set(names).size, names.length, "no duplicate env names");
  // The internal-ca secret mapping overrides the default SSL_CERT_FILE.
  assert.equal(
    main.env!.find((e) => e.name === "SSL_CERT_FILE")!.value,
    "/srv/.internal-ca/ca.crt",
  );
  assert.equal(names.at(-1), "COSA_RELAY_SECRET_FILE");
  assert.ok(pod.spec!.initContainers![0].volumeMounts!.some((m) => m.name === "pki"));
  assert.ok(main.volumeMounts!.some((m) => m.mountPath === "/srv/.aws"));
  const krb = pod.spec!.volumes!.find((v) => v.name === "koji-kerberos")!;
  assert.equal(krb.secret?.secretName, "krb");
  assert.equal(krb.secret?.defaultMode, 0o600);
});

Deno.test("runSecret: the only object holding the value; redacted copy for --dry-run", () => {
  const s = runSecret("run-1", { COSA_RELAY_SECRET_KEY: RELAY_KEY });
  new Secret(s as never).validate();
  assert.equal(s.type, "Opaque");
  assert.equal(atob(s.data!.COSA_RELAY_SECRET_KEY), RELAY_KEY);
  assert.equal(s.metadata?.labels?.[RUN_ID_LABEL], "run-1");
  const r = redactSecret(s);
  new Secret(r as never).validate();
  assert.deepEqual(r.stringData, { COSA_RELAY_SECRET_KEY: SECRET_PLACEHOLDER });
  assert.equal(r.data, undefined);
  const text = JSON.stringify(r);
  assert.ok(!text.includes(RELAY_KEY) && !text.includes(s.data!.COSA_RELAY_SECRET_KEY));
  // The pod never carries it, in plain or base64 form.
  const pod = JSON.stringify(workerPod(opts()));
  assert.ok(!pod.includes(RELAY_KEY) && !pod.includes(btoa(RELAY_KEY)));
});

Deno.test("dryRunObjects: redacted Secret + one valid pod per stage", () => {
  const objs = dryRunObjects({
    runId: "r",
    image: "img",
    timeoutSeconds: 60,
    stages: [{ id: "a", index: 0, env: { A: "1" } }, { id: "b", index: 1, env: {} }],
    secretKeys: ["COSA_RELAY_SECRET_KEY"],
  });
  assert.deepEqual(objs.map((o) => o.kind), ["Secret", "Pod", "Pod"]);
  new Secret(objs[0] as never).validate();
  validatePod(objs[1]);
  validatePod(objs[2]);
  assert.notEqual(objs[1].metadata!.name, objs[2].metadata!.name);
});

Deno.test("hopPod: valid, exits with the coordinator's code, no secret listing, SA required", () => {
  const pod = hopPod({
    runId: "r",
    image: "quay.io/x/y:latest",
    serviceAccount: "builder",
    args: ["--backend", "kube"],
    timeoutSeconds: 3600,
  });
  validatePod(pod);
  const c = pod.spec!.containers[0];
  const all = JSON.stringify(pod);
  assert.ok(!all.includes("sleep") && !all.includes("find /run/secrets") && !all.includes("bash"));
  assert.equal(c.command![0], "/usr/local/bin/deno", "the coordinator is the container's process");
  assert.deepEqual(c.args!.slice(0, 2), ["--spec", "/run/gangplank/jobspec/jobspec.yaml"]);
  assert.equal(pod.spec!.serviceAccountName, "builder");
  assert.equal(pod.spec!.restartPolicy, "Never");
  assert.ok(pod.spec!.activeDeadlineSeconds! >= 3600);
  assert.ok(!(c.env ?? []).some((e) => e.name === "JOBSPEC"));
  const vol = pod.spec!.volumes!.find((v) => v.name === "jobspec")!;
  assert.equal(vol.secret?.defaultMode, 0o600);
  assert.throws(
    () => hopPod({ runId: "r", image: "i", serviceAccount: "", args: [], timeoutSeconds: 1 }),
    UsageError,
  );
  assert.throws(
    () => hopPod({ runId: "r", image: "", serviceAccount: "sa", args: [], timeoutSeconds: 1 }),
    UsageError,
  );
  const hs = hopSecret("r", "job:\n  name: x\n");
  new Secret(hs as never).validate();
  assert.equal(hs.metadata!.name, vol.secret!.secretName);
  assert.ok(!all.includes("name: x"));
});

Deno.test("labelValue and names stay valid and distinct for any input", () => {
  const inputs = ["build", "Build Base!", "x".repeat(100), "-lead", "a/b/c", "", "ü", "ok.name_1"];
  const seen = new Set<string>();
  for (const s of inputs) {
    const v = labelValue(s);
    assert.match(v, LABEL_RE, s);
    assert.ok(v.length <= 63);
    assert.ok(!seen.has(v), `distinct: ${s}`);
    seen.add(v);
    const n = workerPodName(s + "-run-" + "y".repeat(80), 12, s);
    assert.match(n, DNS_LABEL_RE);
    assert.ok(n.length <= 63);
  }
  assert.equal(labelValue("build"), "build");
  assert.notEqual(
    workerPodName("a".repeat(40) + "1", 0, "s"),
    workerPodName("a".repeat(40) + "2", 0, "s"),
  );
  assert.ok(runSelector("r").includes(`${RUN_ID_LABEL}=r`));
  assert.ok(runSelector().endsWith(RUN_ID_LABEL));
});
