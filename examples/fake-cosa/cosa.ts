/**
 * STAND-IN for coreos-assembler (`cosa`), for the demo and the tests. It builds nothing real:
 * it writes builds the way cosa lays them out (`builds/builds.json`, `builds/<id>/<arch>/
 * meta.json` valid against cosa's meta schema, artifacts with real sha256 and size, delayed
 * `meta.<artifact>.json` fragments merged by `meta --finalize`), a few KiB of deterministic
 * content per artifact. Real cosa replaces it by being first on PATH.
 *
 * Runs in the current directory (the srv dir). Imports only `node:` built-ins, so it runs with
 * `deno run -A --no-config` in a minimal container (busybox sh + deno).
 *
 * Environment:
 * - `COSA_FORCE_ARCH`: architecture (default `uname -m`).
 * - `FAKE_COSA_FAIL=<sub>[,<sub>...]`: exit with `FAKE_COSA_FAIL_CODE` (default 3) when the
 *   subcommand (`buildextend-metal`, `build`, `fetch`, `kola`, `init`, `meta`,
 *   `upload-oscontainer`) runs.
 * - `FAKE_COSA_SLEEP_MS=<ms>` with optional `FAKE_COSA_SLEEP_ON=<sub>[,...]`: sleep before the
 *   work (to test cancellation).
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { machine } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { writeOciLayout } from "./oci.ts";

const NAME = "fake-coreos";

interface Artifact {
  path: string;
  sha256: string;
  size: number;
  [k: string]: unknown;
}
type Meta = Record<string, unknown> & { buildid: string; images?: Record<string, Artifact> };
interface Builds {
  "schema-version": string;
  builds: { id: string; arches: string[] }[];
  timestamp: string;
}

class Fail extends Error {
  constructor(message: string, readonly code = 1) {
    super(message);
  }
}

function say(msg: string) {
  console.log(`fake-cosa: ${msg}`);
}

function arch(): string {
  const a = process.env.COSA_FORCE_ARCH || machine();
  return ({ amd64: "x86_64", x64: "x86_64", arm64: "aarch64" } as Record<string, string>)[a] ?? a;
}

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** `size` bytes derived only from `seed` (a sha256 chain). */
function content(seed: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let block = createHash("sha256").update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    out.set(block.subarray(0, Math.min(block.length, size - off)), off);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

function writeAtomic(path: string, data: string | Uint8Array) {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, data, { mode: 0o644 });
  renameSync(tmp, path);
}

function writeJSON(path: string, v: unknown) {
  writeAtomic(path, JSON.stringify(v, null, 4) + "\n");
}

function readJSON<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

function metaStamp(): number {
  // cosa uses a float seconds*1e6-like stamp; ours: microseconds since the epoch.
  return Math.floor(performance.timeOrigin * 1000 + performance.now() * 1000);
}

/** Serialises read-modify-write of build metadata between concurrent fake-cosa processes. */
function withLock<T>(fn: () => T): T {
  mkdirSync("builds", { recursive: true });
  const lock = join("builds", ".fake-cosa.lock");
  const mine = `${lock}.${process.pid}`;
  writeFileSync(mine, String(process.pid));
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      linkSync(mine, lock);
      break;
    } catch {
      if (Date.now() > deadline) {
        unlinkSync(mine);
        throw new Fail(`could not lock ${lock}`);
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    return fn();
  } finally {
    unlinkSync(lock);
    unlinkSync(mine);
  }
}

function readBuilds(): Builds {
  const f = join("builds", "builds.json");
  if (!existsSync(f)) return { "schema-version": "1.0.0", builds: [], timestamp: "" };
  return readJSON<Builds>(f);
}

function latest(a: string): { id: string; dir: string; meta: Meta } {
  const b = readBuilds().builds.find((x) => x.arches.includes(a));
  if (!b) throw new Fail(`no builds for ${a}; run \`cosa build\` first`);
  const dir = join("builds", b.id, a);
  return { id: b.id, dir, meta: readJSON<Meta>(join(dir, "meta.json")) };
}

function requireInit() {
  if (!existsSync(join("src", "config"))) {
    throw new Fail("src/config does not exist; run `cosa init <url>` first");
  }
}

function makeArtifact(dir: string, id: string, a: string, name: string, ext: string): Artifact {
  const file = `${NAME}-${id}-${name}.${a}.${ext}`;
  const data = content(`${id}/${a}/${name}`, 4096 + 512 * (name.length % 5));
  writeAtomic(join(dir, file), data);
  return { path: file, sha256: sha256(data), size: data.length };
}

