/**
 * Which cluster a client talks to: a kubeconfig file, client-node's default resolution, or
 * the pod's service account, loaded by npm:@kubernetes/client-node.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import type { RetryPolicy } from "./retry.ts";

/** Where the API server and credentials come from. */
export type KubeTarget =
  /** A kubeconfig file (its current context, or `context`). */
  | { kind: "kubeconfig"; path: string; context?: string }
  /** client-node's default resolution (`$KUBECONFIG`, `~/.kube/config`, in-cluster). */
  | { kind: "default"; context?: string }
  /** The pod's service account (`/var/run/secrets/kubernetes.io/serviceaccount`). */
  | { kind: "in-cluster"; pathPrefix?: string };

/** Options of {@link KubeClient.connect}. */
export interface KubeClientOptions {
  target: KubeTarget;
  /** Namespace to work in; default: the context's namespace, else `default`. */
  namespace?: string;
  retry?: RetryPolicy;
  /** Receives retry notices and other diagnostics (never secret values). */
  log?: (msg: string) => void;
}

/** Loads a KubeConfig for a target (client-node does the file / env / token reading). */
export function loadKubeConfig(target: KubeTarget): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  switch (target.kind) {
    case "kubeconfig":
      kc.loadFromFile(target.path);
      if (target.context) kc.setCurrentContext(target.context);
      break;
    case "default":
      kc.loadFromDefault();
      if (target.context) kc.setCurrentContext(target.context);
      break;
    case "in-cluster":
      kc.loadFromCluster(target.pathPrefix);
      break;
  }
  return kc;
}

/** Per-call abort support: client-node takes an abort signal through a request middleware. */
