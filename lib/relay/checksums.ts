/**
 * S3's additional checksums: CRC32, CRC32C, CRC64NVME, SHA-1 and SHA-256 of an object's bytes,
 * carried base64-encoded (big-endian for the CRCs) in `x-amz-checksum-<algorithm>` headers or
 * aws-chunked trailers. Incremental; CRC32 uses zlib's native code, CRC32C and CRC64NVME small
 * table-driven implementations (the relay computes them only when a client asks).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import * as zlib from "node:zlib";
import { S3Error } from "./s3_error.ts";

/** The algorithms S3 names (lower-case, as in the header names). */
export const CHECKSUM_ALGORITHMS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const;
/** One of {@link CHECKSUM_ALGORITHMS}. */
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number];

/** Parses an algorithm name as clients send it (`CRC32`, `crc64nvme`, ...). */
export function checksumAlgorithm(name: string): ChecksumAlgorithm | undefined {
  const n = name.trim().toLowerCase();
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(n)
    ? n as ChecksumAlgorithm
    : undefined;
}

/** Digest length in bytes. */
export function checksumBytes(alg: ChecksumAlgorithm): number {
  return { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 }[alg];
}

/** True if `value` is base64 of a digest of the algorithm's length. */
export function isChecksumValue(alg: ChecksumAlgorithm, value: string): boolean {
  const b = Buffer.from(value, "base64");
  return b.length === checksumBytes(alg) && b.toString("base64") === value.trim();
}

/** An incremental checksum. */
export interface Checksummer {
  update(chunk: Uint8Array): void;
  /** The digest, base64 (raw digest bytes, big-endian for CRCs). */
  digest(): string;
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

// CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5, held as two 32-bit halves.
const CRC64_HI = new Uint32Array(256);
const CRC64_LO = new Uint32Array(256);
(() => {
  const PH = 0x9a6c9329, PL = 0xac4bc9b5;
  for (let i = 0; i < 256; i++) {
    let hi = 0, lo = i;
    for (let k = 0; k < 8; k++) {
      const bit = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (bit) {
        hi = (hi ^ PH) >>> 0;
        lo = (lo ^ PL) >>> 0;
      }
    }
    CRC64_HI[i] = hi;
    CRC64_LO[i] = lo;
  }
})();

function beBytes(...words: number[]): string {
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32BE(w >>> 0, i * 4));
  return b.toString("base64");
}

/** A fresh incremental checksum of the given algorithm. */
export function checksummer(alg: ChecksumAlgorithm): Checksummer {
  switch (alg) {
    case "crc32": {
      let c = 0;
      return {
        update: (chunk) => (c = zlib.crc32(chunk, c)),
        digest: () => beBytes(c),
      };
    }
    case "crc32c": {
      let c = 0xffffffff;
      return {
        update: (chunk) => {
          for (let i = 0; i < chunk.length; i++) {
            c = CRC32C_TABLE[(c ^ chunk[i]) & 0xff] ^ (c >>> 8);
          }
        },
        digest: () => beBytes(~c),
      };
    }
    case "crc64nvme": {
      let hi = 0xffffffff, lo = 0xffffffff;
      return {
        update: (chunk) => {
          for (let i = 0; i < chunk.length; i++) {
            const idx = (lo ^ chunk[i]) & 0xff;
            lo = ((lo >>> 8) | (hi << 24)) ^ CRC64_LO[idx];
            hi = (hi >>> 8) ^ CRC64_HI[idx];
          }
        },
        digest: () => beBytes(~hi, ~lo),
      };
    }
    case "sha1":
    case "sha256": {
      const h = createHash(alg);
      return { update: (chunk) => h.update(chunk), digest: () => h.digest("base64") };
    }
  }
}

/** The checksum of a whole buffer (tests, small bodies). */
export function checksumOf(alg: ChecksumAlgorithm, data: Uint8Array): string {
  const c = checksummer(alg);
  c.update(data);
  return c.digest();
}

/**
 * The checksum of a multipart object made of parts with these checksums (S3's "composite"
 * form): the algorithm over the parts' raw digests, then `-<parts>`.
 */
export function compositeChecksum(alg: ChecksumAlgorithm, partValues: string[]): string {
  const c = checksummer(alg);
  for (const v of partValues) c.update(Buffer.from(v, "base64"));
  return `${c.digest()}-${partValues.length}`;
}

/** What a request asks of the relay's checksum: the algorithm, and where the expected value is. */
export interface ChecksumRequest {
  algorithm: ChecksumAlgorithm;
  /** The value from an `x-amz-checksum-<alg>` header. */
  expected?: string;
  /** The value comes in an aws-chunked trailer of this name (`x-amz-trailer`). */
  trailer?: string;
}

function invalid(message: string): S3Error {
  return new S3Error(400, "InvalidRequest", message);
}

/**
 * Reads the checksum headers of an upload: at most one `x-amz-checksum-<alg>` value, or an
 * `x-amz-trailer` naming one, and `x-amz-sdk-checksum-algorithm`, which must agree. Refuses
 * (400) unknown algorithms, several checksums at once, and malformed values (BadDigest).
 */
