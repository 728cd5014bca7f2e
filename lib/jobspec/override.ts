/**
 * Stage overrides (§3.9): where a fetched RPM or tarball goes under a base directory.
 *
 * @module
 */
import { join } from "node:path";
import { OverrideError } from "./errors.ts";
import type { Override } from "./types.ts";

/** Last path segment of a URI (query and fragment removed). */
function uriBaseName(uri: string): string {
  const rest = uri.replace(/^[a-z]+:\/\//i, "").replace(/[?#].*$/, "");
  const parts = rest.split("/").filter((p) => p !== "");
  return parts[parts.length - 1] ?? "";
}

/**
 * Where an override is written below `base`: an RPM to `<base>/overrides/rpm/<basename(uri)>`;
 * a tarball to `<base>/overrides` (type absent or `all`), `<base>/overrides/rpm` (`rpms`,
 * `rpm`) or `<base>/overrides/rootfs` (`rootfs`).
 *
 * @throws {OverrideError} when it is neither rpm nor tarball, the type is unknown, or the RPM
 *   file name is unusable.
 * @example overrideWritePath({ uri: "file://x.rpm", rpm: true }, "test") // "test/overrides/rpm/x.rpm"
 */
export function overrideWritePath(o: Override, base: string): string {
  if (o.rpm) {
    const name = uriBaseName(o.uri);
    if (name === "" || name === "." || name === ".." || name.includes("\\")) {
      throw new OverrideError(`cannot derive an RPM file name from ${o.uri}`, o.uri);
    }
    return join(base, "overrides", "rpm", name);
  }
  if (o.tarball) {
    switch (o.tarball_type ?? "all") {
      case "all":
        return join(base, "overrides");
      case "rpms":
      case "rpm":
        return join(base, "overrides", "rpm");
      case "rootfs":
        return join(base, "overrides", "rootfs");
      default:
        throw new OverrideError(`unknown tarball_type ${o.tarball_type}`, o.uri);
    }
  }
  throw new OverrideError("override must set rpm or tarball", o.uri);
}
