/**
 * Admission of the Kubernetes test API server: the `Status` errors of bad requests and the
 * validation of object metadata, Pods and Secrets (422 Invalid with causes, as the real
 * API server words them).
 *
 * @module
 */

import { ApiError, type KObj } from "./store.ts";
import { parseQuantity } from "./quantity.ts";

/** A JSON response with a status code and extra headers. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** A 400 BadRequest `Status` error. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

/** A 422 Invalid `Status` error listing the invalid fields. */
export function invalid(kind: string, name: string, causes: { field: string; message: string }[]) {
  return new ApiError(
    422,
    "Invalid",
    `${kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`,
    {
      name,
      kind,
      causes: causes.map((c) => ({ reason: "FieldValueInvalid", ...c })),
    },
  );
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Checks the name and labels of any object, adding causes. */
export function validateMeta(kind: string, o: KObj, causes: { field: string; message: string }[]) {
  const name = o.metadata.name;
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    causes.push({
      field: "metadata.name",
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower ` +
        `case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric ` +
        `character`,
    });
  }
  for (const [k, v] of Object.entries((o.metadata.labels ?? {}) as Record<string, unknown>)) {
    const slash = k.lastIndexOf("/");
    const prefix = slash >= 0 ? k.slice(0, slash) : "";
    const nm = slash >= 0 ? k.slice(slash + 1) : k;
    if (
      (prefix && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) || nm.length > 63 ||
      !LABEL_NAME.test(nm)
    ) {
      causes.push({
        field: "metadata.labels",
        message: `Invalid value: "${k}": invalid label key`,
      });
    }
    if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) {
      causes.push({
        field: "metadata.labels",
        message: `Invalid value: "${v}": a valid label must be an empty string or consist of ` +
          `alphanumeric characters, '-', '_' or '.', and must start and end with an ` +
          `alphanumeric character (max 63 characters)`,
      });
    }
  }
  void kind;
}

/** Validates a Pod (containers, volumes, mounts, env names, resources, restartPolicy). */
export function validatePod(o: KObj): void {
  const causes: { field: string; message: string }[] = [];
  validateMeta("Pod", o, causes);
  const spec = o.spec;
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    causes.push({ field: "spec.containers", message: "Required value" });
  }
  const vols = new Set<string>();
  for (const [i, v] of ((spec?.volumes ?? []) as KObj[]).entries()) {
    if (!v.name || !DNS_LABEL.test(v.name) || v.name.length > 63) {
      causes.push({ field: `spec.volumes[${i}].name`, message: `Invalid value: "${v.name}"` });
    }
    if (vols.has(v.name)) {
      causes.push({ field: `spec.volumes[${i}].name`, message: `Duplicate value: "${v.name}"` });
    }
    vols.add(v.name);
    for (const src of [v.secret, v.configMap]) {
      if (!src) continue;
      const modes = [src.defaultMode, ...((src.items ?? []) as KObj[]).map((it) => it.mode)];
      for (const m of modes) {
        if (m !== undefined && (typeof m !== "number" || m < 0 || m > 0o777)) {
          causes.push({
            field: `spec.volumes[${i}]`,
            message: `Invalid value: ${m}: must be a number between 0 and 0777 (octal), both ` +
              `inclusive`,
          });
        }
      }
    }
  }
  const names = new Set<string>();
  const check = (list: KObj[] | undefined, field: string) => {
    for (const [i, c] of (list ?? []).entries()) {
      const f = `spec.${field}[${i}]`;
      if (!c.name || c.name.length > 63 || !DNS_LABEL.test(c.name)) {
        causes.push({ field: `${f}.name`, message: `Invalid value: "${c.name ?? ""}"` });
      }
      if (names.has(c.name)) {
        causes.push({ field: `${f}.name`, message: `Duplicate value: "${c.name}"` });
      }
      names.add(c.name);
      if (!c.image) causes.push({ field: `${f}.image`, message: "Required value" });
      const limits = (c.resources?.limits ?? {}) as Record<string, unknown>;
      const requests = (c.resources?.requests ?? {}) as Record<string, unknown>;
      for (const [kind, list] of [["limits", limits], ["requests", requests]] as const) {
        for (const [k, v] of Object.entries(list)) {
          if (
            (typeof v !== "string" && typeof v !== "number") || Number.isNaN(parseQuantity(v))
          ) {
            causes.push({
              field: `${f}.resources.${kind}[${k}]`,
              message: `Invalid value: "${v}": quantities must match the regular expression ` +
                `'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
            });
          }
        }
      }
      for (const [k, v] of Object.entries(requests)) {
        if (k in limits && parseQuantity(v as string) > parseQuantity(limits[k] as string)) {
          causes.push({
            field: `${f}.resources.requests`,
            message: `Invalid value: "${v}": must be less than or equal to ${k} limit of ` +
              `${limits[k]}`,
          });
        }
      }
      for (const [j, m] of ((c.volumeMounts ?? []) as KObj[]).entries()) {
        if (!vols.has(m.name)) {
          causes.push({ field: `${f}.volumeMounts[${j}].name`, message: `Not found: "${m.name}"` });
        }
        if (!m.mountPath) {
          causes.push({ field: `${f}.volumeMounts[${j}].mountPath`, message: "Required value" });
        }
      }
      for (const [j, e] of ((c.env ?? []) as KObj[]).entries()) {
        if (!e.name) causes.push({ field: `${f}.env[${j}].name`, message: "Required value" });
        else if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(e.name)) {
          causes.push({
            field: `${f}.env[${j}].name`,
            message: `Invalid value: "${e.name}": a valid environment variable name must consist ` +
              `of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit`,
          });
        }
        if (e.value !== undefined && e.valueFrom !== undefined) {
          causes.push({
            field: `${f}.env[${j}].valueFrom`,
            message: 'Invalid value: "": may not be specified when `value` is not empty',
          });
        }
      }
    }
  };
  check(spec?.initContainers, "initContainers");
  check(spec?.containers, "containers");
  if (
    spec?.restartPolicy !== undefined &&
    !["Always", "OnFailure", "Never"].includes(spec.restartPolicy)
  ) {
    causes.push({
      field: "spec.restartPolicy",
      message: `Unsupported value: "${spec.restartPolicy}"`,
    });
  }
  if (causes.length) throw invalid("Pod", o.metadata.name, causes);
}

