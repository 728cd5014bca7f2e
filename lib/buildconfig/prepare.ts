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
import type { RemoteFile } from "../workspec/mod.ts";
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

/** Where a worker finds the payload (relative to its srv dir), as in the build pod. */
export const WORKER_PAYLOAD_DIR = "source";
/** The payload tarball's object in its relay bucket (see {@link PreparedBuild.workerFiles}). */
export const PAYLOAD_OBJECT = "source.tar.gz";

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
  /**
   * The payload for every stage's worker (extracted into its `source/`): one tarball in a relay
   * bucket of its own, `<srv>/gangplank-payload-<random>/`, outside the job bucket (never in
   * `builds/`) and removed on dispose. Empty without a payload.
   */
  workerFiles: RemoteFile[];
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
  let relayDir: string | undefined;
  const cleanup = async () => {
    for (const d of [scratch, relayDir]) {
      if (d) await rm(d, { recursive: true, force: true }).catch(() => {});
    }
  };
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
    const stages: Stage[] = [...spec.stages, ...implied];
    const workerFiles: RemoteFile[] = [];
    if (payload && stages.length) {
      // The payload goes to every worker through the relay (which serves the srv dir: a
      // top-level directory is a bucket), as Gangplank's workers got its `source` bucket.
      const bucket = `gangplank-payload-${crypto.randomUUID().slice(0, 8)}`;
      const dir = join(o.srvDir, bucket);
      await mkdir(dir, { mode: 0o700 });
      relayDir = dir;
      await packTarGz({
        root: payload.dir,
        paths: ["."],
        entryPrefix: `srv/${WORKER_PAYLOAD_DIR}`,
        dest: join(dir, PAYLOAD_OBJECT),
        signal: o.signal,
      });
      workerFiles.push({ bucket, object: PAYLOAD_OBJECT, compressed: true });
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
      workerFiles,
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
