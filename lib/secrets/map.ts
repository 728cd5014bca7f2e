/**
 * Pure functions turning labelled Secrets/ConfigMaps (metadata only: name, labels, data keys)
 * into worker pod env entries, volumes and mounts. Secret values never pass through here: env
 * vars use `valueFrom.secretKeyRef` and files come from secret volumes, both resolved by the
 * kubelet.
 *
 * @module
 */

import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import {
  MOUNT_REF_LABEL,
  MOUNT_REF_MAPPINGS,
  type MountRefMapping,
  SECRET_LABEL,
  SECRET_MAPPINGS,
  type SecretMapping,
} from "./table.ts";

/** What the coordinator knows about a labelled object: never its values. */
export interface LabelledObject {
  kind: "Secret" | "ConfigMap";
  name: string;
  labels: Record<string, string>;
  /** Data keys (`data` and `binaryData`), sorted. */
  keys: string[];
}

/** Env entries, volumes and mounts to add to a worker pod, plus non-fatal findings. */
export interface PodAdditions {
  env: V1EnvVar[];
  volumes: V1Volume[];
  /** Mounts for the main (worker) container. */
  mounts: V1VolumeMount[];
  /** Mounts the CA-trust init container also needs (the `internal-ca` anchors). */
  initMounts: V1VolumeMount[];
  /** Skipped objects and why (unknown label value, duplicate, no usable key). */
  warnings: string[];
}

/** Root under which §7.3 files are written: `/srv/.<type>/<key>`. */
export const SECRET_FILES_ROOT = "/srv";

/** Mode of every §7.3 file. */
export const SECRET_FILE_MODE = 0o600;

/** Extracts the metadata of a Secret or ConfigMap as returned by the API (values dropped). */
export function metadataOf(
  kind: "Secret" | "ConfigMap",
  obj: {
    metadata?: { name?: string; labels?: Record<string, string> };
    data?: Record<string, unknown>;
    binaryData?: Record<string, unknown>;
  },
): LabelledObject {
  const keys = [...Object.keys(obj.data ?? {}), ...Object.keys(obj.binaryData ?? {})];
  return {
    kind,
    name: obj.metadata?.name ?? "",
    labels: { ...(obj.metadata?.labels ?? {}) },
    keys: [...new Set(keys)].sort(),
  };
}

/** Looks up a §7.3 row by label value. */
export function secretMappingFor(type: string): SecretMapping | undefined {
  return SECRET_MAPPINGS.find((m) => m.type === type);
}

/** Looks up a §7.4 row by label value. */
export function mountRefMappingFor(type: string): MountRefMapping | undefined {
  return MOUNT_REF_MAPPINGS.find((m) => m.type === type);
}

function empty(): PodAdditions {
  return { env: [], volumes: [], mounts: [], initMounts: [], warnings: [] };
}

function byName(a: LabelledObject, b: LabelledObject): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Maps Secrets labelled `coreos-assembler.coreos.com/secret=<type>` by the §7.3 table.
 * Env keys become `secretKeyRef` env vars; file keys come from a secret volume mounted
 * read-only at `/srv/.<type>/` with mode 0600, and the env var holds the file path. One Secret
 * per type is used (the first by name); others are reported in `warnings`.
 *
 * @example
 * ```ts
 * const add = secretMaps([{ kind: "Secret", name: "s3", labels: { [SECRET_LABEL]: "aws" },
 *   keys: ["aws_access_key_id", "config"] }]);
 * // add.env: AWS_ACCESS_KEY_ID (secretKeyRef s3/aws_access_key_id), AWS_CONFIG_FILE=/srv/.aws/config
 * ```
 */