export function checksumRequest(h: IncomingHttpHeaders): ChecksumRequest | undefined {
  const given = CHECKSUM_ALGORITHMS.filter((a) => h[`x-amz-checksum-${a}`] !== undefined);
  if (given.length > 1) {
    throw invalid(
      "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
    );
  }
  const rawTrailer = String(h["x-amz-trailer"] ?? "").trim().toLowerCase();
  let trailerAlg: ChecksumAlgorithm | undefined;
  if (rawTrailer !== "") {
    trailerAlg = rawTrailer.startsWith("x-amz-checksum-")
      ? checksumAlgorithm(rawTrailer.slice("x-amz-checksum-".length))
      : undefined;
    if (!trailerAlg) {
      throw invalid(`The value specified in the x-amz-trailer header is not supported`);
    }
    if (given.length > 0) {
      throw invalid(
        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
      );
    }
  }
  const rawSdk = h["x-amz-sdk-checksum-algorithm"];
  let sdkAlg: ChecksumAlgorithm | undefined;
  if (rawSdk !== undefined) {
    sdkAlg = checksumAlgorithm(String(rawSdk));
    if (!sdkAlg) throw invalid("Value for x-amz-sdk-checksum-algorithm header is invalid.");
  }
  const algorithm = given[0] ?? trailerAlg ?? sdkAlg;
  if (!algorithm) return undefined;
  if (sdkAlg && sdkAlg !== algorithm) {
    throw invalid(
      `x-amz-sdk-checksum-algorithm ${sdkAlg.toUpperCase()} does not match the checksum sent ` +
        `(${algorithm.toUpperCase()})`,
    );
  }
  if (given.length === 1) {
    const expected = String(h[`x-amz-checksum-${algorithm}`]).trim();
    if (!isChecksumValue(algorithm, expected)) throw badDigest(algorithm);
    return { algorithm, expected };
  }
  return { algorithm, trailer: trailerAlg ? rawTrailer : undefined };
}

/** The error for a checksum that does not match the bytes received. */
export function badDigest(alg: ChecksumAlgorithm): S3Error {
  return new S3Error(
    400,
    "BadDigest",
    `The ${alg.toUpperCase()} you specified did not match the calculated checksum.`,
  );
}

/** The XML element of a checksum: `ChecksumCRC32`, `ChecksumCRC64NVME`, `ChecksumSHA256`. */
export function checksumElement(alg: string): string {
  return `Checksum${alg.toUpperCase()}`;
}

/** The checksum a multipart upload is created with. */
export interface UploadChecksum {
  checksumAlgorithm: ChecksumAlgorithm;
  checksumType: "COMPOSITE" | "FULL_OBJECT";
}

/**
 * The checksum a CreateMultipartUpload asks for (`x-amz-checksum-algorithm`,
 * `x-amz-checksum-type`), or `undefined` for none. Refuses (400) a type without an algorithm,
 * an unknown algorithm or type, and a type the algorithm does not support.
 */
export function uploadChecksum(h: IncomingHttpHeaders): UploadChecksum | undefined {
  const raw = h["x-amz-checksum-algorithm"];
  const rawType = h["x-amz-checksum-type"];
  if (raw === undefined) {
    if (rawType !== undefined) {
      throw invalid("x-amz-checksum-type needs x-amz-checksum-algorithm");
    }
    return undefined;
  }
  const alg = checksumAlgorithm(String(raw));
  if (!alg) throw invalid("Checksum algorithm provided is unsupported.");
  const type = rawType === undefined
    ? (alg === "crc64nvme" ? "FULL_OBJECT" : "COMPOSITE")
    : String(rawType).toUpperCase();
  if (type !== "COMPOSITE" && type !== "FULL_OBJECT") {
    throw invalid("Value for x-amz-checksum-type header is invalid.");
  }
  if (type === "COMPOSITE" && alg === "crc64nvme") {
    throw invalid("CRC64NVME supports only the FULL_OBJECT checksum type.");
  }
  if (type === "FULL_OBJECT" && (alg === "sha1" || alg === "sha256")) {
    throw invalid(`${alg.toUpperCase()} supports only the COMPOSITE checksum type.`);
  }
  return { checksumAlgorithm: alg, checksumType: type };
}

/**
 * A part's checksum as kept: `undefined` when the upload has none (`alg`); one of another
 * algorithm than the upload's is refused (400).
 */
export function partChecksum(
  alg: ChecksumAlgorithm | undefined,
  got: { algorithm: ChecksumAlgorithm; value: string } | undefined,
): string | undefined {
  if (!got) return undefined;
  if (alg && got.algorithm !== alg) {
    throw invalid(
      `Checksum Type mismatch occurred, expected checksum Type: ${alg}, ` +
        `actual checksum Type: ${got.algorithm}`,
    );
  }
  return alg ? got.value : undefined;
}

/** The `x-amz-checksum-<alg>` header answering an uploaded part, when the upload has a checksum. */
export function partChecksumHeader(
  alg: ChecksumAlgorithm | undefined,
  value: string | undefined,
): Record<string, string> {
  return alg && value ? { [`x-amz-checksum-${alg}`]: value } : {};
}
