/**
 * cosa's on-disk build model: `builds.json` (index of builds, newest first), per-build
 * `meta.json` (artifacts and metadata, with the delayed merge of `meta.<x>.json` fragments),
 * the list of "known" build metadata files, schema validation, and architecture names.
 *
 * @example
 * const latest = await readLatestBuild("/srv/builds", normalizeArch("amd64"));
 * for (const a of artifactsOf(latest?.meta)) console.log(a.name, a.path, a.sha256);
 *
 * @module
 */

export {
  addBuild,
  type BuildEntry,
  BUILDS_SCHEMA_VERSION,
  type BuildsJSON,
  compareBuildIds,
  CosaFormatError,
  emptyBuilds,
  latestBuild,
  mergeBuilds,
  normalizeArch,
  parseBuilds,
  readBuilds,
  UnsafeNameError,
  writeBuilds,
} from "./builds.ts";
export {
  type ArtifactInfo,
  artifactOf,
  artifactsOf,
  type BuildInfo,
  type CosaArtifact,
  type CosaMeta,
  deepMerge,
  isArtifactFile,
  isKnownBuildMeta,
  isMetaJSON,
  mergeMetaFragments,
  parseMeta,
  readBuildMeta,
  readLatestBuild,
} from "./meta.ts";
export { META_SCHEMA, type MetaProblem, type MetaValidation, validateMeta } from "./schema.ts";
