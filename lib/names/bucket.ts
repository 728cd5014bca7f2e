/**
 * S3's bucket naming rules (general purpose buckets), applied by the relay to every request
 * and to `CreateBucket`: 3-63 characters of lowercase letters, digits, `.` and `-`, starting
 * and ending with a letter or digit, no `..`, `.-` or `-.`, not an IPv4 address, and none of
 * the prefixes and suffixes S3 reserves.
 *
 * @module
 */

const SHAPE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const RESERVED_PREFIXES = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/**
 * Why `name` is not a valid S3 bucket name, or undefined when it is.
 *
 * @example
 * ```ts
 * bucketNameProblem("builder"); // undefined
 * bucketNameProblem("UPPER_bad"); // "only lowercase letters, digits, '.' and '-' are allowed"
 * ```
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return "must be 3 to 63 characters long";
  if (!/^[a-z0-9.-]+$/.test(name)) return "only lowercase letters, digits, '.' and '-' are allowed";
  if (!SHAPE.test(name)) return "must start and end with a letter or digit";
  if (/\.\.|\.-|-\./.test(name)) return "must not contain '..', '.-' or '-.'";
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) return "must not look like an IP address";
  if (RESERVED_PREFIXES.some((p) => name.startsWith(p))) return "uses a prefix S3 reserves";
  if (RESERVED_SUFFIXES.some((s) => name.endsWith(s))) return "uses a suffix S3 reserves";
  return undefined;
}

/** True if `name` follows S3's bucket naming rules (see {@link bucketNameProblem}). */
export function isValidBucketName(name: string): boolean {
  return bucketNameProblem(name) === undefined;
}
