/**
 * The `COSA_WORK_POD_JSON` payload: what one worker fetches, which stage it runs, where it
 * returns results, and where the relay is. The relay's secret key is deliberately NOT part of
 * it (a pod spec or `podman inspect` shows env values); it travels in
 * {@link ENV_RELAY_SECRET_KEY} or a file named by `COSA_RELAY_SECRET_FILE`, which the
 * executor controls (Kubernetes: a Secret).
 *
 * Paths (`force_path`, `force_extract_path`) are relative to the worker's srv directory
 * (`/srv` in a pod). Gangplank's absolute `/srv/...` form is accepted and normalised; anything
 * else that could leave the srv directory is refused.
 *
 * @module
 */

import { posix } from "node:path";
import { UsageError } from "../errors/mod.ts";
import type { JobSpec } from "../jobspec/mod.ts";
import { ENV_RELAY_SECRET_KEY, ENV_WORK_POD_JSON } from "./env.ts";

/**
 * A copy of `spec` without its inline registry secrets, and those secrets by registry index
 * (the coordinator's half of `COSA_REGISTRY_SECRETS`).
 */
export function withoutRegistrySecrets(
  spec: JobSpec,
): { spec: JobSpec; secrets: Record<string, string> } {
  const copy = structuredClone(spec);
  const secrets: Record<string, string> = {};
  (copy.publish_oscontainer?.registries ?? []).forEach((r, i) => {
    if (r.secret === undefined || r.secret === "") return;
    secrets[String(i)] = r.secret;
    delete r.secret;
  });
  return { spec: copy, secrets };
}

/** A copy of `spec` with the registry secrets put back (the worker's half). */
export function withRegistrySecrets(spec: JobSpec, secrets: Record<string, string>): JobSpec {
  const copy = structuredClone(spec);
  (copy.publish_oscontainer?.registries ?? []).forEach((r, i) => {
    const s = secrets[String(i)];
    if (s !== undefined) r.secret = s;
  });
  return copy;
}

/** Artifact metadata of a remote file, used to verify it after download. */
export interface RemoteArtifact {
  /** The meta `images` key (`qemu`, ...), informational. */
  name?: string;
  /** The artifact's path in meta.json. */
  path: string;
  /** Its sha256, verified after download. */
  sha256: string;
  /** Its size in bytes. */
  size?: number;
}

/** One object the worker fetches before running its stage. */
export interface RemoteFile {
  /** Bucket of the object. */
  bucket: string;
  /** Key of the object. */
  object: string;
  /** A tar.gz to extract (safely) instead of keeping as a file. */
  compressed?: boolean;
  /** When set, the download is verified against it (sha256, size). */
  artifact?: RemoteArtifact;
  /** Where to write it, relative to srv (default `<bucket>/<object>`). */
  force_path?: string;
  /** Where to extract a compressed file, relative to srv (default: srv itself). */
  force_extract_path?: string;
}

/** Where the worker returns its results. */
export interface ReturnTarget {
  /** Bucket results go to. */
  bucket: string;
  /** Prefix of every key, without leading/trailing `/` ("" for none). */
  key_prefix: string;
}

/** Where the worker reaches the relay. The secret key is not here (see module docs). */
export interface RelayLocation {
  /** Host workers reach the relay at. */
  host: string;
  /** Port workers reach the relay at. */
  port: number;
  /** S3 region. */
  region: string;
  /** HTTPS. */
  secure: boolean;
  /** Access key id (the secret key travels apart). */
  accesskey: string;
}

/** The `COSA_WORK_POD_JSON` payload. */
export interface WorkSpec {
  /** What to fetch before the stage runs. */
  remotefiles: RemoteFile[];
  /** The JobSpec (inline registry secrets taken out). */
  jobspec: JobSpec;
  /** Stage ids to run, in order (normally one). */
  executeStages: string[];
  /** Where results go. */
  return: ReturnTarget;
  /** Where the relay is. */
  relay: RelayLocation;
}

/** A WorkSpec that cannot be accepted; `path` is the JSON path of the offending value. */
export class WorkSpecError extends UsageError {
  constructor(readonly path: string, readonly detail: string) {
    super(`${ENV_WORK_POD_JSON}: ${path ? `${path}: ` : ""}${detail}`);
  }
}

