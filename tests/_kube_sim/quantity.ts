/**
 * Kubernetes resource quantities.
 *
 * @module
 */

/** Converts a Kubernetes quantity (`2`, `500m`, `4Gi`, `1k`) to a number. */
export function parseQuantity(q: string | number): number {
  if (typeof q === "number") return q;
  const m = String(q).match(/^([0-9.]+)([a-zA-Z]*)$/);
  if (!m) return NaN;
  const n = Number(m[1]);
  const mult: Record<string, number> = {
    "": 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
  };
  return m[2] in mult ? n * mult[m[2]] : NaN;
}