const EXT: Record<string, string> = {
  ostree: "ociarchive",
  qemu: "qcow2",
  metal: "raw",
  metal4k: "4k.raw",
  "live-iso": "iso",
  "live-kernel": "kernel",
  "live-initramfs": "initramfs.img",
  "live-rootfs": "rootfs.img",
  aws: "vmdk",
  gcp: "tar.gz",
  azure: "vhd",
};

function cmdInit(args: string[]) {
  let force = false;
  let branch = "";
  let commit = "";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const x = args[i];
    if (x === "--force") force = true;
    else if (x === "--branch") branch = args[++i] ?? "";
    else if (x.startsWith("--branch=")) branch = x.slice(9);
    else if (x === "--commit") commit = args[++i] ?? "";
    else if (x.startsWith("--commit=")) commit = x.slice(9);
    else if (x.startsWith("-")) throw new Fail(`init: unknown option ${x}`, 2);
    else rest.push(x);
  }
  if (rest.length !== 1) {
    throw new Fail("usage: cosa init [--force] [--branch B] [--commit C] URL", 2);
  }
  const cfg = join("src", "config");
  if (existsSync(cfg) && !force) throw new Fail(`${cfg} already exists (use --force)`);
  for (const d of ["builds", "cache", "tmp", "overrides", cfg]) mkdirSync(d, { recursive: true });
  writeJSON(join(cfg, ".fake-cosa-origin.json"), { url: rest[0], branch, commit });
  writeFileSync(
    join(cfg, "manifest.yaml"),
    `# fake manifest for ${rest[0]}\nref: fake/${arch()}\n`,
  );
  say(`initialised src/config from ${rest[0]}${branch ? ` (branch ${branch})` : ""}`);
}

function cmdFetch() {
  requireInit();
  mkdirSync(join("cache", "pkgcache-repo"), { recursive: true });
  mkdirSync(join("tmp", "repo", "objects"), { recursive: true });
  const n = existsSync(join("cache", "fetch-count"))
    ? Number(readFileSync(join("cache", "fetch-count"), "utf8")) + 1
    : 1;
  writeFileSync(join("cache", "fetch-count"), String(n));
  writeFileSync(join("cache", "pkgcache-repo", "fake-package.rpm"), content("rpm", 2048));
  writeFileSync(join("tmp", "repo", "config"), "[core]\nrepo_version=1\nmode=archive\n");
  writeFileSync(join("tmp", "repo", "objects", "00.commit"), content("commit", 512));
  say(`fetched packages (fetch #${n})`);
}

function newBuildId(): string {
  const d = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  const ids = new Set(readBuilds().builds.map((b) => b.id));
  if (existsSync("builds")) { for (const e of readdirSync("builds")) ids.add(e); }
  let n = 0;
  while (ids.has(`${d}.dev.${n}`)) n++;
  return `${d}.dev.${n}`;
}

function setLatest(id: string) {
  const link = join("builds", "latest");
  try {
    if (readlinkSync(link) === id) return;
  } catch { /* missing */ }
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(id, tmp);
  renameSync(tmp, link);
}

