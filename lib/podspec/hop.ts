/**
 * The hop pod (reference §7.2): runs the coordinator itself in a pod of a remote cluster.
 * Differences from Gangplank (§12.1.15, §12.2.1): the container command IS the coordinator, so
 * the pod's exit code is the coordinator's (no `|| { sleep 30; exit $?; }`); nothing lists
 * `/run/secrets`; the JobSpec travels in a Secret mounted as a 0600 file (a JobSpec may carry
 * inline registry credentials), never in env or argv.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { V1Pod, V1Secret } from "@kubernetes/client-node";
import { UsageError } from "../errors/mod.ts";
import { WORKER_DENO_PATH, WORKER_ENV } from "../workspec/worker_image.ts";
import { hopPodName, hopSecretName, runLabels } from "./names.ts";
import { DEADLINE_SLACK_SECONDS, podSecurityContext, securityContext } from "./worker.ts";

/** The coordinator command in the gangplank image (`deno task bundle` → `submit.js`). */
export const COORDINATOR_COMMAND: readonly string[] = [
  WORKER_DENO_PATH,
  "run",
  "-A",
  "--no-prompt",
  "/usr/lib/gangplank/submit.js",
];

/** Where the hop pod finds its JobSpec. */
export const HOP_JOBSPEC_DIR = "/run/gangplank/jobspec";
/** File name of the results token inside {@link HOP_JOBSPEC_DIR} (see lib/kube/hop_results). */
export const HOP_TOKEN_FILE = "results-token";
/** Env var naming the results token file in the hop pod. */
export const HOP_TOKEN_FILE_ENV = "GANGPLANK_HOP_TOKEN_FILE";
/** The hop coordinator's work dir (in the pod's `/srv` emptyDir). */
export const HOP_WORK_DIR = "/srv/gangplank-run";

/** File name of the JobSpec inside {@link HOP_JOBSPEC_DIR}. */
export const HOP_JOBSPEC_FILE = "jobspec.yaml";

/** Options of {@link hopPod}. */
export interface HopPodOptions {
  runId: string;
  image: string;
  /** Required: the coordinator in the pod creates worker pods with it. */
  serviceAccount: string;
  /** Arguments after `--spec <file>` (e.g. `--backend kube --image <image>`). */
  args: string[];
  /** Overall time the coordinator may take; `activeDeadlineSeconds` is longer. */
  timeoutSeconds: number;
  /** Coordinator command (default {@link COORDINATOR_COMMAND}). */
  command?: readonly string[];
  ocp3?: boolean;
  /** Pod `fsGroup`: a non-root coordinator image reads its 0600 JobSpec through it. */
  fsGroup?: number;
  /** Pod `runAsUser`. */
  runAsUser?: number;
  namespace?: string;
}

/** The hop pod. Throws {@link UsageError} when the image or service account is empty. */
export function hopPod(opts: HopPodOptions): V1Pod {
  if (!opts.image) throw new UsageError("hop pod: an image is required (--image)");
  if (!opts.serviceAccount) {
    throw new UsageError("hop pod: a service account is required (--serviceaccount)");
  }
  const sc = securityContext(opts.ocp3 ?? false);
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: hopPodName(opts.runId), labels: runLabels(opts.runId, "hop") },
    spec: {
      restartPolicy: "Never",
      serviceAccountName: opts.serviceAccount,
      automountServiceAccountToken: true,
      activeDeadlineSeconds: Math.max(1, Math.ceil(opts.timeoutSeconds)) + DEADLINE_SLACK_SECONDS,
      terminationGracePeriodSeconds: 60,
      containers: [{
        name: "coordinator",
        image: opts.image,
        command: [...(opts.command ?? COORDINATOR_COMMAND)],
        args: ["--spec", `${HOP_JOBSPEC_DIR}/${HOP_JOBSPEC_FILE}`, ...opts.args],
        workingDir: "/srv",
        env: [
          ...Object.entries(WORKER_ENV).map(([name, value]) => ({ name, value })),
          {
            name: "POD_IP",
            valueFrom: { fieldRef: { fieldPath: "status.podIP" } },
          },
          {
            name: "POD_NAMESPACE",
            valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
          },
          { name: HOP_TOKEN_FILE_ENV, value: `${HOP_JOBSPEC_DIR}/${HOP_TOKEN_FILE}` },
        ],
        volumeMounts: [
          { name: "srv", mountPath: "/srv" },
          { name: "jobspec", mountPath: HOP_JOBSPEC_DIR, readOnly: true },
        ],
        ...(sc ? { securityContext: sc } : {}),
      }],
      volumes: [
        { name: "srv", emptyDir: {} },
        {
          name: "jobspec",
          secret: {
            secretName: hopSecretName(opts.runId),
            defaultMode: 0o600,
            items: [HOP_JOBSPEC_FILE, HOP_TOKEN_FILE].map((key) => ({
              key,
              path: key,
              mode: 0o600,
            })),
          },
        },
      ],
    },
  };
  if (opts.namespace) pod.metadata!.namespace = opts.namespace;
  const podSc = podSecurityContext(opts);
  if (podSc) pod.spec!.securityContext = podSc;
  return pod;
}

/** The Secret carrying the hop pod's JobSpec and the token guarding its results. */
export function hopSecret(
  runId: string,
  jobspecYaml: string,
  opts: { namespace?: string; resultsToken?: string } = {},
): V1Secret {
  const secret: V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: { name: hopSecretName(runId), labels: runLabels(runId, "hop-jobspec") },
    data: {
      [HOP_JOBSPEC_FILE]: Buffer.from(jobspecYaml, "utf8").toString("base64"),
      [HOP_TOKEN_FILE]: Buffer.from(opts.resultsToken ?? "", "utf8").toString("base64"),
    },
  };
  if (opts.namespace) secret.metadata!.namespace = opts.namespace;
  return secret;
}
