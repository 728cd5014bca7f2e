/**
 * Bad cluster input is one line on stderr and exit 2, before anything is created: no
 * configuration, an unreachable API server, rejected credentials (401), a namespace RBAC
 * forbids (403), an unknown namespace, a missing service account; for a run and for hop mode.
 */
import assert from "node:assert/strict";
import { ROOT, tempDir } from "../_helpers/mod.ts";
import { runInProcess } from "../_helpers/cli.ts";
import { submit } from "../../lib/cli/mod.ts";
import { type KubeApi, startKubeApiServer } from "../_kube_sim/api_server.ts";

const SPEC = `${ROOT}/examples/demo.jobspec.yaml`;

/** Writes (beside the real one) a copy of the server's kubeconfig with `edit` applied. */
async function kubeconfigVariant(kube: KubeApi, dir: string, edit: (t: string) => string) {
  const path = `${dir}/variant-${crypto.randomUUID().slice(0, 8)}.kubeconfig`;
  await Deno.writeTextFile(path, edit(await Deno.readTextFile(kube.kubeconfigPath)), {
    mode: 0o600,
  });
  return path;
}

Deno.test("kube: bad cluster input is one line, exit 2, nothing created", async () => {
  await using kube = await startKubeApiServer({
    kubelet: { mode: "process" },
    requireServiceAccounts: true,
  });
  await using cfgs = await tempDir("gp-kube-cfgs-");
  const wrongToken = await kubeconfigVariant(
    kube,
    cfgs.path,
    (t) => t.replace(/token: \S+/, "token: not-the-token"),
  );
  const unreachable = await kubeconfigVariant(
    kube,
    cfgs.path,
    (t) => t.replace(/server: https:\/\/127\.0\.0\.1:\d+/, "server: https://127.0.0.1:1"),
  );
  const run = ["--backend", "kube", "--relay-address", kube.nodeIP, "-s", SPEC];
  const hop = ["--image", "quay.io/example/gangplank:1", "-s", SPEC];
  const cases: { name: string; argv: string[]; env?: Record<string, string>; re: RegExp }[] = [
    {
      name: "no configuration",
      argv: run,
      re: /no configuration: give --kubeconfig FILE, set KUBECONFIG/,
    },
    {
      name: "unreachable",
      argv: [...run, "--kubeconfig", unreachable],
      re: /cannot reach the API server https:\/\/127\.0\.0\.1:1 \(from --kubeconfig /,
    },
    {
      name: "401",
      argv: [...run, "--kubeconfig", wrongToken],
      re: /rejected the credentials of --kubeconfig .*\(401 Unauthorized\)/,
    },
    {
      name: "unknown namespace",
      argv: [...run, "--kubeconfig", kube.kubeconfigPath, "--namespace", "nope"],
      re:
        /namespace nope does not exist on https:\/\/127\.0\.0\.1:\d+; create it or give --namespace/,
    },
    {
      name: "missing service account",
      argv: [...run, "--kubeconfig", kube.kubeconfigPath, "--serviceaccount", "builder"],
      re: /service account builder does not exist in namespace default/,
    },
    {
      name: "hop: missing service account",
      argv: [...hop, "--remote-kubeconfig", kube.kubeconfigPath, "--serviceaccount", "builder"],
      re: /service account builder does not exist in namespace default/,
    },
    {
      name: "hop: 401",
      argv: [...hop, "--remote-kubeconfig", wrongToken, "--serviceaccount", "default"],
      re: /rejected the credentials of --kubeconfig .*\(401 Unauthorized\)/,
    },
  ];
  for (const c of cases) {
    await using cwd = await tempDir("gp-kube-err-");
    const r = await runInProcess("submit", submit, c.argv, {
      cwd: cwd.path,
      env: c.env ?? { HOME: cwd.path },
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 2, `${c.name}: ${r.stdout}\n${r.stderr}`);
    const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("submit: note:"));
    assert.equal(lines.length, 1, `${c.name}: ${r.stderr}`);
    assert.match(lines[0], c.re, c.name);
    assert.doesNotMatch(lines[0], /\n|^\s+at /);
    assert.deepEqual([...Deno.readDirSync(cwd.path)].map((e) => e.name), [], c.name);
  }
  // 403: RBAC forbids the namespace.
  kube.setFault("forbidden", { pathPattern: "^/api/v1/namespaces/default/" });
  await using cwd = await tempDir("gp-kube-err-");
  const r = await runInProcess("submit", submit, [
    ...run,
    "--kubeconfig",
    kube.kubeconfigPath,
  ], { cwd: cwd.path, env: {}, timeoutMs: 60_000 });
  kube.setFault("forbidden", undefined);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /listing pods in namespace default is forbidden \(403\): .*cannot/);
  assert.deepEqual([...Deno.readDirSync(cwd.path)], []);
  // Nothing was ever written to the cluster.
  assert.deepEqual(kube.requests.filter((q) => q.method !== "GET").map((q) => q.path), []);
});