function cmdBuild(args: string[]) {
  requireInit();
  let target = "qemu";
  let delay = false;
  for (const x of args) {
    if (x === "--delay-meta-merge") delay = true;
    else if (x === "ostree" || x === "qemu") target = x;
    else if (x !== "") throw new Fail(`build: unsupported argument ${x}`, 2);
  }
  const a = arch();
  withLock(() => {
    const id = newBuildId();
    const dir = join("builds", id, a);
    mkdirSync(dir, { recursive: true });
    const images: Record<string, Artifact> = {
      ostree: makeArtifact(dir, id, a, "ostree", EXT.ostree),
    };
    if (target === "qemu") images.qemu = makeArtifact(dir, id, a, "qemu", EXT.qemu);
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    let origin: Record<string, string> = {};
    try {
      origin = readJSON(join("src", "config", ".fake-cosa-origin.json"));
    } catch { /* not from init */ }
    const meta: Meta = {
      buildid: id,
      name: NAME,
      summary: "Fake CoreOS (built by the fake-cosa stand-in)",
      "ostree-commit": sha256(`commit/${id}/${a}`),
      "ostree-content-checksum": sha256(`content/${id}/${a}`),
      "ostree-version": id,
      "ostree-timestamp": now,
      "coreos-assembler.basearch": a,
      "coreos-assembler.build-timestamp": now,
      "coreos-assembler.code-source": "fake-cosa",
      "coreos-assembler.config-gitrev": origin.commit || "0".repeat(40),
      "coreos-assembler.config-dirty": "false",
      "coreos-assembler.container-config-git": {
        commit: origin.commit || "0".repeat(40),
        origin: origin.url || "file:///dev/null",
        branch: origin.branch || "main",
        dirty: "false",
      },
      "coreos-assembler.delayed-meta-merge": delay,
      "coreos-assembler.meta-stamp": metaStamp(),
      images,
    };
    writeJSON(join(dir, "meta.json"), meta);
    writeJSON(join(dir, "commitmeta.json"), {
      "ostree.commit": meta["ostree-commit"],
      "fake": true,
    });
    const b = readBuilds();
    b.builds = [{ id, arches: [a] }, ...b.builds.filter((x) => x.id !== id)];
    b.timestamp = new Date().toISOString();
    writeJSON(join("builds", "builds.json"), b);
    setLatest(id);
    say(
      `built ${id} (${Object.keys(images).join(", ")}) for ${a}${
        delay ? ", delayed meta merge" : ""
      }`,
    );
  });
}

function cmdBuildextend(name: string) {
  requireInit();
  const a = arch();
  withLock(() => {
    const { id, dir, meta } = latest(a);
    const names = name === "live"
      ? ["live-iso", "live-kernel", "live-initramfs", "live-rootfs"]
      : [name];
    const images: Record<string, Artifact> = {};
    for (const n of names) images[n] = makeArtifact(dir, id, a, n, EXT[n] ?? "img");
    if (meta["coreos-assembler.delayed-meta-merge"] === true) {
      writeJSON(join(dir, `meta.${name}.json`), {
        buildid: id,
        "coreos-assembler.meta-stamp": metaStamp(),
        images,
      });
      say(`buildextend-${name}: wrote meta.${name}.json for ${id}`);
    } else {
      meta.images = { ...(meta.images ?? {}), ...images };
      meta["coreos-assembler.meta-stamp"] = metaStamp();
      writeJSON(join(dir, "meta.json"), meta);
      say(`buildextend-${name}: added ${names.join(", ")} to ${id}`);
    }
  });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out;
}

function cmdMeta(args: string[]) {
  if (!args.includes("--finalize")) throw new Fail("meta: only --finalize is supported", 2);
  const noClean = args.includes("--no-clean");
  const a = arch();
  withLock(() => {
    const { id, dir, meta } = latest(a);
    const frags = readdirSync(dir)
      .filter((n) => /^meta\..+\.json$/.test(n) && n !== "meta.json")
      .sort();
    const stamp = (m: unknown) =>
      isObj(m) && typeof m["coreos-assembler.meta-stamp"] === "number"
        ? m["coreos-assembler.meta-stamp"] as number
        : 0;
    const parts = [meta, ...frags.map((n) => readJSON<Meta>(join(dir, n)))]
      .map((m, i) => ({ m, i }))
      .sort((x, y) => stamp(x.m) - stamp(y.m) || x.i - y.i);
    let merged: unknown = {};
    for (const { m } of parts) merged = deepMerge(merged, m);
    const out = merged as Meta;
    out["coreos-assembler.meta-stamp"] = Math.max(...parts.map((p) => stamp(p.m)));
    writeJSON(join(dir, "meta.json"), out);
    if (!noClean) { for (const n of frags) unlinkSync(join(dir, n)); }
    say(
      `finalized ${id}: merged ${frags.length} fragment(s)${
        frags.length ? ` (${frags.join(", ")})` : ""
      }`,
    );
  });
}

function cmdKola(args: string[]) {
  mkdirSync("tmp", { recursive: true });
  let n = 0;
  while (existsSync(join("tmp", `kola-${n}.tar.xz`))) n++;
  const f = join("tmp", `kola-${n}.tar.xz`);
  writeFileSync(f, content(`kola/${args.join(" ")}`, 1024));
  say(`kola ${args.join(" ")}: PASS (logs in ${f})`);
}

