/**
 * Shared pieces of the podman end-to-end tests: running `podman-run` as a subprocess against a
 * test podman service, comparing builds trees, and asserting nothing was left on the host.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { PodmanClient, removeByLabels } from "../../lib/podman/mod.ts";
import { LABEL_RUN_ID } from "../../lib/workspec/mod.ts";
import { ROOT, sha256File, withTestState } from "../_helpers/mod.ts";

/** Environment for scripts: the stand-in cosa on PATH (local backend), no colours. */
export function scriptEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: `${ROOT}/examples/fake-cosa:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    HOME: Deno.env.get("HOME") ?? "/root",
    NO_COLOR: "1",
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
    ...extra,
  };
}

/** Every file under `dir`, relative path → sha256. */
export async function treeHashes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) out.set(relative(dir, p), await sha256File(p));
      else if (e.isSymlink) out.set(relative(dir, p), `-> ${await Deno.readLink(p)}`);
    }
  };
  await walk(dir);
  return out;
}

interface Image {
  path: string;
  sha256: string;
  size: number;
}

/**
 * Asserts two builds trees hold the same files and the same artifacts (every image in the
 * latest build's meta.json: same name, path, sha256, size, and the file's own sha256).
 */
export async function assertSameBuilds(a: string, b: string, arch: string): Promise<string[]> {
  const ha = await treeHashes(a);
  const hb = await treeHashes(b);
  assert.deepEqual([...ha.keys()].sort(), [...hb.keys()].sort(), "same files in builds/");
  const builds = JSON.parse(await Deno.readTextFile(join(a, "builds.json")));
  const id = builds.builds[0].id as string;
  const images = (root: string) =>
    JSON.parse(Deno.readTextFileSync(join(root, id, arch, "meta.json"))).images as Record<
      string,
      Image
    >;
  const ia = images(a);
  const ib = images(b);
  assert.deepEqual(ia, ib, "same images in meta.json");
  const names = Object.keys(ia).sort();
  assert.ok(names.length >= 4, `artifacts: ${names.join(", ")}`);
  for (const n of names) {
    const rel = join(id, arch, ia[n].path);
    assert.equal(ha.get(rel), ia[n].sha256, `${rel}: sha256 of the file = meta.json's`);
    assert.equal(hb.get(rel), ia[n].sha256, `${rel}: same artifact from both backends`);
  }
  return names;
}

/** What the podman host still holds from gangplank runs (all runs, or one). */
export async function leftovers(
  podman: PodmanClient,
  runId?: string,
): Promise<{ containers: string[]; volumes: string[]; secrets: string[] }> {
  const signal = AbortSignal.timeout(20_000);
  const labels = { [LABEL_RUN_ID]: runId };
  const containers = (await podman.listContainers({ signal, labels })).map((c) =>
    `${c.Names?.[0] ?? c.Id} (${c.State})`
  );
  const volumes = (await podman.listVolumes({ signal, labels })).map((v) => v.Name);
  const secrets = (await podman.listSecrets({ signal })).map((s) => s.Spec.Name)
    .filter((n) => n.startsWith(runId ? `gangplank-${runId}-` : "gangplank-"));
  return { containers, volumes, secrets };
}

/** Removes whatever a (failed) test run left on the podman host. */
export async function removeRun(podman: PodmanClient, runId: string): Promise<void> {
  const signal = AbortSignal.timeout(30_000);
  await removeByLabels(podman, { [LABEL_RUN_ID]: runId }, { signal }).catch(() => {});
  for (const s of await podman.listSecrets({ signal }).catch(() => [])) {
    if (s.Spec.Name.startsWith(`gangplank-${runId}-`)) {
      await podman.removeSecret(s.Spec.Name, { signal }).catch(() => {});
    }
  }
}

/** A spawned script whose output is collected; kill it by PID, await `done`. */
export interface Spawned {
  child: Deno.ChildProcess;
  output(): string;
  done: Promise<{ code: number; out: string }>;
}

/** Spawns `deno run -A scripts/<name> ...args`, collecting stdout+stderr. */
export function spawnScript(
  name: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Spawned {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/scripts/${name}`, ...args],
    env: withTestState(env),
    cwd,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (r: ReadableStream<Uint8Array>) => {
    for await (const c of r) text += dec.decode(c, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const done = (async () => {
    const st = await child.status;
    await pumps;
    return { code: st.code, out: text };
  })();
  return { child, output: () => text, done };
}

/** Waits for the script at most `ms`; on timeout kills it (SIGKILL) and throws its output. */
export async function within(
  s: Spawned,
  ms: number,
  what: string,
): Promise<{ code: number; out: string }> {
  let timedOut = false;
  const t = setTimeout(() => {
    timedOut = true;
    try {
      s.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  const r = await s.done;
  clearTimeout(t);
  if (timedOut) throw new Error(`${what}: not done within ${ms} ms\n${r.out}`);
  return r;
}
