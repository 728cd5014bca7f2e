/**
 * Streaming tar.gz archives (npm:tar-stream + node:zlib, no `tar` binary): packing cache
 * tarballs and extracting them safely, only below a fixed root. Archives round-trip with GNU
 * tar both ways. Zip archives (`zip.ts`: `extractZip`, through the same checks) are imported
 * from their own module, not from here, so that yauzl stays out of what only extracts tarballs.
 *
 * @module
 */
export { type PackOptions, type PackResult, packTarGz } from "./pack.ts";
export {
  type ArchiveSource,
  DEFAULT_FREE_SPACE_SHARE,
  DEFAULT_MAX_ENTRIES,
  type ExtractOptions,
  type ExtractResult,
  extractTarGz,
  statfsFreeBytes,
} from "./extract.ts";
export { ArchiveError, ArchiveTooLargeError, UnsafeArchiveError } from "./errors.ts";
