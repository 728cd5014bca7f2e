/**
 * The ETag of a file the relay did not write (or that changed behind its back): derived from
 * what identifies this version of the file — device, inode, size and mtime — so it stays the
 * same while they do and changes when any of them does. It is 32 hex digits and `-1`, the
 * form of a multipart ETag, so that clients do not take it for the MD5 of the content.
 *
 * A 128-bit mix in plain JavaScript rather than MD5: a listing computes one per key, and
 * node:crypto's `createHash` costs ~1 µs a call in Deno (each hash is a stream object), a
 * millisecond of every 1,000-key page; this takes ~0.2 µs. Not a security boundary: it only has
 * to tell versions of a file apart.
 *
 * @module
 */

/** The last avalanche of a 32-bit word (MurmurHash3's finaliser constants). */
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Eight hex digits of a 32-bit word. */
function hex8(x: number): string {
  return HEX[x >>> 24] + HEX[(x >>> 16) & 255] + HEX[(x >>> 8) & 255] + HEX[x & 255];
}

/** The pseudo ETag (without quotes) of a file version. */
export function pseudoEtag(dev: number, ino: number, size: number, mtimeMs: number): string {
  // The numbers as 32-bit words: integers up to 2^53 exactly, mtime's fraction in nanoseconds.
  const ms = Math.floor(mtimeMs);
  const words = [
    dev >>> 0,
    Math.floor(dev / 2 ** 32),
    ino >>> 0,
    Math.floor(ino / 2 ** 32),
    size >>> 0,
    Math.floor(size / 2 ** 32),
    ms >>> 0,
    Math.floor(ms / 2 ** 32),
    Math.round((mtimeMs - ms) * 1e6),
  ];
  // Four lanes, each seeded differently, each word mixed into all of them in turn.
  let a = 0x9e3779b1, b = 0x85ebca77, c = 0xc2b2ae3d, d = 0x27d4eb2f;
  for (const w of words) {
    a = fmix(a ^ w);
    b = fmix(b ^ w ^ a);
    c = fmix(c ^ w ^ b);
    d = fmix(d ^ w ^ c);
  }
  a = fmix(a ^ d);
  return `${hex8(a)}${hex8(b)}${hex8(c)}${hex8(d)}-1`;
}
