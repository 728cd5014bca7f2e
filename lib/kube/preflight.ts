/**
 * Checks a cluster target before a run creates anything: the API answers, the credentials are
 * accepted, the namespace exists and may be used, the service account exists. Each failure is
 * one {@link UsageError} line saying what is wrong and what to do (exit 2), after at most two
 * quick attempts, never a stack trace.
 *
 * @module
 */

import * as k8s from "@kubernetes/client-node";
import { UsageError } from "../errors/mod.ts";
import { errorInfo, KubeApiError, withKubeRetry } from "./retry.ts";
import { callOptions } from "./client.ts";

/** Options of {@link preflightKube}. */
export interface PreflightOptions {
  /** Where the configuration came from, for messages (`--kubeconfig x`, `$KUBECONFIG`, ...). */
  source: string;
  namespace: string;
  /** Checked to exist when given. */
  serviceAccount?: string;
  signal: AbortSignal;
}

/** Network errors, 429 and 5xx are retried (honouring Retry-After); 4xx answers are final. */
function attempt<T>(signal: AbortSignal, op: string, fn: () => Promise<T>): Promise<T> {
  return withKubeRetry(op, fn, {
    signal,
    policy: { attempts: 5, baseDelayMs: 250, maxDelayMs: 2000 },
  });
}

function info(e: unknown): { status?: number; message: string } {
  return e instanceof KubeApiError ? { status: e.status, message: e.detail } : errorInfo(e);
}

/**
 * Verifies `kc` against its server.
 *
 * @throws {UsageError} unreachable API, 401, 403 on the namespace, unknown namespace, missing
 * service account.
 */
export async function preflightKube(kc: k8s.KubeConfig, opts: PreflightOptions): Promise<void> {
  const server = kc.getCurrentCluster()?.server ?? "<no server>";
  const call = callOptions(opts.signal);
  const ns = opts.namespace;
  const fail = (e: unknown, what: string): never => {
    if (opts.signal.aborted) throw e;
    const i = info(e);
    const msg = i.message.replace(/\s+/g, " ").trim();
    if (i.status === undefined) {
      throw new UsageError(
        `kubernetes: cannot reach the API server ${server} (from ${opts.source}): ${msg}; ` +
          `check the cluster address and that it is running`,
      );
    }
    if (i.status === 401) {
      throw new UsageError(
        `kubernetes: ${server} rejected the credentials of ${opts.source} (401 Unauthorized); ` +
          `log in again or give a kubeconfig with a valid token or certificate`,
      );
    }
    if (i.status === 403) {
      throw new UsageError(
        `kubernetes: ${what} is forbidden (403): ${msg}; ask for a Role allowing pods, ` +
          `secrets and configmaps in namespace ${ns}, or use --namespace`,
      );
    }
    throw new UsageError(`kubernetes: ${what} failed (HTTP ${i.status}): ${msg}`);
  };
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await attempt(
      opts.signal,
      `list pods in ${ns}`,
      () => core.listNamespacedPod({ namespace: ns, limit: 1 }, call),
    );
  } catch (e) {
    const i = info(e);
    if (i.status === 404) {
      throw new UsageError(
        `kubernetes: namespace ${ns} does not exist on ${server}; create it or give --namespace`,
      );
    }
    fail(e, `listing pods in namespace ${ns}`);
  }
  if (!opts.serviceAccount) return;
  try {
    await attempt(
      opts.signal,
      `read service account ${opts.serviceAccount}`,
      () => core.readNamespacedServiceAccount({ name: opts.serviceAccount!, namespace: ns }, call),
    );
  } catch (e) {
    const i = info(e);
    if (i.status === 404) {
      throw new UsageError(
        `kubernetes: service account ${opts.serviceAccount} does not exist in namespace ${ns}; ` +
          `create it (with a Role to create pods) or give another --serviceaccount`,
      );
    }
    if (i.status === 403) return; // may not read service accounts; pod creation will tell
    fail(e, `reading service account ${opts.serviceAccount}`);
  }
}
