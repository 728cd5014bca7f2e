/**
 * The BuildConfig role up to the run (reference §4.2 `newBC`, §4.3 steps 4-6): receive the
 * binary payload, find the JobSpec, add the implied stages, fill the recipe from the Build's
 * source, add the output image as a registry, and write the JobSpec the coordinator then runs
 * with the kube backend (in-cluster, the build pod's service account and namespace).
 *
 * @module
 */

import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { statSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors/mod.ts";
import {
  type JobSpec,
  jobSpecToYaml,
  loadJobSpec,
  parseJobSpec,
  type Stage,
} from "../jobspec/mod.ts";
import { packTarGz } from "../archive/mod.ts";
import type { BuildObject } from "./build.ts";
import { cosaScripts, receivePayload } from "./binary.ts";
import {
  cloneArgv,
  effectiveRecipe,
  impliedStages,
  type JobSpecOrigin,
  jobSpecOrigin,
} from "./jobspec_source.ts";
import {
  ENV_PUSH_DOCKERCFG_PATH,
  type ImageStreamRepository,
  outputRegistry,
  readPushSecret,
  withOutputRegistry,
} from "./output.ts";

/** Where a worker finds the payload (relative to its srv dir): delivered as a stage override. */
export const WORKER_PAYLOAD_DIR = "overrides/source";

/** What {@link prepareBuildConfig} needs. */
export interface PrepareOptions {
  build: BuildObject;
  /** The process environment (the Build's strategy env is the default under it). */
  env: Readonly<Record<string, string | undefined>>;
  /** `/srv`, or the Build's `spec.source.contextDir`. */
  srvDir: string;
  /** The payload, read only when the Build has `spec.source.binary`. */
  stdin: () => ReadableStream<Uint8Array>;
  maxPayloadBytes?: number;
  /** Runs `git clone` (argv from {@link cloneArgv}); rejects with a one-line reason. */
  clone: (argv: string[], signal: AbortSignal) => Promise<void>;
  imageStreamRepository?: ImageStreamRepository;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** The JobSpec to run, written to a private file. */
export interface PreparedBuild extends AsyncDisposable {
  spec: JobSpec;
  /** Where the origin of the JobSpec was. */
  origin: JobSpecOrigin;
  /** The JobSpec as YAML, 0600 in a 0700 dir (it may hold the push secret); removed on dispose. */
  specPath: string;
  /** The work dir of the run (the srv dir): `builds/` is gathered there. */
  workDir: string;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Prepares the run of a Build; undefined when there is nothing to do (no stages: Gangplank's
 * "No work to do", a success).
 * @throws {UsageError} for bad input (the Build, the payload, the JobSpec, the push secret).
 */
export async function prepareBuildConfig(o: PrepareOptions): Promise<PreparedBuild | undefined> {
  const env = { ...o.build.strategyEnv, ...o.env };
  try {
    if (!(await stat(o.srvDir)).isDirectory()) throw new Error("not a directory");
  } catch (e) {
    throw new UsageError(`srv dir ${o.srvDir}: ${(e as Error).message}`);
  }
  const scratch = join(o.srvDir, `.gangplank-buildconfig-${crypto.randomUUID().slice(0, 8)}`);
  await mkdir(scratch, { mode: 0o700 });
  const cleanup = () => rm(scratch, { recursive: true, force: true }).catch(() => {});
  try {
    let payload: Awaited<ReturnType<typeof receivePayload>> | undefined;
    if (o.build.binary) {
      payload = await receivePayload(o.stdin(), o.srvDir, o.build.binary, {
        maxBytes: o.maxPayloadBytes,
        signal: o.signal,
      });
      o.log(`gangplank: received ${payload.bytes} bytes of binary input into ${payload.dir}`);
    }
    const origin = jobSpecOrigin({
      env,
      srvDir: o.srvDir,
      ...(payload ? { payloadDir: payload.dir } : {}),
      ...(payload?.file ? { payloadFile: payload.file } : {}),
      isFile,
    });
    let spec: JobSpec;
    switch (origin.kind) {
      case "payload":
      case "srv":
        spec = (await loadJobSpec(origin.path, { signal: o.signal })).spec;
        break;
      case "repo": {
        const dest = join(scratch, "jobspec-repo");
        await o.clone(cloneArgv(origin, dest), o.signal);
        spec = (await loadJobSpec(join(dest, origin.file), { signal: o.signal })).spec;
        break;
      }
      case "none":
        spec = parseJobSpec("{}").spec;
    }
    o.log(`gangplank: JobSpec from ${describeOrigin(origin)}`);
    const scripts = payload && !payload.file ? await cosaScripts(payload.dir) : [];
    const implied = spec.job.strict ? [] : impliedStages({
      env,
      scripts,
      scriptPath: (n) => `${WORKER_PAYLOAD_DIR}/${n}`,
      existing: spec.stages,
    });
    let stages: Stage[] = [...spec.stages, ...implied];
    if (payload && stages.length) {
      // The payload goes to every worker through the relay, as a stage override tarball.
      const tarball = join(scratch, "payload.tar.gz");
      await packTarGz({
        root: payload.dir,
        paths: ["."],
        entryPrefix: "source",
        dest: tarball,
        signal: o.signal,
      });
      const uri = `file://${tarball}`;
      stages = stages.map((s) => ({
        ...s,
        overrides: [...(s.overrides ?? []), { uri, tarball: true }],
      }));
    }
    spec = { ...spec, stages, recipe: effectiveRecipe(spec, o.build, env) };
    if (!spec.stages.length) {
      await cleanup();
      return undefined;
    }
    const pushPath = env[ENV_PUSH_DOCKERCFG_PATH];
    const registry = await outputRegistry(o.build, {
      ...(pushPath ? { pushAuth: await readPushSecret(pushPath) } : {}),
      tlsVerify: spec.publish_oscontainer?.buildstrategy_tls_verify,
      ...(o.imageStreamRepository ? { imageStreamRepository: o.imageStreamRepository } : {}),
      signal: o.signal,
    });
    spec = withOutputRegistry(spec, registry);
    if (registry) o.log(`gangplank: the output image goes to ${registry.url}`);
    const specPath = join(scratch, "jobspec.yaml");
    await writeFile(specPath, jobSpecToYaml(spec), { mode: 0o600, flag: "wx" });
    return {
      spec,
      origin,
      specPath,
      workDir: o.srvDir,
      [Symbol.asyncDispose]: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function describeOrigin(o: JobSpecOrigin): string {
  switch (o.kind) {
    case "payload":
    case "srv":
      return o.path;
    case "repo":
      return `${o.url}${o.ref ? ` (ref ${o.ref})` : ""}: ${o.file}`;
    case "none":
      return "nowhere (implied stages only)";
  }
}
