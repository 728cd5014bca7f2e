/**
 * Podman test fixtures: build the worker test image with `podman import` from a rootfs folder
 * (no image can be pulled here), and run a disposable `podman system service` on a temporary
 * socket. Usable from tests and from `.ci/run`
 * (`deno run -A tests/_helpers/podman.ts build-image`).
 *
 * The image holds busybox (as `sh` and its applets), `/bin/bash`, the glibc libraries bash and
 * deno need (copied from the host through `ldd`), deno at {@link WORKER_DENO_PATH}, the bundled
 * worker at {@link WORKER_SCRIPT_PATH}, the stand-in cosa from `examples/fake-cosa/` (when it
 * exists) at `/usr/lib/gangplank/fake-cosa/` with a `/usr/local/bin/cosa` wrapper running it, `/tmp`,
 * `/srv` (owned by `builder`), and `/etc/passwd` with `root` and `builder` (uid 1000). It is
 * rebuilt only when an input changed (label `gangplank.test-image-hash`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { WORKER_DENO_PATH, WORKER_SCRIPT_PATH } from "../../lib/workspec/mod.ts";
import { bundle } from "../../scripts/bundle.ts";
import { ROOT } from "./mod.ts";

/** Tag of the image the tests build with `podman import`. */
export const TEST_WORKER_IMAGE = "localhost/gangplank-worker:test";

/** Label holding the hash of the inputs the test image was built from. */
export const TEST_IMAGE_HASH_LABEL = "gangplank.test-image-hash";

/** Tag of the minimal busybox-only image used by the podman API tests. */
export const BUSYBOX_TEST_IMAGE = "localhost/gangplank-busybox:test";

const dec = new TextDecoder();

async function run(
  cmd: string,
  args: string[],
  opts: { signal?: AbortSignal; stdin?: Uint8Array } = {},
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    signal: opts.signal,
  }).spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** Which executables exist: podman (with runc) and sshd. */
export function hostTools(): { podman: boolean; sshd: boolean } {
  const has = (p: string[]) => p.some((x) => existsSync(x));
  return {
    podman: has(["/usr/bin/podman", "/usr/local/bin/podman"]) &&
      has(["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/bin/runc"]),
    sshd: has(["/usr/sbin/sshd", "/usr/bin/sshd"]),
  };
}

/** Why podman tests cannot run here, or `undefined` when they can. Tests print this. */
export function podmanMissing(): string | undefined {
  return hostTools().podman ? undefined : "podman/runc not installed: podman tests skipped";
}

/** The shared libraries `ldd` lists for an executable (absolute paths, loader included). */
async function sharedLibs(exe: string, signal?: AbortSignal): Promise<string[]> {
  const out = await run("ldd", [exe], { signal });
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = line.match(/=>\s+(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (m) libs.push(m[1]);
  }
  return libs;
}

async function copyFile(src: string, dest: string, mode?: number): Promise<void> {
  await Deno.mkdir(dirname(dest), { recursive: true });
  await Deno.copyFile(await Deno.realPath(src), dest);
  if (mode !== undefined) await Deno.chmod(dest, mode);
}

async function fileDigest(path: string, h: ReturnType<typeof createHash>): Promise<void> {
  const st = await Deno.stat(path);
  h.update(`${path}\0`);
  if (st.size > 8 * 1024 * 1024) {
    // Big binaries (deno): identity by resolved path, size and mtime is enough here.
    h.update(`${await Deno.realPath(path)}\0${st.size}\0${st.mtime?.getTime()}\0`);
  } else {
    h.update(await Deno.readFile(path));
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await listFiles(p));
    else if (e.isFile) out.push(p);
  }
  return out.sort();
}