/**
 * Records the call (args and the push environment, never the auth file's content) as one JSON
 * line in `fake-cosa-upload-oscontainer.jsonl` in the current directory, then does what cosa
 * does: packs the latest build's ostree into an OCI image (a real, tiny OCI layout in
 * `tmp/oscontainer`, tagged with the build id) and pushes it to `<name>:<build id>` with
 * `skopeo copy` (auth from `REGISTRY_AUTH_FILE`; `DISABLE_TLS_VERIFICATION=1` turns TLS
 * verification off).
 */
function cmdUploadOscontainer(args: string[]) {
  const name = args.find((a) => a.startsWith("--name="))?.slice("--name=".length);
  if (!name) throw new Fail("upload-oscontainer: --name=<registry/path> is required", 2);
  const authFile = process.env.REGISTRY_AUTH_FILE;
  let authMode: string | undefined;
  if (authFile) {
    try {
      authMode = (statSync(authFile).mode & 0o777).toString(8);
    } catch {
      authMode = "missing";
    }
  }
  const rec = {
    args,
    authFile,
    authMode,
    home: process.env.HOME,
    forceUnprivileged: process.env.FORCE_UNPRIVILEGED,
    disableTlsVerification: process.env.DISABLE_TLS_VERIFICATION,
  };
  appendFileSync("fake-cosa-upload-oscontainer.jsonl", JSON.stringify(rec) + "\n");
  const a = arch();
  const { id, dir, meta } = latest(a);
  const ostree = meta.images?.ostree;
  if (!ostree) throw new Fail(`upload-oscontainer: build ${id} has no ostree`);
  const layout = join("tmp", "oscontainer");
  const digest = writeOciLayout(
    layout,
    id,
    { name: ostree.path, data: readFileSync(join(dir, ostree.path)) },
    { "coreos-assembler.image-config.build": id, "ostree.commit": String(meta["ostree-commit"]) },
    a,
  );
  const tls = process.env.DISABLE_TLS_VERIFICATION === "1" ? ["--dest-tls-verify=false"] : [];
  const argv = ["copy", "--quiet", ...tls, `oci:${layout}:${id}`, `docker://${name}:${id}`];
  say(`upload-oscontainer: pushing ${id} (${digest}) to ${name}:${id}`);
  const r = spawnSync("skopeo", argv, { stdio: ["ignore", "inherit", "pipe"], encoding: "utf8" });
  if (r.error) throw new Fail(`upload-oscontainer: cannot run skopeo: ${r.error.message}`);
  if (r.status !== 0) {
    // skopeo's last line says why (unauthorized, x509, connection refused): keep it.
    const why = (r.stderr ?? "").trim().split("\n").pop()?.replace(/^time="[^"]*" level=\w+ /, "");
    throw new Fail(`upload-oscontainer: skopeo exited with ${r.status ?? r.signal}: ${why ?? ""}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [sub, ...args] = argv;
  if (!sub) throw new Fail("usage: cosa <init|fetch|build|buildextend-<x>|meta|kola> ...", 2);
  const fails = (process.env.FAKE_COSA_FAIL ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const sleepMs = Number(process.env.FAKE_COSA_SLEEP_MS ?? "0");
  const sleepOn = (process.env.FAKE_COSA_SLEEP_ON ?? "").split(",").filter(Boolean);
  if (sleepMs > 0 && (sleepOn.length === 0 || sleepOn.includes(sub))) {
    say(`${sub}: sleeping ${sleepMs} ms`);
    await new Promise((r) => setTimeout(r, sleepMs));
  }
  if (fails.includes(sub)) {
    const code = Number(process.env.FAKE_COSA_FAIL_CODE ?? "3");
    console.error(`fake-cosa: ${sub}: failing on purpose (FAKE_COSA_FAIL)`);
    return code;
  }
  switch (sub) {
    case "init":
      cmdInit(args);
      break;
    case "fetch":
      cmdFetch();
      break;
    case "build":
      cmdBuild(args);
      break;
    case "meta":
      cmdMeta(args);
      break;
    case "kola":
      cmdKola(args);
      break;
    case "upload-oscontainer":
      cmdUploadOscontainer(args);
      break;
    default:
      if (sub.startsWith("buildextend-") && sub.length > "buildextend-".length) {
        cmdBuildextend(sub.slice("buildextend-".length));
        break;
      }
      throw new Fail(`unknown command ${sub}`, 2);
  }
  return 0;
}

if (import.meta.main) {
  try {
    process.exit(await main(process.argv.slice(2)));
  } catch (e) {
    console.error(`fake-cosa: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(e instanceof Fail ? e.code : 1);
  }
}
