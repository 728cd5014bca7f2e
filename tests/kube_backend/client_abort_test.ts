/**
 * KubeClient against an API server that accepts connections and never answers: aborting the
 * signal ends a log stream or a watch that is still connecting at once (runPod awaits both
 * before it settles, so a stream that ignored the abort would hold Ctrl-C up for as long as
 * the server stays silent).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { KubeClient } from "../../lib/kube/mod.ts";
import { tempDir, waitFor } from "../_helpers/mod.ts";

Deno.test("KubeClient: an abort ends a log stream or a watch still waiting for the server's answer", async () => {
  const sockets = new Set<net.Socket>();
  let requests = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("data", () => requests++); // read the request, never answer
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  await using dir = await tempDir("gp-kube-silent-");
  const path = `${dir.path}/kubeconfig`;
  await Deno.writeTextFile(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{ name: c, cluster: { server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true } }]`,
      "users: [{ name: u, user: { token: t } }]",
      "contexts: [{ name: x, context: { cluster: c, user: u, namespace: default } }]",
      "current-context: x",
    ].join("\n"),
    { mode: 0o600 },
  );
  const client = KubeClient.connect({
    target: { kind: "kubeconfig", path },
    retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 10 },
  });
  const calls: [string, (signal: AbortSignal) => Promise<unknown>][] = [
    ["log", (signal) => client.streamLog("p", "c", () => {}, { signal, follow: true })],
    ["watch", async (signal) => {
      for await (const _ of client.watchPod("p", { signal })) { /* none */ }
    }],
  ];
  try {
    for (const [what, call] of calls) {
      const seen = requests;
      const ctl = new AbortController();
      const p = call(ctl.signal);
      await waitFor(() => requests > seen, { timeoutMs: 10_000, what: `the ${what} request` });
      ctl.abort(new Error(`stop ${what}`));
      const t0 = Date.now();
      const timeout = new AbortController();
      const late = new Promise((_, reject) => {
        const t = setTimeout(() => reject(new Error(`${what}: ignored the abort`)), 5000);
        timeout.signal.addEventListener("abort", () => clearTimeout(t));
      });
      try {
        await assert.rejects(Promise.race([p, late]), new RegExp(`^Error: stop ${what}$`));
      } finally {
        timeout.abort();
      }
      assert.ok(Date.now() - t0 < 5000);
    }
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});