/**
 * Normalises a path that must stay inside the srv dir: returns it relative to srv (posix,
 * no `.`/`..` segments; "" means srv itself). Gangplank's absolute `/srv/...` and `/` (for an
 * extraction root) are accepted. Returns `undefined` when the path would escape.
 */
export function srvRelative(p: string): string | undefined {
  if (p.includes("\0")) return undefined;
  let rel = p;
  if (rel === "/" || rel === "/srv" || rel === "/srv/") rel = "";
  else if (rel.startsWith("/srv/")) rel = rel.slice("/srv/".length);
  else if (rel.startsWith("/")) return undefined;
  if (rel.split("/").includes("..")) return undefined;
  const n = posix.normalize(rel === "" ? "." : rel);
  if (n === "." || n === "./") return "";
  if (n.startsWith("../") || n === ".." || n.startsWith("/")) return undefined;
  return n.replace(/\/$/, "");
}

/** Normalises a key prefix: no leading/trailing `/`, no `.`/`..` segments. */
export function normalizeKeyPrefix(p: string): string | undefined {
  const parts = p.split("/").filter((s) => s !== "");
  if (parts.some((s) => s === "." || s === "..")) return undefined;
  return parts.join("/");
}

/** Where a remote file lands, relative to srv: `force_path`, else `<bucket>/<object>`. */
export function remoteFileTarget(rf: RemoteFile): string {
  const t = rf.force_path ?? `${rf.bucket}/${rf.object}`;
  const rel = srvRelative(t);
  if (rel === undefined || rel === "") {
    throw new WorkSpecError("remotefiles", `target ${JSON.stringify(t)} escapes the srv dir`);
  }
  return rel;
}

/** Serialises a WorkSpec for `COSA_WORK_POD_JSON` (validated first). */
export function encodeWorkSpec(ws: WorkSpec): string {
  const checked = validateWorkSpec(JSON.parse(JSON.stringify(ws)));
  return JSON.stringify(checked);
}

/**
 * Parses and validates `COSA_WORK_POD_JSON`. Paths are normalised relative to srv.
 * @throws {WorkSpecError} naming the JSON path of the first problem.
 */
export function decodeWorkSpec(text: string): WorkSpec {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new WorkSpecError("", `not valid JSON: ${(e as Error).message}`);
  }
  return validateWorkSpec(v);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function str(v: unknown, path: string, opts: { empty?: boolean } = {}): string {
  if (typeof v !== "string") throw new WorkSpecError(path, "must be a string");
  if (!opts.empty && v === "") throw new WorkSpecError(path, "must not be empty");
  return v;
}

function optBool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw new WorkSpecError(path, "must be a boolean");
  return v;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function bucketName(v: unknown, path: string): string {
  const b = str(v, path);
  if (!BUCKET_RE.test(b) || b.includes("..")) {
    throw new WorkSpecError(path, `${JSON.stringify(b)} is not a valid bucket name`);
  }
  return b;
}

function objectKey(v: unknown, path: string): string {
  const k = str(v, path);
  const parts = k.split("/");
  if (k.startsWith("/") || parts.some((p) => p === ".." || p === ".") || k.includes("\0")) {
    throw new WorkSpecError(path, `object key ${JSON.stringify(k)} escapes the srv dir`);
  }
  return k;
}

function confined(v: unknown, path: string, allowRoot: boolean): string {
  const p = str(v, path, { empty: allowRoot });
  const rel = srvRelative(p);
  if (rel === undefined || (!allowRoot && rel === "")) {
    throw new WorkSpecError(path, `${JSON.stringify(p)} escapes the srv dir`);
  }
  return rel;
}

