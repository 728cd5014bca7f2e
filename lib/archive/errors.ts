/**
 * Errors raised by the archive helpers.
 *
 * @module
 */
import { GangplankError } from "../errors/mod.ts";

/**
 * An archive entry that would write outside the extraction root, through a symlink, or a node
 * type that is never extracted (devices, fifos). The whole extraction is refused: nothing of
 * the archive is left in the root.
 */
export class UnsafeArchiveError extends GangplankError {
  constructor(
    /** The entry's name as stored in the archive. */
    readonly entry: string,
    /** Why it was refused, e.g. `absolute path`, `symlink target outside the root`. */
    readonly reason: string,
  ) {
    super(`unsafe archive entry ${JSON.stringify(entry)}: ${reason}`);
  }
}

/** Creating or reading an archive failed for a reason other than an unsafe entry. */
export class ArchiveError extends GangplankError {
  constructor(
    /** The archive (a path, or `<stream>`). */
    readonly archive: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${archive}: ${message}`, options);
  }
}

/**
 * An archive larger than allowed (a "zip bomb": a small gzip that expands to gigabytes, or
 * millions of entries). Refused while reading, before the limit is crossed: nothing of the
 * archive is left in the root.
 */
export class ArchiveTooLargeError extends GangplankError {
  constructor(
    /** The archive (a path, or `<stream>`). */
    readonly archive: string,
    detail: string,
    /** The option that sets the limit crossed. */
    readonly limit: "maxBytes" | "maxEntries",
  ) {
    super(`${archive}: refusing to extract: ${detail}`);
  }
}
