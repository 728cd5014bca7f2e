/**
 * Run inside a pod of the Kubernetes test API server: loads the in-cluster config (service
 * account files + KUBERNETES_SERVICE_* env) with client-node and prints the pods it sees.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";

const kc = new k8s.KubeConfig();
kc.loadFromCluster();
const core = kc.makeApiClient(k8s.CoreV1Api);
const ns = await Deno.readTextFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
const pods = await core.listNamespacedPod({ namespace: ns });
console.log(`server=${kc.getCurrentCluster()?.server}`);
console.log(`pods=${pods.items.map((p) => p.metadata?.name).join(",")}`);
