/**
 * `deno task bundle`: bundles the project's scripts into self-contained files under `dist/`
 * (`dist/work.js`, and `buildconfig.js`, `submit.js`, `relay.js`, `podman_run.js` when those
 * scripts exist), each runnable with `deno run -A dist/<name>.js` without node_modules or
 * network. Worker images carry `dist/work.js` and, for the BuildConfig role `work.js` loads from
 * next to itself only when `BUILD` is set, `dist/buildconfig.js` (see `Containerfile`).
 *
 * A bundle is rebuilt only when its sources changed: `<name>.js.sha256` next to it records the
 * hash of everything it is built from (lib/, scripts/, deno.json, import_map.json, deno.lock and
 * the deno version), so a podman run or a test that needs `work.js` pays for `deno bundle` once.
 *
 * npm:ssh2 probes for optional native bindings (`*.node`); they are left external (the
 * pure-JS fallback is used). A shim is prepended for the CommonJS code inside npm packages:
 * `require` (for `node:` built-ins required at run time), `__dirname` and `__filename`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join, relative, resolve } from "node:path";
import { existsSync } from "node:fs";

/** Scripts bundled by default (`scripts/<name>.ts` → `dist/<name>.js`); missing ones skipped. */
export const BUNDLE_ENTRIES: readonly string[] = [
  "work",
  "buildconfig",
  "submit",
  "relay",
  "podman_run",
];

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
  /** Rebuild even when the sources did not change. */
  force?: boolean;
}

/** Files whose content a bundle depends on, sorted: lib/ and scripts/ sources, configs. */
async function sourceFiles(root: string): Promise<string[]> {
  const out = ["deno.json", "import_map.json", "deno.lock"].map((f) => join(root, f))
    .filter((f) => existsSync(f));
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && /\.(ts|js|json|d\.ts)$/.test(e.name)) out.push(p);
    }
  };
  for (const d of ["lib", "scripts"]) {
    if (existsSync(join(root, d))) await walk(join(root, d));
  }
  return out.sort();
}

/** The hash of everything a bundle is built from (see the module doc). */
export async function sourceHash(root: string): Promise<string> {
  const h = createHash("sha256");
  h.update(`deno ${Deno.version.deno}\0`);
  for (const f of await sourceFiles(root)) {
    h.update(`${relative(root, f)}\0`);
    h.update(await Deno.readFile(f));
    h.update("\0");
  }
  return h.digest("hex");
}

/** Bundles the entries; returns the paths written. Throws with deno's output on failure. */
export async function bundle(opts: BundleOptions = {}): Promise<string[]> {
  const root = opts.root ?? resolve(dirname(new URL(import.meta.url).pathname), "..");
  const outDir = opts.outDir ?? join(root, "dist");
  const entries = opts.entries ?? BUNDLE_ENTRIES;
  await Deno.mkdir(outDir, { recursive: true });
  const hash = await sourceHash(root);
  const written: string[] = [];
  for (const name of entries) {
    const src = join(root, "scripts", `${name}.ts`);
    if (!existsSync(src)) {
      if (name === "work") throw new Error(`bundle: ${src} does not exist`);
      continue;
    }
    const out = join(outDir, `${name}.js`);
    const hashFile = `${out}.sha256`;
    if (
      !opts.force && existsSync(out) &&
      (await Deno.readTextFile(hashFile).catch(() => "")).trim() === hash
    ) {
      written.push(out);
      continue;
    }
    const tmp = `${out}.tmp-${Deno.pid}-${crypto.randomUUID()}`;
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
    const hashTmp = `${hashFile}.tmp-${crypto.randomUUID()}`;
    await Deno.writeTextFile(hashTmp, hash + "\n");
    await Deno.rename(hashTmp, hashFile);
    written.push(out);
  }
  return written;
}

if (import.meta.main) {
  try {
    const force = Deno.args.includes("--force");
    const args = Deno.args.filter((a) => a !== "--force");
    const names = args.length > 0 ? args : undefined;
    for (const p of await bundle({ entries: names, force })) console.log(`bundled ${p}`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
