/**
 * The relay's S3 error: thrown anywhere below a handler, turned by the server into S3's XML
 * error document with its status and headers.
 *
 * @module
 */

import { GangplankError } from "../errors/mod.ts";

/** An S3-level failure: HTTP status plus S3 error code. */
export class S3Error extends GangplankError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
