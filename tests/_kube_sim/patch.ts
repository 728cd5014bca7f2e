/**
 * The patch formats of the Kubernetes test API server: JSON merge patch (also used for
 * strategic merge patch) and JSON patch.
 *
 * @module
 */

import { ApiError, type KObj } from "./store.ts";
import { badRequest } from "./validate.ts";

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === "object" &&
      !Array.isArray(target)
    ? { ...(target as Record<string, unknown>) }
    : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, test, copy, move). */
export function jsonPatch(doc: unknown, ops: KObj[]): unknown {
  let root = structuredClone(doc);
  const parse = (p: string) =>
    p === "" ? [] : p.slice(1).split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  const get = (path: string[]) => {
    let cur: unknown = root;
    for (const k of path) {
      if (cur === null || typeof cur !== "object") throw badRequest(`path not found: ${k}`);
      cur = (cur as Record<string, unknown>)[k];
    }
    return cur;
  };
  const parentOf = (path: string[]) => {
    const parent = get(path.slice(0, -1));
    if (parent === null || typeof parent !== "object") {
      throw new ApiError(422, "Invalid", `doc is missing path: /${path.join("/")}`);
    }
    return parent as Record<string, unknown> | unknown[];
  };
  const add = (path: string[], value: unknown) => {
    if (!path.length) {
      root = value;
      return;
    }
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent)) {
      parent.splice(last === "-" ? parent.length : Number(last), 0, value);
    } else parent[last] = value;
  };
  const remove = (path: string[]) => {
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else {
      if (!(last in parent)) {
        throw new ApiError(422, "Invalid", `doc is missing path: /${path.join("/")}`);
      }
      delete parent[last];
    }
  };
  for (const op of ops) {
    const path = parse(op.path ?? "");
    switch (op.op) {
      case "add":
        add(path, op.value);
        break;
      case "remove":
        remove(path);
        break;
      case "replace":
        remove(path);
        add(path, op.value);
        break;
      case "test":
        if (JSON.stringify(get(path)) !== JSON.stringify(op.value)) {
          throw new ApiError(422, "Invalid", `testing value /${path.join("/")} failed`);
        }
        break;
      case "copy":
        add(path, structuredClone(get(parse(op.from))));
        break;
      case "move": {
        const v = get(parse(op.from));
        remove(parse(op.from));
        add(path, v);
        break;
      }
      default:
        throw badRequest(`unknown JSON patch op "${op.op}"`);
    }
  }
  return root;
}
