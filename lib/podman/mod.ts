/**
 * Podman: a small libpod
 * REST client (v4 API) over a local unix socket or an SSH connection.
 *
 * @module
 */
export * from "./client.ts";
export * from "./run.ts";
export * from "./spec.ts";
export * from "./stock.ts";
