/**
 * The backend registry loads backends lazily: what `scripts/submit.ts` imports statically (all
 * a local dry run loads) holds neither the Kubernetes client, nor npm:ssh2, nor npm:minio;
 * they are reached only through dynamic imports, when a backend or a run needs them.
 */
import assert from "node:assert/strict";
import { ROOT, runCommand } from "../_helpers/mod.ts";

interface Info {
  roots: string[];
  redirects: Record<string, string>;
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
  }[];
}

/** npm packages reachable from the roots (statically only, or through any import). */
function npmReachable(info: Info, staticOnly: boolean): Set<string> {
  const mods = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...info.roots];
  for (let n = 0; stack.length > 0 && n < 100_000; n++) {
    const s = info.redirects[stack.pop()!] ?? "";
    if (!s || seen.has(s)) continue;
    seen.add(s);
    for (const d of mods.get(s)?.dependencies ?? []) {
      if (d.code && !(staticOnly && d.isDynamic)) stack.push(d.code.specifier);
    }
  }
  return new Set(
    [...seen].filter((s) => s.startsWith("npm:/")).map((s) => s.slice(5).replace(/@[^@/]+$/, "")),
  );
}

Deno.test("scripts/submit.ts loads no backend client until a backend needs it", async () => {
  const r = await runCommand(Deno.execPath(), ["info", "--json", `${ROOT}/scripts/submit.ts`], {
    cwd: ROOT,
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Info;
  // Identity redirects for local modules, so the walk can treat every specifier alike.
  for (const m of info.modules) info.redirects[m.specifier] ??= m.specifier;
  const all = npmReachable(info, false);
  const eager = npmReachable(info, true);
  for (const heavy of ["@kubernetes/client-node", "ssh2", "minio"]) {
    assert.ok(all.has(heavy), `${heavy} is not used at all? ${[...all].join(", ")}`);
    assert.ok(!eager.has(heavy), `${heavy} is loaded eagerly`);
  }
  assert.ok(eager.has("@commander-js/extra-typings"));
});
