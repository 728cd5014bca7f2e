/**
 * `deno task compile`: compiles the four scripts into standalone binaries under `dist/`
 * (`gangplank-submit`, `gangplank-work`, `gangplank-relay`, `gangplank-podman-run`) and bundles
 * `dist/work.js` (bound into local podman workers). A compiled `gangplank-submit` starts its
 * local workers with the `gangplank-work` next to it.
 *
 * `deno compile` needs the Deno runtime it embeds (denort): set `DENORT_BIN` to a local copy
 * to compile offline; without it deno downloads one from dl.deno.land, which needs network.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { bundle } from "./bundle.ts";

/** Scripts compiled (`scripts/<name>.ts` → `dist/gangplank-<name>`, `_` as `-`). */
export const COMPILE_ENTRIES: readonly string[] = ["submit", "work", "relay", "podman_run"];

/** The binary a script compiles to. */
export function binaryName(entry: string): string {
  return `gangplank-${entry.replaceAll("_", "-")}`;
}

/** The `deno compile` arguments of one script. */
export function compileArgs(root: string, entry: string, outDir: string): string[] {
  return [
    "compile",
    "-A",
    "--quiet",
    "--config",
    join(root, "deno.json"),
    "--output",
    join(outDir, binaryName(entry)),
    // The worker loads its BuildConfig role by a computed specifier (kept out of its bundle).
    ...(entry === "work" ? ["--include", join(root, "scripts", "buildconfig.ts")] : []),
    join(root, "scripts", `${entry}.ts`),
  ];
}

/** Compiles every entry; returns the binaries written. Throws with deno's output on failure. */
export async function compile(
  opts: { root?: string; outDir?: string; env?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<string[]> {
  const root = opts.root ?? resolve(dirname(new URL(import.meta.url).pathname), "..");
  const outDir = opts.outDir ?? join(root, "dist");
  await Deno.mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const entry of COMPILE_ENTRIES) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(root, entry, outDir),
      cwd: root,
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...opts.env },
      stdout: "piped",
      stderr: "piped",
      signal: opts.signal,
    }).output();
    if (!r.success) {
      // deno's first causes (before any backtrace), in one line.
      const text = new TextDecoder().decode(r.stderr).split("Stack backtrace")[0].trim();
      const lines = text.split("\n");
      const causes = lines.filter((l) => /^\s*\d+: /.test(l)).map((l) => l.trim().slice(3));
      const err = causes.length ? causes.slice(0, 2).join(": ") : lines[0] ?? "";
      const hint = opts.env?.DENORT_BIN
        ? ""
        : " (offline? set DENORT_BIN to a denort binary of this deno version)";
      throw new Error(`compile: ${entry}: ${err}${hint}`);
    }
    written.push(join(outDir, binaryName(entry)));
  }
  written.push(...(await bundle({ root, outDir, entries: ["work"], signal: opts.signal })));
  return written;
}

if (import.meta.main) {
  try {
    const env: Record<string, string> = {};
    const denort = Deno.env.get("DENORT_BIN");
    if (denort) env.DENORT_BIN = denort;
    for (const p of await compile({ env })) console.log(`compiled ${p}`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
