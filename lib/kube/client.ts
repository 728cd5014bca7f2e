/**
 * A thin adapter over npm:@kubernetes/client-node: configuration (kubeconfig file, default
 * resolution, in-cluster service account), the few CoreV1 calls gangplank needs with bounded
 * retries, a pod watch that survives dropped connections and `410 Gone`, and line-oriented
 * log streaming.
 *
 * @module
 */

import { PassThrough } from "node:stream";
import * as k8s from "@kubernetes/client-node";
import type { V1ConfigMap, V1Node, V1Pod, V1Secret } from "@kubernetes/client-node";
import { LineSplitter, WORKER_MAX_LINE_LENGTH } from "../log/lines.ts";
import { DEFAULT_RETRY, KubeApiError, type RetryPolicy, withKubeRetry } from "./retry.ts";
import { abortable } from "../toolkit/delay.ts";
import { type KubeClientOptions, loadKubeConfig } from "./config.ts";
import { type PodEvent, type WatchOptions, watchPodEvents } from "./watch.ts";

export { type KubeClientOptions, type KubeTarget, loadKubeConfig } from "./config.ts";
export { type PodEvent, type WatchOptions } from "./watch.ts";

/** client-node call options that abort the request with `signal`. */
export function callOptions(signal: AbortSignal) {
  return {
    middleware: [{
      pre: (ctx: k8s.RequestContext) => {
        ctx.setSignal(signal);
        return new k8s.Observable(Promise.resolve(ctx));
      },
      post: (rsp: k8s.ResponseContext) => new k8s.Observable(Promise.resolve(rsp)),
    }],
    middlewareMergeStrategy: "append" as const,
  };
}

/** The CoreV1 operations gangplank uses, bound to one namespace, with retries. */
export class KubeClient {
  readonly kc: k8s.KubeConfig;
  readonly namespace: string;
  readonly #core: k8s.CoreV1Api;
  readonly #policy: RetryPolicy;
  readonly #log: (msg: string) => void;

  constructor(kc: k8s.KubeConfig, opts: Omit<KubeClientOptions, "target"> = {}) {
    this.kc = kc;
    this.namespace = opts.namespace || kc.getContextObject(kc.getCurrentContext())?.namespace ||
      "default";
    this.#core = kc.makeApiClient(k8s.CoreV1Api);
    this.#policy = opts.retry ?? DEFAULT_RETRY;
    this.#log = opts.log ?? (() => {});
  }

  /** Loads the configuration of `opts.target` and returns a client. */
  static connect(opts: KubeClientOptions): KubeClient {
    return new KubeClient(loadKubeConfig(opts.target), opts);
  }

