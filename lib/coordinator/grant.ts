/**
 * What one stage's credential may do on the relay, derived from the plan and the stage's
 * inputs (pure). The coordinator mints a credential with this grant when the stage starts and
 * revokes it when the stage ends; the run's root key never leaves the coordinator.
 *
 * A stage may:
 * - read the job's objects (the job bucket below the key prefix) and its input files;
 * - replace and add files of the builds it received (`<id>/<arch>/...` of each build whose
 *   meta.json is one of its inputs: the latest build, and `copy-build`);
 * - create new files, never replace or delete existing ones, in any `<id>/<arch>/` dir of its
 *   arch (a build the stage makes has an id nobody knows before it runs);
 * - merge `builds.json`, only through conditional writes;
 * - write the caches and `return_files` its stage declares (`cache/...`).
 *
 * @module
 */

import type { AccessGrant } from "../relay/server_access.ts";
import { srvRelative } from "../workspec/workspec.ts";
import type { InputFile } from "./inputs.ts";

/** What {@link stageGrant} needs to know. */
export interface StageGrantInput {
  bucket: string;
  /** Normalised key prefix ("" for none). */
  keyPrefix: string;
  arch: string;
  /** The files the stage's worker fetches. */
  inputs: ReadonlyArray<Pick<InputFile, "bucket" | "object" | "path">>;
  /** What the stage's JobSpec entry returns besides builds. */
  returns: { cache: boolean; cacheRepo: boolean; files: ReadonlyArray<string> };
}

/** Build ids whose `meta.json` is among the inputs (the builds the stage received). */
export function receivedBuilds(
  inputs: StageGrantInput["inputs"],
  arch: string,
): string[] {
  const ids = new Set<string>();
  for (const f of inputs) {
    const m = /^builds\/([^/]+)\/([^/]+)\/meta\.json$/.exec(f.path);
    if (m && m[2] === arch) ids.add(m[1]);
  }
  return [...ids].sort();
}

/**
 * The relay grant of one stage (see the module doc).
 *
 * @example
 * ```ts
 * using cred = relay.grant(stageGrant({
 *   bucket: "builder", keyPrefix: "", arch: "x86_64", inputs: stageInputs.files,
 *   returns: { cache: true, cacheRepo: false, files: [] },
 * }));
 * ```
 */
export function stageGrant(i: StageGrantInput): AccessGrant {
  const kp = i.keyPrefix ? `${i.keyPrefix}/` : "";
  const read = [{ bucket: i.bucket, prefix: kp }];
  for (const f of i.inputs) {
    if (f.bucket !== i.bucket || !f.object.startsWith(kp)) {
      read.push({ bucket: f.bucket, prefix: f.object });
    }
  }
  const write: AccessGrant["write"][number][] = [
    { bucket: i.bucket, prefix: `${kp}builds.json`, exact: true, conditional: true },
    { bucket: i.bucket, prefix: `${kp}*/${i.arch}/`, createOnly: true },
  ];
  for (const id of receivedBuilds(i.inputs, i.arch)) {
    write.push({ bucket: i.bucket, prefix: `${kp}${id}/${i.arch}/` });
  }
  if (i.returns.cache) {
    write.push({ bucket: i.bucket, prefix: `${kp}cache/cache.tar.gz`, exact: true });
  }
  if (i.returns.cacheRepo) {
    write.push({ bucket: i.bucket, prefix: `${kp}cache/repo.tar.gz`, exact: true });
  }
  for (const f of i.returns.files) {
    const rel = srvRelative(f);
    if (!rel) continue; // refused by the worker (and by the JobSpec's validation)
    write.push({ bucket: i.bucket, prefix: `${kp}cache/${rel}`, exact: true });
    write.push({ bucket: i.bucket, prefix: `${kp}cache/${rel}/` });
  }
  return { read, write };
}
