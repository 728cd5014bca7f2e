/**
 * The OpenShift Build object (`build.openshift.io/v1`) as the BuildConfig role receives it in
 * env `BUILD` (reference §4.1, §9): parsed strictly where gangplank acts on a field, with an
 * error naming the field (`BUILD: spec.output.to.kind: ...`) when it is malformed.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import { UsageError } from "../errors/mod.ts";
import { ENV_BUILD } from "./role.ts";

/** Most bytes of `BUILD` accepted (a real Build object is a few KiB). */
export const MAX_BUILD_BYTES = 1024 * 1024;

/** A malformed Build object: names the field and what is wrong with it (exit code 2). */
export class BuildSpecError extends UsageError {
  /** `field` is a dotted path in the Build (`spec.output.to.kind`), `""` for the whole object. */
  constructor(readonly field: string, readonly reason: string) {
    super(`${ENV_BUILD}: ${field ? `${field}: ` : ""}${reason}`);
  }
}

/** Where the build's output image goes (`spec.output.to`). */
export interface BuildOutput {
  /** `DockerImage`: `name` is an image reference; `ImageStreamTag`: `name` is `stream:tag`. */
  kind: "DockerImage" | "ImageStreamTag";
  name: string;
  /** The image stream's namespace (ImageStreamTag; default the build's). */
  namespace?: string;
  /** `spec.output.pushSecret.name`: the Secret OpenShift mounts at `PUSH_DOCKERCFG_PATH`. */
  pushSecret?: string;
}

