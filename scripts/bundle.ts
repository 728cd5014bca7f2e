/**
 * `deno task bundle`: bundles the project's scripts into self-contained files under `dist/`
 * (`dist/work.js`, and `submit.js`, `relay.js`, `podman_run.js` when those scripts exist), each
 * runnable with `deno run -A dist/<name>.js` without node_modules or network. Worker images
 * carry `dist/work.js` (see `Containerfile`).
 *
 * npm:ssh2 probes for optional native bindings (`*.node`); they are left external (the
 * pure-JS fallback is used). A shim is prepended for the CommonJS code inside npm packages:
 * `require` (for `node:` built-ins required at run time), `__dirname` and `__filename`.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { existsSync } from "node:fs";

/** Scripts bundled by default (`scripts/<name>.ts` → `dist/<name>.js`); missing ones skipped. */
export const BUNDLE_ENTRIES: readonly string[] = ["work", "submit", "relay", "podman_run"];

const SHIM = 'import { createRequire as __gpCreateRequire } from "node:module";\n' +
  "const require = __gpCreateRequire(import.meta.url);\n" +
  "const __filename = import.meta.filename ?? import.meta.url;\n" +
  "const __dirname = import.meta.dirname ?? new URL('.', import.meta.url).pathname;\n";

/** Options for {@link bundle}. */
export interface BundleOptions {
  /** Repository root (default: the parent of this script's folder). */
  root?: string;
  /** Script names to bundle (default {@link BUNDLE_ENTRIES}); `work` is required to exist. */
  entries?: readonly string[];
  /** Output folder (default `<root>/dist`). */
  outDir?: string;
  signal?: AbortSignal;
}

/** Bundles the entries; returns the paths written. Throws with deno's output on failure. */
export async function bundle(opts: BundleOptions = {}): Promise<string[]> {
  const root = opts.root ?? resolve(dirname(new URL(import.meta.url).pathname), "..");
  const outDir = opts.outDir ?? join(root, "dist");
  const entries = opts.entries ?? BUNDLE_ENTRIES;
  await Deno.mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const name of entries) {
    const src = join(root, "scripts", `${name}.ts`);
    if (!existsSync(src)) {
      if (name === "work") throw new Error(`bundle: ${src} does not exist`);
      continue;
    }
    const out = join(outDir, `${name}.js`);
    const tmp = `${out}.tmp-${Deno.pid}`;
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "deno",
        "--external",
        "*.node",
        "--config",
        join(root, "deno.json"),
        "-o",
        tmp,
        src,
      ],
      cwd: root,
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
      stdout: "piped",
      stderr: "piped",
      signal: opts.signal,
    }).output();
    if (!result.success) {
      await Deno.remove(tmp).catch(() => {});
      const err = new TextDecoder().decode(result.stderr);
      throw new Error(`bundle: deno bundle ${src} failed:\n${err}`);
    }
    const body = await Deno.readTextFile(tmp);
    // Keep a leading shebang first; the shim must precede any code that reads __dirname.
    const text = body.startsWith("#!") ? body.replace(/^(#![^\n]*\n)/, `$1${SHIM}`) : SHIM + body;
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, out);
    written.push(out);
  }
  return written;
}

if (import.meta.main) {
  try {
    const names = Deno.args.length > 0 ? Deno.args : undefined;
    for (const p of await bundle({ entries: names })) console.log(`bundled ${p}`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
