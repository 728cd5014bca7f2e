/**
 * gangplank on Deno: the public library surface. Every concern lives in its own `lib/<area>/`
 * folder; this module re-exports each folder's `mod.ts`.
 *
 * - JobSpec model, parsing, templates, shorthands, generation: `lib/jobspec`
 * - Stage plan (groups, waits, inputs/outputs): `lib/plan`
 * - Command-line parsing and dry-run rendering shared by the scripts: `lib/cli`
 * - The relay (S3 server over a directory) and the `ArtifactStore` client: `lib/relay`
 * - Streaming, tar-slip-safe tar.gz: `lib/archive`; transfer progress: `lib/progress`
 * - cosa's builds.json / meta.json: `lib/cosa`; the worker payload: `lib/workspec`
 * - The worker (`gangway`): `lib/worker`; the coordinator: `lib/coordinator`; logs: `lib/log`
 * - Executors (local, podman, Kubernetes): `lib/executors`, with `lib/podman`, `lib/ssh`,
 *   `lib/kube`, `lib/podspec`, `lib/secrets`
 * - Typed errors and exit codes: `lib/errors`
 *
 * @example
 * ```ts
 * import { loadJobSpec, planJob } from "./mod.ts";
 * const { spec } = await loadJobSpec("examples/demo.jobspec.yaml", {});
 * for (const g of planJob(spec).groups) console.log(g.order, g.stages.map((s) => s.id));
 * ```
 *
 * @module
 */
export * from "./lib/errors/mod.ts";
export * from "./lib/executors/mod.ts";
export * from "./lib/jobspec/mod.ts";
export * from "./lib/plan/mod.ts";
export * from "./lib/archive/mod.ts";
export * from "./lib/progress/mod.ts";
export * from "./lib/relay/mod.ts";
export * from "./lib/cosa/mod.ts";
export * from "./lib/names/mod.ts";
export * from "./lib/workspec/mod.ts";
export * from "./lib/worker/mod.ts";
export * from "./lib/coordinator/mod.ts";
export * from "./lib/log/mod.ts";
export * from "./lib/podman/mod.ts";
export * from "./lib/kube/mod.ts";
export * from "./lib/podspec/mod.ts";
export * from "./lib/secrets/mod.ts";
export * from "./lib/ssh/mod.ts";
export * from "./lib/cli/mod.ts";