export function secretMaps(objects: readonly LabelledObject[]): PodAdditions {
  const out = empty();
  const seen = new Set<string>();
  for (const obj of [...objects].sort(byName)) {
    const type = obj.labels[SECRET_LABEL];
    if (type === undefined) continue;
    if (obj.kind !== "Secret") {
      out.warnings.push(`${obj.kind} ${obj.name}: the ${SECRET_LABEL} label applies to Secrets`);
      continue;
    }
    const row = secretMappingFor(type);
    if (!row) {
      out.warnings.push(`Secret ${obj.name}: unknown ${SECRET_LABEL} value "${type}", skipped`);
      continue;
    }
    if (seen.has(type)) {
      out.warnings.push(`Secret ${obj.name}: another Secret already provides "${type}", skipped`);
      continue;
    }
    const keys = new Set(obj.keys);
    let used = 0;
    for (const e of row.envs) {
      if (!keys.has(e.key)) continue;
      out.env.push({ name: e.env, valueFrom: { secretKeyRef: { name: obj.name, key: e.key } } });
      used++;
    }
    const dir = `${SECRET_FILES_ROOT}/.${type}`;
    const items: { key: string; path: string; mode: number }[] = [];
    for (const f of row.files) {
      const present = f.keys.filter((k) => keys.has(k));
      if (present.length === 0) continue;
      for (const k of present) {
        if (!items.some((i) => i.key === k)) {
          items.push({ key: k, path: k, mode: SECRET_FILE_MODE });
        }
      }
      out.env.push({ name: f.env, value: `${dir}/${present[0]}` });
      used++;
    }
    if (used === 0) {
      out.warnings.push(`Secret ${obj.name}: no data key of "${type}" is known, skipped`);
      continue;
    }
    seen.add(type);
    if (items.length > 0) {
      const volume = `secret-${type}`;
      out.volumes.push({
        name: volume,
        secret: { secretName: obj.name, defaultMode: SECRET_FILE_MODE, items },
      });
      out.mounts.push({ name: volume, mountPath: dir, readOnly: true });
    }
  }
  return out;
}

/**
 * Maps Secrets and ConfigMaps labelled `coreos-assembler.coreos.com/mount-ref=<type>` by the
 * §7.4 table, mounting each as its real kind. Modes are octal (0444 for public material, 0600
 * for credentials). One object per type is used (the first by name).
 */
export function mountRefs(objects: readonly LabelledObject[]): PodAdditions {
  const out = empty();
  const seen = new Set<string>();
  for (const obj of [...objects].sort(byName)) {
    const type = obj.labels[MOUNT_REF_LABEL];
    if (type === undefined) continue;
    const row = mountRefMappingFor(type);
    if (!row) {
      out.warnings.push(
        `${obj.kind} ${obj.name}: unknown ${MOUNT_REF_LABEL} value "${type}", skipped`,
      );
      continue;
    }
    if (seen.has(type)) {
      out.warnings.push(`${obj.kind} ${obj.name}: another object already provides "${type}"`);
      continue;
    }
    seen.add(type);
    const mode = obj.kind === "Secret" && !row.public ? 0o600 : row.mode;
    const volume: V1Volume = obj.kind === "Secret"
      ? { name: row.volume, secret: { secretName: obj.name, defaultMode: mode } }
      : { name: row.volume, configMap: { name: obj.name, defaultMode: mode } };
    out.volumes.push(volume);
    const mount = { name: row.volume, mountPath: row.mountPath, readOnly: true };
    out.mounts.push(mount);
    // The CA-trust init container copies the internal CA from its anchors2 mount.
    if (type === "internal-ca") out.initMounts.push({ ...mount });
  }
  return out;
}

/** Label selectors (key exists) listing the objects {@link secretMaps} and {@link mountRefs} use. */
export const SECRET_SELECTOR: string = SECRET_LABEL;
/** Label selector for mount-ref objects. */
export const MOUNT_REF_SELECTOR: string = MOUNT_REF_LABEL;

/** Concatenates several {@link PodAdditions}. */
export function mergeAdditions(...parts: PodAdditions[]): PodAdditions {
  const out = empty();
  for (const p of parts) {
    out.env.push(...p.env);
    out.volumes.push(...p.volumes);
    out.mounts.push(...p.mounts);
    out.initMounts.push(...p.initMounts);
    out.warnings.push(...p.warnings);
  }
  return out;
}
