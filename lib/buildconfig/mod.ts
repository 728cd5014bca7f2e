/**
 * OpenShift custom-strategy BuildConfig mode (reference §9): the Build object in env `BUILD`,
 * the role decision of the worker entry, where the JobSpec comes from, the implied stages and
 * the build's output image.
 *
 * @module
 */
export * from "./build.ts";
export * from "./role.ts";
export * from "./jobspec_source.ts";
export * from "./output.ts";
export * from "./binary.ts";
export * from "./prepare.ts";