/** Validates a Secret (data keys, base64 values). */
export function validateSecret(o: KObj): void {
  const causes: { field: string; message: string }[] = [];
  validateMeta("Secret", o, causes);
  for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, unknown>)) {
    if (!/^[-._a-zA-Z0-9]+$/.test(k)) {
      causes.push({ field: `data[${k}]`, message: `Invalid value: "${k}": invalid key` });
    }
    try {
      if (typeof v !== "string") throw new Error();
      atob(v);
    } catch {
      throw badRequest(`illegal base64 data in Secret data key "${k}"`);
    }
  }
  if (causes.length) throw invalid("Secret", o.metadata.name, causes);
}

/** Base64 of the UTF-8 bytes of a string (Secret `stringData` → `data`). */
export function b64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** A Secret or ConfigMap holds at most 1 MiB of data (the API server's limit). */
export function validateDataSize(kind: string, o: KObj): void {
  let bytes = 0;
  for (const field of ["data", "binaryData"]) {
    for (const [k, v] of Object.entries((o[field] ?? {}) as Record<string, string>)) {
      // Secret data and ConfigMap binaryData are base64: count decoded bytes.
      const b64 = kind === "Secret" || field === "binaryData";
      bytes += k.length + (b64 ? Math.floor(String(v).length * 3 / 4) : String(v).length);
    }
  }
  if (bytes > 1024 * 1024) {
    throw invalid(kind, o.metadata.name, [{
      field: "[]",
      message: `Too long: must have at most 1048576 bytes`,
    }]);
  }
}