function remoteFile(v: unknown, path: string): RemoteFile {
  if (!isObj(v)) throw new WorkSpecError(path, "must be an object");
  const rf: RemoteFile = {
    bucket: bucketName(v.bucket, `${path}.bucket`),
    object: objectKey(v.object, `${path}.object`),
  };
  const compressed = optBool(v.compressed, `${path}.compressed`);
  if (compressed !== undefined) rf.compressed = compressed;
  if (v.artifact !== undefined && v.artifact !== null) {
    const a = v.artifact;
    const ap = `${path}.artifact`;
    if (!isObj(a)) throw new WorkSpecError(ap, "must be an object");
    const sha = str(a.sha256, `${ap}.sha256`);
    if (!/^[0-9a-f]{64}$/.test(sha)) {
      throw new WorkSpecError(`${ap}.sha256`, "must be 64 lower-case hex digits");
    }
    const art: RemoteArtifact = { path: str(a.path, `${ap}.path`), sha256: sha };
    if (a.name !== undefined) art.name = str(a.name, `${ap}.name`);
    if (a.size !== undefined && a.size !== null) {
      if (typeof a.size !== "number" || !Number.isSafeInteger(a.size) || a.size < 0) {
        throw new WorkSpecError(`${ap}.size`, "must be a non-negative integer");
      }
      art.size = a.size;
    }
    rf.artifact = art;
  }
  if (v.force_path !== undefined && v.force_path !== null && v.force_path !== "") {
    rf.force_path = confined(v.force_path, `${path}.force_path`, false);
  } else if (!rf.compressed) {
    // The default target <bucket>/<object> must stay inside srv as well.
    confined(`${rf.bucket}/${rf.object}`, `${path}.object`, false);
  }
  if (v.force_extract_path !== undefined && v.force_extract_path !== null) {
    rf.force_extract_path = confined(v.force_extract_path, `${path}.force_extract_path`, true);
  }
  return rf;
}

/**
 * Validates a parsed WorkSpec and returns a normalised copy.
 * @throws {WorkSpecError}
 */
export function validateWorkSpec(v: unknown): WorkSpec {
  if (!isObj(v)) throw new WorkSpecError("", "must be a JSON object");
  if (!Array.isArray(v.remotefiles ?? [])) {
    throw new WorkSpecError("remotefiles", "must be a list");
  }
  const remotefiles = ((v.remotefiles ?? []) as unknown[]).map((rf, i) =>
    remoteFile(rf, `remotefiles[${i}]`)
  );

  const js = v.jobspec;
  if (!isObj(js)) throw new WorkSpecError("jobspec", "must be an object");
  if (!Array.isArray(js.stages)) throw new WorkSpecError("jobspec.stages", "must be a list");
  const ids = new Set<string>();
  (js.stages as unknown[]).forEach((s, i) => {
    if (!isObj(s)) throw new WorkSpecError(`jobspec.stages[${i}]`, "must be an object");
    ids.add(str(s.id, `jobspec.stages[${i}].id`));
  });

  if (!Array.isArray(v.executeStages) || v.executeStages.length === 0) {
    throw new WorkSpecError("executeStages", "must be a non-empty list of stage ids");
  }
  const executeStages = (v.executeStages as unknown[]).map((s, i) => {
    const id = str(s, `executeStages[${i}]`);
    if (!ids.has(id)) {
      throw new WorkSpecError(`executeStages[${i}]`, `no stage ${JSON.stringify(id)} in jobspec`);
    }
    return id;
  });

  const r = v.return;
  if (!isObj(r)) throw new WorkSpecError("return", "must be an object");
  const prefix = normalizeKeyPrefix(str(r.key_prefix ?? "", "return.key_prefix", { empty: true }));
  if (prefix === undefined) {
    throw new WorkSpecError("return.key_prefix", "must not contain `.` or `..` segments");
  }
  const ret: ReturnTarget = { bucket: bucketName(r.bucket, "return.bucket"), key_prefix: prefix };

  const rl = v.relay;
  if (!isObj(rl)) throw new WorkSpecError("relay", "must be an object");
  if ("secretkey" in rl) {
    throw new WorkSpecError(
      "relay.secretkey",
      `the secret key must not be in the WorkSpec (use ${ENV_RELAY_SECRET_KEY})`,
    );
  }
  const port = rl.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new WorkSpecError("relay.port", "must be an integer between 1 and 65535");
  }
  const relay: RelayLocation = {
    host: str(rl.host, "relay.host"),
    port,
    region: str(rl.region ?? "us-east-1", "relay.region", { empty: true }),
    secure: optBool(rl.secure, "relay.secure") ?? false,
    accesskey: str(rl.accesskey, "relay.accesskey"),
  };

  return {
    remotefiles,
    jobspec: js as unknown as JobSpec,
    executeStages,
    return: ret,
    relay,
  };
}
