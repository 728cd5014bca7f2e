/**
 * The backend registry: every backend `submit` knows, by name. Each entry declares its flags
 * and loads its runtime lazily (a local dry run loads neither podman nor Kubernetes code).
 * A new backend is one file in this folder and one line here.
 *
 * @module
 */
import type { Backend } from "../submit_options.ts";
import { kubeBackend } from "./kube.ts";
import { localBackend } from "./local.ts";
import { podmanBackend } from "./podman.ts";
import type { BackendDef } from "./types.ts";

export type * from "./types.ts";
export { kubeOptions } from "./kube.ts";
export { podmanOptions } from "./podman.ts";
export { CREDENTIAL_VARS, PROXY_VARS, workerBaseEnv } from "./local_env.ts";

/** Every backend, by name. */
export const BACKENDS: Readonly<Record<Backend, BackendDef>> = {
  local: localBackend,
  podman: podmanBackend,
  kube: kubeBackend,
};
