/**
 * A container's environment as the kubelet builds it: `env` values with `$(VAR)` expansion,
 * `secretKeyRef`/`configMapKeyRef`, `fieldRef`, `resourceFieldRef` and `envFrom`. Values
 * from Secrets and ConfigMaps are kept apart (they never go into an argv).
 *
 * @module
 */

import type { KObj, ObjectStore } from "./store.ts";

/** A reference the environment needs is missing (`CreateContainerConfigError`). */
export class EnvError extends Error {}

/** Resolves one container's environment (throws {@link EnvError} for missing references). */
export function resolveEnv(
  store: ObjectStore,
  nodeName: string,
  pod: KObj,
  c: KObj,
): { env: Record<string, string>; secretEnv: Record<string, string> } {
  const ns = pod.metadata.namespace;
  const env: Record<string, string> = {};
  const secretEnv: Record<string, string> = {};
  const dec = new TextDecoder();
  const getSecret = (name: string, optional: boolean) => {
    const s = store.get("secrets", ns, name);
    if (!s && !optional) throw new EnvError(`secret "${name}" not found`);
    return s;
  };
  const getCm = (name: string, optional: boolean) => {
    const s = store.get("configmaps", ns, name);
    if (!s && !optional) throw new EnvError(`configmap "${name}" not found`);
    return s;
  };
  const secretVal = (s: KObj, key: string): string | undefined => {
    const b64 = s.data?.[key];
    if (b64 === undefined) return undefined;
    return dec.decode(Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)));
  };
  const set = (name: string, v: string, secret: boolean) => {
    delete env[name];
    delete secretEnv[name];
    (secret ? secretEnv : env)[name] = v;
  };
  for (const ef of (c.envFrom ?? []) as KObj[]) {
    const prefix = ef.prefix ?? "";
    if (ef.secretRef) {
      const s = getSecret(ef.secretRef.name, !!ef.secretRef.optional);
      for (const k of Object.keys(s?.data ?? {})) set(prefix + k, secretVal(s!, k)!, true);
    } else if (ef.configMapRef) {
      const cm = getCm(ef.configMapRef.name, !!ef.configMapRef.optional);
      for (const [k, v] of Object.entries(cm?.data ?? {})) set(prefix + k, v as string, true);
    }
  }
  const expand = (s: string) =>
    s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$/g, (all, name) => {
      if (all === "$$") return "$";
      const v = env[name] ?? secretEnv[name];
      return v === undefined ? all : v;
    });
  for (const e of (c.env ?? []) as KObj[]) {
    if (e.valueFrom === undefined) {
      set(e.name, expand(e.value ?? ""), false);
      continue;
    }
    const vf = e.valueFrom;
    if (vf.secretKeyRef) {
      const r = vf.secretKeyRef;
      const s = getSecret(r.name, !!r.optional);
      if (!s) continue;
      const v = secretVal(s, r.key);
      if (v === undefined) {
        if (r.optional) continue;
        throw new EnvError(`couldn't find key ${r.key} in Secret ${ns}/${r.name}`);
      }
      set(e.name, v, true);
    } else if (vf.configMapKeyRef) {
      const r = vf.configMapKeyRef;
      const cm = getCm(r.name, !!r.optional);
      if (!cm) continue;
      const v = cm.data?.[r.key];
      if (v === undefined) {
        if (r.optional) continue;
        throw new EnvError(`couldn't find key ${r.key} in ConfigMap ${ns}/${r.name}`);
      }
      set(e.name, v, true);
    } else if (vf.fieldRef) {
      const p = vf.fieldRef.fieldPath as string;
      const lab = p.match(/^metadata\.(labels|annotations)\['(.+)'\]$/);
      let v: string | undefined;
      if (lab) v = pod.metadata[lab[1]]?.[lab[2]];
      else {
        const map: Record<string, string | undefined> = {
          "metadata.name": pod.metadata.name,
          "metadata.namespace": ns,
          "metadata.uid": pod.metadata.uid,
          "spec.nodeName": nodeName,
          "spec.serviceAccountName": pod.spec.serviceAccountName ?? "default",
          "status.podIP": pod.status?.podIP ?? "127.0.0.1",
          "status.hostIP": pod.status?.hostIP ?? "127.0.0.1",
        };
        v = map[p];
      }
      set(e.name, v ?? "", false);
    } else if (vf.resourceFieldRef) {
      const r = c.resources?.limits?.[vf.resourceFieldRef.resource.replace(/^limits\./, "")];
      set(e.name, r === undefined ? "0" : String(r), false);
    }
  }
  if (!("HOSTNAME" in env) && !("HOSTNAME" in secretEnv)) env.HOSTNAME = pod.metadata.name;
  return { env, secretEnv };
}
