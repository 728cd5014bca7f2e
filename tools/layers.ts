/**
 * The layers of `lib/`, bottom first: a folder may import only from folders in lower layers
 * (never up, never sideways within its layer). ARCHITECTURE.md shows the same table, and
 * `tests/architecture_test.ts` fails when the two differ or an import breaks the rule.
 *
 * A new folder under lib/ goes into one line here (and the table in ARCHITECTURE.md).
 *
 * @module
 */

/** Layer number → the lib/ folders in it, with what the layer is for. */
export const LAYERS: readonly { folders: readonly string[]; role: string }[] = [
  { folders: ["errors", "toolkit", "names"], role: "typed errors; primitives; name rules" },
  {
    folders: ["jobspec", "cosa", "archive", "log", "progress", "secrets", "ssh"],
    role: "formats and single-purpose building blocks",
  },
  { folders: ["plan", "workspec", "relay"], role: "the plan, the worker contract, the relay" },
  { folders: ["podman", "podspec", "store"], role: "container API client, pod specs, store views" },
  { folders: ["kube"], role: "Kubernetes client and pod runner" },
  { folders: ["executors"], role: "the Executor seam and its backends" },
  { folders: ["coordinator", "worker"], role: "the two sides of the contract" },
  {
    folders: ["cli", "buildconfig"],
    role: "command-line parsing and the backend registry; OpenShift BuildConfig mode",
  },
];

/** The layer of a lib/ folder, or `undefined` for a folder not in {@link LAYERS}. */
export function layerOf(folder: string): number | undefined {
  const i = LAYERS.findIndex((l) => l.folders.includes(folder));
  return i < 0 ? undefined : i;
}