/** What gangplank uses of a Build object. */
export interface BuildObject {
  /** `metadata.name` */
  name: string;
  /** `metadata.namespace` (absent in Gangplank's mock builds). */
  namespace?: string;
  /** `metadata.annotations["openshift.io/build.number"]` */
  number?: string;
  /** `metadata.annotations["openshift.io/build-config.name"]` */
  buildConfig?: string;
  /** `spec.serviceAccount` */
  serviceAccount?: string;
  /** `spec.source.git` */
  git?: { uri: string; ref?: string };
  /** `spec.source.contextDir` when neither empty nor `/`: the srv dir (Gangplank's rule). */
  contextDir?: string;
  /** `spec.source.binary`: present when `oc start-build --from-*` sends a payload on stdin. */
  binary?: { asFile?: string };
  /** `spec.strategy.customStrategy.env` entries with a literal value (valueFrom ones omitted). */
  strategyEnv: Record<string, string>;
  /** `spec.output.to` (+ pushSecret); absent when the build has no output. */
  output?: BuildOutput;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `v[key]` as an object, `undefined` when absent/null; an error naming the field otherwise. */
function obj(v: Obj, key: string, path: string): Obj | undefined {
  const x = v[key];
  if (x === undefined || x === null) return undefined;
  if (!isObj(x)) throw new BuildSpecError(join(path, key), `expected an object, got ${kind(x)}`);
  return x;
}

function str(v: Obj, key: string, path: string): string | undefined {
  const x = v[key];
  if (x === undefined || x === null) return undefined;
  if (typeof x !== "string") {
    throw new BuildSpecError(join(path, key), `expected a string, got ${kind(x)}`);
  }
  return x;
}

function need(v: Obj, key: string, path: string): string {
  const x = str(v, key, path);
  if (x === undefined || x.trim() === "") throw new BuildSpecError(join(path, key), "required");
  return x;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function kind(x: unknown): string {
  return Array.isArray(x) ? "a list" : x === null ? "null" : `a ${typeof x}`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * Parses the Build object (JSON, or YAML as Gangplank accepted) from `text`.
 * @throws {BuildSpecError} naming the first malformed field.
 */
export function parseBuild(text: string): BuildObject {
  if (text.trim() === "") throw new BuildSpecError("", "empty");
  if (text.length > MAX_BUILD_BYTES) {
    throw new BuildSpecError("", `larger than ${MAX_BUILD_BYTES} bytes`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 0, uniqueKeys: true });
  } catch (e) {
    const first = (e as Error).message.split("\n")[0];
    throw new BuildSpecError("", `not JSON or YAML: ${first}`);
  }
  if (!isObj(doc)) throw new BuildSpecError("", `expected an object, got ${kind(doc)}`);
  const k = str(doc, "kind", "");
  if (k !== undefined && k !== "Build") {
    throw new BuildSpecError("kind", `${JSON.stringify(k)} is not Build`);
  }
  const api = str(doc, "apiVersion", "");
  if (api !== undefined && api !== "build.openshift.io/v1" && api !== "v1") {
    throw new BuildSpecError("apiVersion", `${JSON.stringify(api)} is not build.openshift.io/v1`);
  }
  const meta = obj(doc, "metadata", "");
  if (!meta) throw new BuildSpecError("metadata", "required");
  const name = need(meta, "name", "metadata");
  if (!DNS_NAME.test(name)) throw new BuildSpecError("metadata.name", "not a Kubernetes name");
  const namespace = str(meta, "namespace", "metadata");
  if (namespace !== undefined && !DNS_NAME.test(namespace)) {
    throw new BuildSpecError("metadata.namespace", "not a Kubernetes name");
  }
  const ann = obj(meta, "annotations", "metadata") ?? {};
  const number = str(ann, "openshift.io/build.number", "metadata.annotations");
  const buildConfig = str(ann, "openshift.io/build-config.name", "metadata.annotations");

  const spec = obj(doc, "spec", "");
  if (!spec) throw new BuildSpecError("spec", "required");
  const serviceAccount = str(spec, "serviceAccount", "spec");
  const strategy = obj(spec, "strategy", "spec") ?? {};
  const type = str(strategy, "type", "spec.strategy") ?? "";
  if (type !== "" && type !== "Custom") {
    throw new BuildSpecError(
      "spec.strategy.type",
      `unsupported build strategy ${JSON.stringify(type)} (gangplank is a Custom strategy builder)`,
    );
  }
  const strategyEnv = parseEnv(obj(strategy, "customStrategy", "spec.strategy"));

  const source = obj(spec, "source", "spec") ?? {};
  const gitObj = obj(source, "git", "spec.source");
  let git: BuildObject["git"];
  if (gitObj) {
    const uri = need(gitObj, "uri", "spec.source.git");
    const ref = str(gitObj, "ref", "spec.source.git");
    git = { uri, ...(ref ? { ref } : {}) };
  }
  const ctx = str(source, "contextDir", "spec.source");
  if (ctx !== undefined && (ctx.split("/").includes("..") || ctx.includes("\0"))) {
    throw new BuildSpecError("spec.source.contextDir", "must not contain '..'");
  }
  const binObj = obj(source, "binary", "spec.source");
  let binary: BuildObject["binary"];
  if (binObj) {
    const asFile = str(binObj, "asFile", "spec.source.binary");
    if (
      asFile !== undefined && asFile !== "" &&
      (asFile.includes("/") || asFile === "." || asFile === ".." || asFile.includes("\0"))
    ) {
      throw new BuildSpecError("spec.source.binary.asFile", "must be a plain file name");
    }
    binary = asFile ? { asFile } : {};
  }
  const output = parseOutput(obj(spec, "output", "spec"));
  return {
    name,
    ...(namespace ? { namespace } : {}),
    ...(number ? { number } : {}),
    ...(buildConfig ? { buildConfig } : {}),
    ...(serviceAccount ? { serviceAccount } : {}),
    ...(git ? { git } : {}),
    ...(ctx && ctx !== "/" ? { contextDir: ctx } : {}),
    ...(binary ? { binary } : {}),
    strategyEnv,
    ...(output ? { output } : {}),
  };
}

function parseEnv(custom: Obj | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const list = custom?.env;
  if (list === undefined || list === null) return out;
  const at = "spec.strategy.customStrategy.env";
  if (!Array.isArray(list)) throw new BuildSpecError(at, `expected a list, got ${kind(list)}`);
  list.forEach((e, i) => {
    const p = `${at}[${i}]`;
    if (!isObj(e)) throw new BuildSpecError(p, `expected an object, got ${kind(e)}`);
    const n = need(e, "name", p);
    if (!ENV_NAME.test(n)) throw new BuildSpecError(`${p}.name`, `invalid variable name`);
    const v = str(e, "value", p);
    if (v !== undefined && e.valueFrom === undefined) out[n] = v;
  });
  return out;
}

function parseOutput(o: Obj | undefined): BuildOutput | undefined {
  const to = o ? obj(o, "to", "spec.output") : undefined;
  if (!o || !to) {
    if (o && obj(o, "pushSecret", "spec.output")) {
      throw new BuildSpecError("spec.output.pushSecret", "given without spec.output.to");
    }
    return undefined;
  }
  const k = need(to, "kind", "spec.output.to");
  if (k !== "DockerImage" && k !== "ImageStreamTag") {
    throw new BuildSpecError(
      "spec.output.to.kind",
      `${JSON.stringify(k)} is not DockerImage or ImageStreamTag`,
    );
  }
  const name = need(to, "name", "spec.output.to");
  if (k === "ImageStreamTag" && !/^[a-z0-9][a-z0-9._-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    throw new BuildSpecError("spec.output.to.name", `${JSON.stringify(name)} is not stream:tag`);
  }
  const ns = str(to, "namespace", "spec.output.to");
  if (ns !== undefined && !DNS_NAME.test(ns)) {
    throw new BuildSpecError("spec.output.to.namespace", "not a Kubernetes name");
  }
  const ps = obj(o, "pushSecret", "spec.output");
  const pushSecret = ps ? str(ps, "name", "spec.output.pushSecret") : undefined;
  return {
    kind: k,
    name,
    ...(ns ? { namespace: ns } : {}),
    ...(pushSecret ? { pushSecret } : {}),
  };
}
