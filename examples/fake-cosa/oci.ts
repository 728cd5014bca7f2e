/**
 * STAND-IN helper of `cosa upload-oscontainer`: writes a real (tiny) OCI image layout holding
 * the latest build's ostree artifact as its one layer, which `skopeo copy oci:...` can push to
 * any registry. Imports only `node:` built-ins (see cosa.ts).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** One regular file as an uncompressed POSIX (ustar) tar stream. */
export function tarOneFile(name: string, data: Uint8Array, mtime: number): Uint8Array {
  if (name.length > 99) throw new Error(`tar name too long: ${name}`);
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(new TextEncoder().encode(s), off);
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, "0") + "\0";
  put(0, name);
  put(100, oct(0o644, 8));
  put(108, oct(0, 8));
  put(116, oct(0, 8));
  put(124, oct(data.length, 12));
  put(136, oct(mtime, 12));
  put(148, "        ");
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  const pad = (512 - (data.length % 512)) % 512;
  const out = new Uint8Array(512 + data.length + pad + 1024);
  out.set(h, 0);
  out.set(data, 512);
  return out;
}

/**
 * Writes an OCI image layout at `dir` (replaced) whose one image, tagged `tag`, has one layer
 * holding `files`' single entry; returns the manifest digest.
 */
export function writeOciLayout(
  dir: string,
  tag: string,
  file: { name: string; data: Uint8Array },
  labels: Record<string, string>,
  arch: string,
): string {
  rmSync(dir, { recursive: true, force: true });
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const blob = (v: Uint8Array | string) => {
    const data = typeof v === "string" ? new TextEncoder().encode(v) : v;
    const d = sha256(data);
    writeFileSync(join(blobs, d), data);
    return { digest: `sha256:${d}`, size: data.length };
  };
  const layer = blob(tarOneFile(file.name, file.data, 0));
  const goArch = arch === "x86_64" ? "amd64" : arch === "aarch64" ? "arm64" : arch;
  const config = blob(JSON.stringify({
    architecture: goArch,
    os: "linux",
    config: { Labels: labels },
    rootfs: { type: "layers", diff_ids: [layer.digest] },
  }));
  const manifest = blob(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
  }));
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": tag },
      }],
    }),
  );
  return manifest.digest;
}
