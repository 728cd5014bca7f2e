/**
 * Decompression bombs for the archive tests, built in a fraction of a second: a tar.gz made of
 * gzip members (one tar header, then the same compressed 64 MiB of zeros repeated), so that a
 * file of ~2 MB expands to gigabytes.
 */
import { gzipSync } from "node:zlib";

const enc = new TextEncoder();
const CHUNK = 64 * 2 ** 20;
let zeros: Uint8Array | undefined;

/** A ustar header for a regular file `name` of `size` bytes. */
export function ustarHeader(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(enc.encode(s), off);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  if (size <= 0o77777777777) put(124, size.toString(8).padStart(11, "0") + "\0");
  else {
    // GNU base-256: 0x80, then the size big-endian in the field's other 11 bytes.
    h[124] = 0x80;
    for (let i = 135, v = size; i > 124; i--, v = Math.floor(v / 256)) h[i] = v % 256;
  }
  put(136, "00000000000\0");
  put(148, "        ");
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/**
 * A gzip stream whose tar holds `entries` (name → size in multiples of 64 MiB, all zeros), then
 * `padding` × 64 MiB of zeros after the archive's end marker (which tar readers skip).
 */
export function bomb(entries: [string, number][], padding = 0): Uint8Array {
  zeros ??= gzipSync(new Uint8Array(CHUNK), { level: 9 });
  const parts: Uint8Array[] = [];
  for (const [name, chunks] of entries) {
    parts.push(gzipSync(ustarHeader(name, chunks * CHUNK)));
    for (let i = 0; i < chunks; i++) parts.push(zeros);
  }
  parts.push(gzipSync(new Uint8Array(1024))); // end of archive
  for (let i = 0; i < padding; i++) parts.push(zeros);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** 64 MiB, the unit of {@link bomb}. */
export const BOMB_CHUNK = CHUNK;
