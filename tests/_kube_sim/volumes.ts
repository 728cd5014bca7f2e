/**
 * A pod's volumes on the host: emptyDir, secret and configMap (items, modes, optional) in
 * the pod's temp dir, and hostPath; and where missing mount points of process-mode
 * containers come from.
 *
 * @module
 */

import type { KObj, ObjectStore } from "./store.ts";
import type { PodRun } from "./pod_run.ts";

/** A volume cannot be set up yet (`FailedMount`, retried). */
export class MountError extends Error {}

/** Makes each volume's host dir; returns volume name → host dir. */
export async function prepareVolumes(
  store: ObjectStore,
  run: PodRun,
  pod: KObj,
): Promise<Map<string, string>> {
  const vols = (pod.spec.volumes ?? []) as KObj[];
  const out = new Map<string, string>();
  if (!run.tmp) run.tmp = await Deno.makeTempDir({ prefix: "kube-sim-pod-" });
  const ns = pod.metadata.namespace;
  const fsGroup = pod.spec.securityContext?.fsGroup as number | undefined;
  const dec = (b64: string) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  for (const v of vols) {
    const dir = `${run.tmp}/volumes/${v.name}`;
    if (v.hostPath) {
      out.set(v.name, v.hostPath.path);
      continue;
    }
    await Deno.mkdir(dir, { recursive: true });
    if (v.emptyDir) {
      await Deno.chmod(dir, 0o777);
      if (fsGroup !== undefined) {
        // The kubelet's SetVolumeOwnership: group fsGroup, setgid, group-writable.
        await Deno.chown(dir, 0, fsGroup);
        await Deno.chmod(dir, 0o2777);
      }
    } else if (v.secret || v.configMap) {
      const isSecret = !!v.secret;
      const src = v.secret ?? v.configMap;
      const srcName = isSecret ? src.secretName : src.name;
      const obj = store.get(isSecret ? "secrets" : "configmaps", ns, srcName);
      if (!obj) {
        if (src.optional) {
          out.set(v.name, dir);
          continue;
        }
        throw new MountError(
          `MountVolume.SetUp failed for volume "${v.name}" : ${
            isSecret ? "secret" : "configmap"
          } "${srcName}" not found`,
        );
      }
      const data = new Map<string, Uint8Array>();
      if (isSecret) {
        for (const [k, b] of Object.entries(obj.data ?? {})) data.set(k, dec(b as string));
      } else {
        for (const [k, s] of Object.entries(obj.data ?? {})) {
          data.set(k, new TextEncoder().encode(s as string));
        }
        for (const [k, b] of Object.entries(obj.binaryData ?? {})) data.set(k, dec(b as string));
      }
      const defaultMode = (src.defaultMode ?? 0o644) as number;
      const items = src.items as KObj[] | undefined;
      const files: { path: string; bytes: Uint8Array; mode: number }[] = [];
      if (items) {
        for (const it of items) {
          const b = data.get(it.key);
          if (!b) {
            if (src.optional) continue;
            throw new MountError(
              `MountVolume.SetUp failed for volume "${v.name}" : references non-existent ` +
                `${isSecret ? "secret" : "config map"} key: ${it.key}`,
            );
          }
          files.push({ path: it.path, bytes: b, mode: it.mode ?? defaultMode });
        }
      } else {
        for (const [k, b] of data) files.push({ path: k, bytes: b, mode: defaultMode });
      }
      for (const f of files) {
        const p = `${dir}/${f.path}`;
        await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
        await Deno.writeFile(p, f.bytes, { mode: f.mode });
        // Owned by root; with fsGroup the group is fsGroup and may read (mode | 0440), as the
        // kubelet sets up secret and configMap volumes. Without it a 0600 file is root's only.
        if (fsGroup !== undefined) await Deno.chown(p, 0, fsGroup);
        await Deno.chmod(p, fsGroup !== undefined ? f.mode | 0o440 : f.mode);
      }
      if (fsGroup !== undefined) {
        await Deno.chown(dir, 0, fsGroup);
        await Deno.chmod(dir, 0o2755);
      }
    } else {
      throw new MountError(
        `MountVolume.SetUp failed for volume "${v.name}" : kube-sim supports only emptyDir, ` +
          `secret, configMap and hostPath volumes`,
      );
    }
    out.set(v.name, dir);
  }
  return out;
}

function existsOnHost(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides how the missing directories a container needs (mount points, workingDir) come to
 * exist: under another mount of the container they are made inside that volume; otherwise
 * the nearest existing host ancestor is overlaid (in the container's mount namespace); only
 * directories right under `/` are created on the host (reference counted, removed later).
 */
export function planMountPoints(
  mountPaths: string[],
  workingDir?: string,
  exists: (p: string) => boolean = existsOnHost,
): { overlays: string[]; hostCreate: string[] } {
  const norm = (p: string) => "/" + p.split("/").filter(Boolean).join("/");
  const mounts = mountPaths.map(norm);
  const under = (p: string, dir: string) => dir === "/" || p === dir || p.startsWith(`${dir}/`);
  const ancestors = new Set<string>();
  const hostCreate: string[] = [];
  for (const p of [...mounts, ...(workingDir ? [norm(workingDir)] : [])]) {
    if (p === "/" || exists(p)) continue;
    if (mounts.some((m) => m !== p && under(p, m))) continue;
    let a = p.slice(0, p.lastIndexOf("/")) || "/";
    while (a !== "/" && !exists(a)) a = a.slice(0, a.lastIndexOf("/")) || "/";
    if (a === "/") hostCreate.push(p);
    else ancestors.add(a);
  }
  const overlays = [...ancestors].filter((a) => ![...ancestors].some((b) => b !== a && under(a, b)))
    .sort((x, y) => x.length - y.length);
  return { overlays, hostCreate };
}
