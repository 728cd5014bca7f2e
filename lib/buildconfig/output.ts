/**
 * The build's output image (reference §9 "uploadCustomBuildContainer", §0 item 24): the
 * Build's `spec.output.to` becomes one more `publish_oscontainer` registry, so the worker that
 * builds a new OSTree pushes it there with the same code and hygiene as every other registry
 * (auth file 0600 in a 0700 dir, removed afterwards; no secret on a command line or in a log).
 *
 * Credentials: OpenShift's push secret, mounted at `PUSH_DOCKERCFG_PATH` (`.dockerconfigjson`
 * or the older `.dockercfg`), travels as an inline auth (apart from the WorkSpec); without one,
 * the worker logs in with its service-account token. TLS verification follows
 * `publish_oscontainer.buildstrategy_tls_verify` (default true).
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { UsageError } from "../errors/mod.ts";
import type { JobSpec, Registry } from "../jobspec/types.ts";
import { parseImageRef } from "../worker/oscontainer.ts";
import type { BuildObject } from "./build.ts";

/** Where OpenShift mounts the build's push secret. */
export const ENV_PUSH_DOCKERCFG_PATH = "PUSH_DOCKERCFG_PATH";

/** The push secret's files, most preferred first. */
export const PUSH_SECRET_FILES = [".dockerconfigjson", ".dockercfg", "config.json"] as const;

/** A push secret that cannot be used; names the file, never its content (exit code 2). */
export class PushSecretError extends UsageError {
  constructor(readonly file: string, reason: string) {
    super(`${ENV_PUSH_DOCKERCFG_PATH}: ${file}: ${reason}`);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The push secret as a `config.json` document (`{"auths": {...}}`): `.dockerconfigjson` is one
 * already; `.dockercfg` is the bare `{registry: {auth}}` map, wrapped.
 * @throws {PushSecretError} when the content is not such a document.
 */
export function dockerConfigOf(file: string, text: string): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new PushSecretError(file, "not JSON");
  }
  if (!isObj(v)) throw new PushSecretError(file, "not a JSON object");
  const auths = file === ".dockercfg" ? v : v.auths;
  if (!isObj(auths) || Object.keys(auths).length === 0) {
    throw new PushSecretError(file, "holds no registry credentials");
  }
  for (const [reg, a] of Object.entries(auths)) {
    if (!isObj(a)) throw new PushSecretError(file, `entry ${JSON.stringify(reg)} is not an object`);
  }
  return JSON.stringify({ auths });
}

/**
 * Reads the push secret mounted in `dir` (the first of {@link PUSH_SECRET_FILES} present).
 * @throws {PushSecretError} when none is present or it is unusable.
 */
export async function readPushSecret(dir: string): Promise<string> {
  for (const f of PUSH_SECRET_FILES) {
    let text: string;
    try {
      text = await readFile(join(dir, f), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new PushSecretError(f, `cannot read: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
    }
    return dockerConfigOf(f, text);
  }
  throw new PushSecretError(dir, `none of ${PUSH_SECRET_FILES.join(", ")} found`);
}

/** Resolves an ImageStream's pull/push repository (`status.dockerImageRepository`). */
export type ImageStreamRepository = (
  namespace: string,
  name: string,
  signal: AbortSignal,
) => Promise<string>;

/** Inputs of {@link outputRegistry}. */
export interface OutputOptions {
  /** The push secret as a config.json document ({@link readPushSecret}); else the SA token. */
  pushAuth?: string;
  /** `publish_oscontainer.buildstrategy_tls_verify` (default true). */
  tlsVerify?: boolean;
  /** Needed for `ImageStreamTag` outputs. */
  imageStreamRepository?: ImageStreamRepository;
  signal: AbortSignal;
}

/**
 * The `publish_oscontainer` registry entry of the Build's output, or undefined when the Build
 * has none. `ImageStreamTag` `stream:tag` resolves to `<stream's repository>:<tag>`.
 * @throws {UsageError} for an output that cannot be pushed to (the message names the field).
 */
export async function outputRegistry(
  build: BuildObject,
  opts: OutputOptions,
): Promise<Registry | undefined> {
  const out = build.output;
  if (!out) return undefined;
  let url = out.name;
  if (out.kind === "ImageStreamTag") {
    const [stream, tag] = out.name.split(":");
    const ns = out.namespace ?? build.namespace;
    if (!ns) throw new UsageError("BUILD: spec.output.to.namespace: needed (the Build has none)");
    if (!opts.imageStreamRepository) {
      throw new UsageError("BUILD: spec.output.to: ImageStreamTag needs the cluster's API");
    }
    let repo: string;
    try {
      repo = await opts.imageStreamRepository(ns, stream, opts.signal);
    } catch (e) {
      throw new UsageError(
        `BUILD: spec.output.to: image stream ${ns}/${stream}: ${(e as Error).message}`,
      );
    }
    if (!repo) {
      throw new UsageError(
        `BUILD: spec.output.to: image stream ${ns}/${stream} has no status.dockerImageRepository ` +
          "(is the integrated registry configured?)",
      );
    }
    url = `${repo}:${tag}`;
  }
  const ref = parseImageRef(url);
  if (!ref.explicitRegistry) {
    throw new UsageError(`BUILD: spec.output.to.name: ${JSON.stringify(url)} names no registry`);
  }
  return {
    url,
    tls_verify: opts.tlsVerify !== false,
    ...(opts.pushAuth
      ? { secret_type: "inline", secret: opts.pushAuth }
      : { secret_type: "token" }),
  };
}

/** `spec` with `registry` appended to its `publish_oscontainer.registries`. */
export function withOutputRegistry(spec: JobSpec, registry: Registry | undefined): JobSpec {
  if (!registry) return spec;
  const pub = spec.publish_oscontainer ?? {};
  return {
    ...spec,
    publish_oscontainer: { ...pub, registries: [...(pub.registries ?? []), registry] },
  };
}
