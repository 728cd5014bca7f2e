/**
 * Podman: the worker image/command contract shared by container backends, and a small libpod
 * REST client (v4 API) over a local unix socket or an SSH connection.
 *
 * @module
 */
export * from "./worker_image.ts";
export * from "./client.ts";
export * from "./run.ts";
export * from "./spec.ts";