async function imageLabel(image: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const out = await run("podman", [
      "image",
      "inspect",
      "--format",
      `{{ index .Labels "${TEST_IMAGE_HASH_LABEL}" }}`,
      image,
    ], { signal });
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function importRootfs(
  rootfs: string,
  image: string,
  hash: string,
  signal?: AbortSignal,
  changes: string[] = ["WORKDIR /srv"],
): Promise<void> {
  // Stream tar straight into podman import (the rootfs can be ~150 MB).
  const tarProc = new Deno.Command("tar", {
    args: ["-C", rootfs, "--numeric-owner", "-cf", "-", "."],
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
  const imp = new Deno.Command("podman", {
    args: [
      "import",
      "--change",
      `LABEL ${TEST_IMAGE_HASH_LABEL}=${hash}`,
      ...changes.flatMap((c) => ["--change", c]),
      "-",
      image,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
  const [, tarOut, impOut] = await Promise.all([
    tarProc.stdout.pipeTo(imp.stdin),
    tarProc.stderr.text().then(async (err) => ({ err, status: await tarProc.status })),
    imp.output(),
  ]);
  if (!tarOut.status.success) throw new Error(`tar failed: ${tarOut.err}`);
  if (!impOut.success) throw new Error(`podman import failed: ${dec.decode(impOut.stderr)}`);
}

/** Options for {@link ensureTestImage}. */
export interface TestImageOptions {
  signal?: AbortSignal;
  /** Image tag (default {@link TEST_WORKER_IMAGE}). */
  image?: string;
  /** Leave out deno, the worker and fake cosa (busybox + bash only; for API tests). */
  minimal?: boolean;
  /**
   * Stand in for the stock cosa image: busybox, bash, glibc (what deno needs) and the fake
   * cosa, but neither deno nor the worker; `USER builder` like cosa images (default tag
   * {@link STOCK_TEST_IMAGE}).
   */
  stock?: boolean;
}

/** Tag of the stand-in for the stock cosa image (no deno, no worker). */
export const STOCK_TEST_IMAGE = "localhost/gangplank-stock:test";
/** Tag of the stand-in for the public Deno image (`deno` on PATH, nothing else). */
export const DENO_TEST_IMAGE = "localhost/gangplank-deno:test";
/** Tag of the worker test image running as `builder` (uid 1000), like the Containerfile's. */
export const NONROOT_TEST_IMAGE = "localhost/gangplank-worker-nonroot:test";

/**
 * Builds the worker test image unless one built from the same inputs exists; returns its tag.
 * Bundles `scripts/work.ts` into `dist/work.js` first (the worker must exist).
 */
export async function ensureTestImage(opts: TestImageOptions = {}): Promise<string> {
  const minimal = opts.minimal ?? false;
  const stock = opts.stock ?? false;
  const image = opts.image ??
    (minimal ? BUSYBOX_TEST_IMAGE : stock ? STOCK_TEST_IMAGE : TEST_WORKER_IMAGE);
  const signal = opts.signal;
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox not found (install busybox-static)");
  const bash = "/bin/bash";
  const deno = await Deno.realPath(Deno.execPath());
  const fakeCosaDir = join(ROOT, "examples", "fake-cosa");
  let workJs: string | undefined;
  let submitJs: string | undefined;
  if (!minimal && !stock) {
    // The coordinator too: the hop pod runs /usr/lib/gangplank/submit.js (COORDINATOR_COMMAND).
    [workJs, submitJs] = await bundle({ root: ROOT, entries: ["work", "submit"], signal });
  }
  const fakeCosa = minimal ? [] : await listFiles(fakeCosaDir);
  const exes = minimal ? [bash] : [bash, deno];
  const libs = [...new Set((await Promise.all(exes.map((e) => sharedLibs(e, signal)))).flat())];

  const h = createHash("sha256");
  h.update(`v3\0${image}\0${minimal}\0${stock}\0`);
  for (
    const f of [busybox, ...exes, ...libs, ...(workJs ? [workJs, submitJs!] : []), ...fakeCosa]
  ) {
    await fileDigest(f, h);
  }
  const hash = h.digest("hex").slice(0, 32);
  if (await imageLabel(image, signal) === hash) return image;

  const rootfs = await Deno.makeTempDir({ prefix: "gp-rootfs-" });
  try {
    for (const d of ["bin", "etc", "tmp", "srv", "usr/local/bin", "usr/lib/gangplank", "root"]) {
      await Deno.mkdir(join(rootfs, d), { recursive: true });
    }
    await Deno.chmod(join(rootfs, "tmp"), 0o1777);
    await copyFile(busybox, join(rootfs, "bin", "busybox"), 0o755);
    const applets = (await run(busybox, ["--list"], { signal })).split("\n").filter(Boolean);
    for (const a of applets) {
      if (a === "busybox" || a === "bash") continue;
      await Deno.symlink("busybox", join(rootfs, "bin", a)).catch(() => {});
    }
    await copyFile(bash, join(rootfs, "bin", "bash"), 0o755);
    for (const lib of libs) await copyFile(lib, join(rootfs, lib.replace(/^\//, "")), 0o755);
    await Deno.writeTextFile(
      join(rootfs, "etc", "ld.so.conf"),
      [...new Set(libs.map((l) => dirname(l)))].join("\n") + "\n",
    );
    if (workJs) {
      await copyFile(deno, join(rootfs, WORKER_DENO_PATH.replace(/^\//, "")), 0o755);
      await copyFile(workJs, join(rootfs, WORKER_SCRIPT_PATH.replace(/^\//, "")), 0o644);
      await copyFile(submitJs!, join(rootfs, "usr/lib/gangplank/submit.js"), 0o644);
    }
    if (!minimal) {
      const cosaRoot = join(rootfs, "usr/lib/gangplank/fake-cosa");
      for (const f of fakeCosa) {
        const rel = f.slice(fakeCosaDir.length + 1);
        await copyFile(f, join(cosaRoot, rel), basename(f) === "cosa" ? 0o755 : 0o644);
      }
      if (fakeCosa.some((f) => basename(f) === "cosa")) {
        // A wrapper, not a symlink: the stand-in finds cosa.ts next to its own $0.
        const wrapper = join(rootfs, "usr/local/bin/cosa");
        await Deno.writeTextFile(
          wrapper,
          '#!/bin/sh\nexec /usr/lib/gangplank/fake-cosa/cosa "$@"\n',
        );
        await Deno.chmod(wrapper, 0o755);
      }
    }
    await Deno.writeTextFile(
      join(rootfs, "etc", "passwd"),
      "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000:builder:/srv:/bin/sh\n",
    );
    await Deno.writeTextFile(join(rootfs, "etc", "group"), "root:x:0:\nbuilder:x:1000:\n");
    await Deno.chown(join(rootfs, "srv"), 1000, 1000).catch(() => {});
    // Without an ld.so.cache the loader may not search the multiarch folders.
    await run("ldconfig", ["-r", rootfs], { signal }).catch(() => {});
    // The stock stand-in runs as builder, as cosa images do.
    await importRootfs(rootfs, image, hash, signal, [
      "WORKDIR /srv",
      ...(stock ? ["USER builder"] : []),
    ]);
  } finally {
    await Deno.remove(rootfs, { recursive: true }).catch(() => {});
  }
  return image;
}

/**
 * Builds the stand-in for the public Deno image: the running deno at `/bin/deno`, its shared
 * libraries and `/tmp`, `PATH=/bin`; nothing else (no shell). Rebuilt when deno changes.
 */
export async function ensureDenoImage(signal?: AbortSignal): Promise<string> {
  const image = DENO_TEST_IMAGE;
  const deno = await Deno.realPath(Deno.execPath());
  const libs = await sharedLibs(deno, signal);
  const h = createHash("sha256");
  h.update(`deno-v1\0${image}\0`);
  for (const f of [deno, ...libs]) await fileDigest(f, h);
  const hash = h.digest("hex").slice(0, 32);
  if (await imageLabel(image, signal) === hash) return image;
  const rootfs = await Deno.makeTempDir({ prefix: "gp-deno-rootfs-" });
  try {
    for (const d of ["tmp", "etc"]) await Deno.mkdir(join(rootfs, d), { recursive: true });
    await Deno.chmod(join(rootfs, "tmp"), 0o1777);
    await copyFile(deno, join(rootfs, "bin", "deno"), 0o755);
    for (const lib of libs) await copyFile(lib, join(rootfs, lib.replace(/^\//, "")), 0o755);
    await Deno.writeTextFile(
      join(rootfs, "etc", "ld.so.conf"),
      [...new Set(libs.map((l) => dirname(l)))].join("\n") + "\n",
    );
    await run("ldconfig", ["-r", rootfs], { signal }).catch(() => {});
    await importRootfs(rootfs, image, hash, signal, ["ENV PATH=/bin"]);
  } finally {
    await Deno.remove(rootfs, { recursive: true }).catch(() => {});
  }
  return image;
}

/** The worker test image with `USER builder` (uid 1000), built from it with podman build. */
export async function ensureNonRootImage(signal?: AbortSignal): Promise<string> {
  const base = await ensureTestImage({ signal });
  const baseId = (await run("podman", ["image", "inspect", "--format", "{{.Id}}", base], {
    signal,
  })).trim();
  if (await imageLabel(NONROOT_TEST_IMAGE, signal) === baseId) return NONROOT_TEST_IMAGE;
  await run("podman", [
    "build",
    "--pull=never",
    "--label",
    `${TEST_IMAGE_HASH_LABEL}=${baseId}`,
    "-t",
    NONROOT_TEST_IMAGE,
    "-f",
    "-",
  ], { signal, stdin: new TextEncoder().encode(`FROM ${base}\nUSER builder\n`) });
  return NONROOT_TEST_IMAGE;
}

/** A running disposable `podman system service`. */
export interface PodmanService extends AsyncDisposable {
  /** Path of its unix socket. */
  socketPath: string;
  /** PID of the service process (ended by PID on dispose). */
  pid: number;
}

/**
 * Starts `podman system service --time=0 unix://<dir>/podman.sock` as a child process and
 * waits (bounded) until it answers `_ping`. Disposing stops it (SIGTERM, then SIGKILL) and
 * removes the socket folder.
 */
export async function startPodmanService(
  opts: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<PodmanService> {
  const dir = await Deno.makeTempDir({ prefix: "gp-podman-" });
  const socketPath = join(dir, "podman.sock");
  const child = new Deno.Command("podman", {
    args: ["system", "service", "--time=0", `unix://${socketPath}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await child.status;
    clearTimeout(t);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      if (await ping(socketPath)) break;
      if (Date.now() > deadline) throw new Error(`podman service on ${socketPath} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { socketPath, pid: child.pid, [Symbol.asyncDispose]: stop };
}

async function ping(socketPath: string): Promise<boolean> {
  if (!existsSync(socketPath)) return false;
  try {
    const conn = await Deno.connect({ transport: "unix", path: socketPath });
    try {
      await conn.write(new TextEncoder().encode(
        "GET /v4.0.0/libpod/_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
      ));
      const buf = new Uint8Array(64);
      const n = await conn.read(buf);
      return n !== null && dec.decode(buf.subarray(0, n)).startsWith("HTTP/1.1 200");
    } finally {
      conn.close();
    }
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const what = Deno.args[0] ?? "build-image";
  if (what === "build-image") {
    console.log(await ensureTestImage());
  } else if (what === "build-kube-images") {
    console.log(await ensureTestImage({ stock: true }));
    console.log(await ensureDenoImage());
    console.log(await ensureNonRootImage());
  } else if (what === "build-minimal-image") {
    console.log(await ensureTestImage({ minimal: true }));
  } else {
    console.error("usage: podman.ts build-image|build-minimal-image|build-kube-images");
    Deno.exit(2);
  }
}
