/**
 * The artifact store as the coordinator and the worker see it: narrow views of the S3 client
 * (`ArtifactStoreLike`, faked in unit tests) and compare-and-swap merges of shared JSON
 * documents (`casMergeJSON`).
 *
 * @module
 */

export * from "./views.ts";
export * from "./cas.ts";
