/**
 * The views of the artifact store (lib/relay's `ArtifactStore`) its users take, and the types
 * of its conditional writes.
 *
 * @module
 */

import type { ArtifactStore } from "../relay/client/mod.ts";

/** Expected content of a fetched object: verified after download. */
export interface FetchExpect {
  /** Expected sha256 (hex). */
  sha256: string;
  /** Expected size in bytes. */
  size?: number;
  /** Artifact name, for messages. */
  name?: string;
}

/** A JSON object with the version (ETag) it was read at, for a compare-and-swap write. */
export interface VersionedJSON {
  /** The parsed document. */
  value: unknown;
  /** Its ETag, for a conditional write. */
  etag: string;
}

/**
 * The precondition of a compare-and-swap write: the object is still at `etag`
 * (`If-Match`), or does not exist yet (`absent`, `If-None-Match: *`).
 */
export type WriteCondition = { etag: string } | { absent: true };

/**
 * What the worker needs from the object store: a narrow view of lib/relay's `ArtifactStore`
 * (the way `KubeOps` narrows the Kubernetes client), so unit tests pass an in-memory fake and
 * the real client fits without an adapter.
 */
export type ArtifactStoreLike = Pick<
  ArtifactStore,
  | "ensureBucket"
  | "fetchFile"
  | "putFile"
  | "putJSON"
  | "getJSON"
  | "getJSONVersioned"
  | "putJSONIf"
>;