  /** The API server URL (for messages). */
  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? "";
  }

  #retry<T>(op: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    return withKubeRetry(op, fn, { signal, policy: this.#policy, onRetry: this.#log });
  }

  /** The names of the server's API groups (`/apis`), e.g. `security.openshift.io`. */
  async apiGroups(opts: { signal: AbortSignal }): Promise<string[]> {
    const api = this.kc.makeApiClient(k8s.ApisApi);
    const list = await this.#retry(
      "list API groups",
      opts.signal,
      () => api.getAPIVersions(callOptions(opts.signal)),
    );
    return (list.groups ?? []).map((g) => g.name);
  }

  /**
   * The repository of an OpenShift ImageStream (`image.openshift.io/v1`,
   * `status.dockerImageRepository`, e.g. `image-registry.openshift-image-registry.svc:5000/ns/os`);
   * `""` when the stream has none yet.
   * @throws {KubeApiError} (404 when the stream does not exist).
   */
  async imageStreamRepository(
    namespace: string,
    name: string,
    opts: { signal: AbortSignal },
  ): Promise<string> {
    const api = this.kc.makeApiClient(k8s.CustomObjectsApi);
    const o = await this.#retry(
      `read imagestream ${namespace}/${name}`,
      opts.signal,
      () =>
        api.getNamespacedCustomObject(
          { group: "image.openshift.io", version: "v1", namespace, plural: "imagestreams", name },
          callOptions(opts.signal),
        ),
    ) as { status?: { dockerImageRepository?: unknown } };
    const repo = o?.status?.dockerImageRepository;
    return typeof repo === "string" ? repo : "";
  }

  /** The server's version (`major`, `minor`, `gitVersion`). */
  serverVersion(opts: { signal: AbortSignal }): Promise<k8s.VersionInfo> {
    const api = this.kc.makeApiClient(k8s.VersionApi);
    return this.#retry(
      "get server version",
      opts.signal,
      () => api.getCode(callOptions(opts.signal)),
    );
  }

  createPod(pod: V1Pod, opts: { signal: AbortSignal }): Promise<V1Pod> {
    return this.#retry(
      `create pod ${pod.metadata?.name}`,
      opts.signal,
      () =>
        this.#core.createNamespacedPod(
          { namespace: this.namespace, body: pod },
          callOptions(opts.signal),
        ),
    );
  }

  /** Reads a pod; `undefined` when it does not exist. */
  async readPod(name: string, opts: { signal: AbortSignal }): Promise<V1Pod | undefined> {
    try {
      return await this.#retry(`read pod ${name}`, opts.signal, () =>
        this.#core.readNamespacedPod(
          { name, namespace: this.namespace },
          callOptions(opts.signal),
        ));
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Deletes a pod immediately (grace 0). Returns false when it was already gone. */
  deletePod(name: string, opts: { signal: AbortSignal }): Promise<boolean> {
    return this.#deleteIfPresent(
      `delete pod ${name}`,
      opts.signal,
      () =>
        this.#core.deleteNamespacedPod(
          { name, namespace: this.namespace, gracePeriodSeconds: 0 },
          callOptions(opts.signal),
        ),
    );
  }

  /** Runs a delete with retries; false when the object was already gone (404). */
  async #deleteIfPresent(
    op: string,
    signal: AbortSignal,
    fn: () => Promise<unknown>,
  ): Promise<boolean> {
    try {
      await this.#retry(op, signal, fn);
      return true;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return false;
      throw e;
    }
  }

  listPods(selector: string, opts: { signal: AbortSignal }): Promise<V1Pod[]> {
    return this.#retry(
      `list pods ${selector}`,
      opts.signal,
      async () =>
        (await this.#core.listNamespacedPod(
          { namespace: this.namespace, labelSelector: selector },
          callOptions(opts.signal),
        )).items,
    );
  }

  createSecret(secret: V1Secret, opts: { signal: AbortSignal }): Promise<V1Secret> {
    return this.#retry(`create secret ${secret.metadata?.name}`, opts.signal, async () => {
      const created = await this.#core.createNamespacedSecret(
        { namespace: this.namespace, body: secret },
        callOptions(opts.signal),
      );
      // Keep the values out of whatever the caller does with the answer.
      return { ...created, data: undefined, stringData: undefined };
    });
  }

  /** Creates a ConfigMap (the answer without its data). */
  createConfigMap(cm: V1ConfigMap, opts: { signal: AbortSignal }): Promise<V1ConfigMap> {
    return this.#retry(`create configmap ${cm.metadata?.name}`, opts.signal, async () => {
      const created = await this.#core.createNamespacedConfigMap(
        { namespace: this.namespace, body: cm },
        callOptions(opts.signal),
      );
      return { ...created, data: undefined, binaryData: undefined };
    });
  }

  /** Deletes a ConfigMap. Returns false when it was already gone. */
  deleteConfigMap(name: string, opts: { signal: AbortSignal }): Promise<boolean> {
    return this.#deleteIfPresent(
      `delete configmap ${name}`,
      opts.signal,
      () =>
        this.#core.deleteNamespacedConfigMap(
          { name, namespace: this.namespace },
          callOptions(opts.signal),
        ),
    );
  }

  /** Deletes a Secret. Returns false when it was already gone. */
  deleteSecret(name: string, opts: { signal: AbortSignal }): Promise<boolean> {
    return this.#deleteIfPresent(
      `delete secret ${name}`,
      opts.signal,
      () =>
        this.#core.deleteNamespacedSecret(
          { name, namespace: this.namespace },
          callOptions(opts.signal),
        ),
    );
  }

  /**
   * Lists Secrets by label selector, following `continue` tokens. The values are dropped
   * before this returns: callers get metadata and data keys only.
   */
  async listSecretMetadata(
    selector: string,
    opts: { signal: AbortSignal },
  ): Promise<V1Secret[]> {
    const items = await this.#listAll(
      `list secrets ${selector}`,
      opts.signal,
      (cont) =>
        this.#core.listNamespacedSecret(
          { namespace: this.namespace, labelSelector: selector, limit: 100, _continue: cont },
          callOptions(opts.signal),
        ),
    );
    return items.map((s) => {
      const keys = Object.fromEntries(Object.keys(s.data ?? {}).map((k) => [k, ""]));
      return { kind: "Secret", apiVersion: "v1", metadata: s.metadata, data: keys };
    });
  }

  /** Lists ConfigMaps by label selector (values dropped, keys kept). */
  async listConfigMapMetadata(
    selector: string,
    opts: { signal: AbortSignal },
  ): Promise<V1ConfigMap[]> {
    const items = await this.#listAll(
      `list configmaps ${selector}`,
      opts.signal,
      (cont) =>
        this.#core.listNamespacedConfigMap(
          { namespace: this.namespace, labelSelector: selector, limit: 100, _continue: cont },
          callOptions(opts.signal),
        ),
    );
    return items.map((c) => {
      const keys = [...Object.keys(c.data ?? {}), ...Object.keys(c.binaryData ?? {})];
      return {
        kind: "ConfigMap",
        apiVersion: "v1",
        metadata: c.metadata,
        data: Object.fromEntries(keys.map((k) => [k, ""])),
      };
    });
  }

  /** Every item of a paged list, following `continue` tokens (each page retried). */
  async #listAll<T>(
    op: string,
    signal: AbortSignal,
    page: (cont: string | undefined) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
  ): Promise<T[]> {
    const out: T[] = [];
    let cont: string | undefined;
    do {
      const p = await this.#retry(op, signal, () => page(cont));
      out.push(...p.items);
      cont = p.metadata?._continue || undefined;
    } while (cont);
    return out;
  }

  listNodes(opts: { signal: AbortSignal }): Promise<V1Node[]> {
    return this.#retry(
      "list nodes",
      opts.signal,
      async () => (await this.#core.listNode({}, callOptions(opts.signal))).items,
    );
  }

  /**
   * Watches one pod, yielding its events; dropped connections and `410 Gone` are resumed (see
   * {@link watchPodEvents}).
   */
  watchPod(name: string, opts: WatchOptions): AsyncGenerator<PodEvent> {
    const watch = new k8s.Watch(this.kc);
    return watchPodEvents((...a) => watch.watch(...a), this.namespace, name, {
      ...opts,
      policy: this.#policy,
      log: this.#log,
      readPod: (n, o) => this.readPod(n, o),
    });
  }

  /**
   * Streams one container's log, calling `onLine` for every complete line (lines over 4 MiB in
   * marked pieces, see {@link LineSplitter}) and, with `flushPartial`, at the end for a final
   * line without newline (otherwise returned as `partial`). `skipLines` drops that many complete
   * lines first (used to resume after a dropped stream without repeating output). Resolves
   * with the number of complete lines seen (skipped included) when the server ends the stream.
   */
  async streamLog(
    pod: string,
    container: string,
    onLine: (line: string) => void,
    opts: { signal: AbortSignal; follow: boolean; skipLines?: number; flushPartial?: boolean },
  ): Promise<{ lines: number; partial: string }> {
    const log = new k8s.Log(this.kc);
    const sink = new PassThrough();
    let lines = 0;
    let partial = "";
    const skip = opts.skipLines ?? 0;
    // At the end, the splitter's last line is the partial one (no newline yet).
    const tail: string[] = [];
    let ending = false;
    const splitter = new LineSplitter((line) => {
      if (ending) {
        tail.push(line);
        return;
      }
      lines++;
      if (lines > skip) onLine(line);
    }, { maxLineLength: WORKER_MAX_LINE_LENGTH });
    const done = new Promise<void>((resolve, reject) => {
      sink.on("data", (chunk: Uint8Array) => splitter.push(chunk));
      sink.on("end", () => resolve());
      sink.on("error", reject);
    });
    // client-node's connect cannot take the signal: an abort must not wait for the server.
    const ctl = await abortable(
      withKubeRetry(
        `log ${pod}/${container}`,
        () => log.log(this.namespace, pod, container, sink, { follow: opts.follow }),
        { signal: opts.signal, policy: this.#policy, onRetry: this.#log },
      ),
      opts.signal,
      (late) => (late.abort(), sink.destroy()),
    );
    const onAbort = () => {
      ctl.abort();
      sink.end();
    };
    opts.signal.addEventListener("abort", onAbort, { once: true });
    try {
      await done;
    } finally {
      opts.signal.removeEventListener("abort", onAbort);
    }
    ending = true;
    splitter.end();
    partial = tail.pop() ?? "";
    for (const l of tail) {
      lines++;
      if (lines > skip) onLine(l);
    }
    if (opts.flushPartial && partial) {
      onLine(partial);
      partial = "";
    }
    return { lines, partial };
  }
}
