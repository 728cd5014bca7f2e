/**
 * A worker's start-up time is mostly the modules it loads before its stage can run (every
 * local stage waits for it, every parallel stage pays it in CPU). These tests pin what the
 * start-up path loads statically: the script harness nothing heavy, the worker and its S3
 * client not npm:minio (loaded on the first request; a pre-started worker loads it while it
 * waits: see `warmUp` in scripts/work.ts).
 */
import assert from "node:assert/strict";
import { ROOT } from "../_helpers/mod.ts";

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
}

/** The modules `file` loads before it runs (static imports only, transitively). */
async function staticGraph(file: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", `${ROOT}/deno.json`, `${ROOT}/${file}`],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
    redirects?: Record<string, string>;
  };
  const byName = new Map(info.modules.map((m) => [m.specifier, m]));
  const real = (s: string) => info.redirects?.[s] ?? s;
  const seen = new Set<string>();
  const todo = info.roots.map(real);
  for (let i = 0; i < todo.length && i < 10_000; i++) {
    const s = todo[i];
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of byName.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code?.specifier) todo.push(real(d.code.specifier));
    }
  }
  return [...seen].map((s) => s.startsWith(`file://${ROOT}/`) ? s.slice(ROOT.length + 8) : s);
}

const npmOf = (graph: string[]) =>
  graph.filter((s) => s.startsWith("npm:")).map((s) => s.replace(/^npm:\/?(@?[^@]+)@.*$/, "$1"));

Deno.test("start-up: the script harness loads no npm package and no command-line parser", async () => {
  for (const file of ["lib/cli/harness.ts", "scripts/_harness.ts"]) {
    const g = await staticGraph(file);
    assert.ok(g.includes(file), `${file} not in its own graph: ${g.join(" ")}`);
    assert.deepEqual(npmOf(g), [], file);
    assert.deepEqual(g.filter((s) => /^lib\/(jobspec|plan|cli\/submit_args)/.test(s)), [], file);
  }
});

Deno.test("start-up: the worker and its S3 client do not load npm:minio before a request", async () => {
  const client = await staticGraph("lib/relay/client/mod.ts");
  assert.ok(client.includes("lib/relay/client/transport.ts"), client.join(" "));
  assert.ok(!npmOf(client).includes("minio"), "the S3 client loads npm:minio at start-up");
  const worker = await staticGraph("lib/worker/mod.ts");
  assert.ok(worker.includes("lib/worker/worker.ts"), worker.join(" "));
  assert.ok(!npmOf(worker).includes("minio"), "the worker loads npm:minio at start-up");
});

Deno.test("start-up: scripts/work.ts loads the worker, not the coordinator, the CLI or the BuildConfig role", async () => {
  const g = await staticGraph("scripts/work.ts");
  assert.ok(g.includes("lib/worker/worker.ts"), g.join(" "));
  // tar-stream (cache tarballs) is the one npm package a worker needs before its first request.
  assert.deepEqual(npmOf(g).filter((p) => !p.startsWith("@types/")), ["tar-stream"]);
  assert.deepEqual(
    g.filter((s) =>
      /^lib\/(coordinator|executors|kube|podspec|jobspec\/parse|plan|cli\/submit)/.test(s) ||
      /^lib\/buildconfig\/(?!role\.ts)/.test(s)
    ),
    [],
  );
});
