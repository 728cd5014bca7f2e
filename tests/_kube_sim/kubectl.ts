/**
 * Running the real `kubectl` against a Kubernetes test API server from tests: availability
 * check, a bounded subprocess with a private cache dir, and a parser for its table output.
 *
 * ```ts
 * if (!(await haveKubectl())) console.warn("kubectl not installed: skipping");
 * const r = await kubectl(kube, ["get", "pods", "-l", `run=${runId}`]);
 * const rows = parseTable(r.stdout); // [{ NAME, READY, STATUS, RESTARTS, AGE }]
 * const log = await kubectl(kube, ["logs", "-f", pod], { timeoutMs: 60_000 });
 * ```
 *
 * @module
 */

import { runCommand, type RunResult } from "../_helpers/mod.ts";

let available: Promise<boolean> | undefined;

/** Whether `kubectl` runs on this machine (checked once). */
export function haveKubectl(): Promise<boolean> {
  // Spawning a missing binary throws synchronously: start inside the promise chain.
  available ??= Promise.resolve().then(() =>
    new Deno.Command("kubectl", {
      args: ["version", "--client"],
      stdout: "null",
      stderr: "null",
    }).output()
  ).then((o) => o.success).catch(() => false);
  return available;
}

/**
 * Runs `kubectl --kubeconfig <kube.kubeconfigPath> --cache-dir <temp> ...args`, killed after
 * `timeoutMs` (default 30 s; then it throws with the output so far). The discovery cache goes
 * to a temp dir that is removed afterwards, never to `~/.kube`.
 */
export async function kubectl(
  kube: { kubeconfigPath: string },
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<RunResult> {
  const cache = await Deno.makeTempDir({ prefix: "kubectl-cache-" });
  try {
    return await runCommand(
      "kubectl",
      ["--kubeconfig", kube.kubeconfigPath, "--cache-dir", cache, ...args],
      { timeoutMs: opts.timeoutMs ?? 30_000 },
    );
  } finally {
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
}

/** Parses kubectl's table output into rows keyed by the header's column names. */
export function parseTable(out: string): Record<string, string>[] {
  const lines = out.trimEnd().split("\n").filter((l) => l.trim());
  if (!lines.length) return [];
  const cols: { name: string; start: number }[] = [];
  for (const m of lines[0].matchAll(/\S+(?: \S+)*/g)) cols.push({ name: m[0], start: m.index! });
  return lines.slice(1).map((l) => {
    const row: Record<string, string> = {};
    cols.forEach((c, i) => {
      const end = i + 1 < cols.length ? cols[i + 1].start : undefined;
      row[c.name] = l.slice(c.start, end).trim();
    });
    return row;
  });
}
