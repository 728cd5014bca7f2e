/**
 * Shared by the BuildConfig E2E tests: the test cluster (process-mode kubelet) with a real
 * registry on its node address, and a build pod started as OpenShift starts a custom-strategy
 * build: env BUILD, the payload on stdin, the push secret at PUSH_DOCKERCFG_PATH, /srv a host
 * directory the test reads afterwards. The API server authorizes every request by the Role of
 * examples/openshift (a call it does not allow is answered 403, as RBAC would). Worker pods run the worker entry of this checkout with
 * the stand-in cosa on PATH.
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../_helpers/mod.ts";
import { startRegistry, type TestRegistry } from "../_helpers/registry.ts";
import { type KObj, type KubeApi, startKubeApiServer } from "../_kube_sim/api_server.ts";
import type { ContainerLaunch } from "../_kube_sim/pod_run.ts";
import { RUN_ID_LABEL } from "../../lib/podspec/names.ts";
import { templateAuthorizer } from "./_template.ts";

/** The real Build fixture. */
export const FIXTURE: string = readFileSync(
  new URL("./fixtures/build.json", import.meta.url),
  "utf8",
);
/** The build pod's name (OpenShift's `<build>-build`). */
export const BUILD_POD = "gangplank-fcos-1-build";
const DENO_RUN = [
  Deno.execPath(),
  "run",
  "-A",
  "--no-check",
  "--cached-only",
  "--config",
  `${ROOT}/deno.json`,
];

/** A test cluster with a registry; disposing stops both. */
export interface BcCluster extends AsyncDisposable {
  kube: KubeApi;
  reg: TestRegistry;
  /** Starts the build pod; resolves when it ended, with its phase and log. */
  runBuild(o: {
    build: Record<string, unknown>;
    payload?: Uint8Array;
    srv: string;
    env?: Record<string, string>;
    timeoutMs?: number;
  }): Promise<{ phase: string; log: string; exitCode?: number }>;
}

/** Starts the cluster (process-mode kubelet, pod network) and the registry on its node address. */
export async function startBcCluster(): Promise<BcCluster> {
  const late: { reg?: TestRegistry; payload?: Uint8Array } = {};
  const hostPath = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  const rewrite = (l: ContainerLaunch): ContainerLaunch | void => {
    if (l.pod.metadata.name === BUILD_POD) return { ...l, stdin: late.payload };
    if (l.pod.metadata.labels?.[RUN_ID_LABEL] && !l.init) {
      // A worker pod "of this image": the worker entry from this checkout, the stand-in cosa,
      // and the registry's CA trusted (an image would carry it in its trust store).
      return {
        ...l,
        command: [...DENO_RUN, `${ROOT}/scripts/work.ts`],
        args: [],
        env: {
          ...l.env,
          PATH: `${ROOT}/examples/fake-cosa:${hostPath}`,
          SSL_CERT_FILE: late.reg!.caFile,
        },
      };
    }
  };
  // Every call is authorized by the example template's Role, as on a real cluster.
  const kube = await startKubeApiServer({
    kubelet: { mode: "process", rewrite },
    authorize: templateAuthorizer("default"),
  });
  let reg: TestRegistry;
  try {
    reg = late.reg = await startRegistry({ host: kube.nodeIP });
  } catch (e) {
    await kube.close();
    throw e;
  }
  kube.store.create("secrets", {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/dockercfg",
    metadata: { namespace: "default", name: "builder-dockercfg" },
    data: {
      ".dockercfg": Buffer.from(JSON.stringify({
        [reg.address]: { auth: btoa(`${reg.user}:${reg.password}`) },
      })).toString("base64"),
    },
  });
  return {
    kube,
    reg,
    async runBuild(o) {
      late.payload = o.payload;
      kube.openshift.put(o.build as KObj);
      // One build pod at a time: an earlier (finished) one goes first, as a new build replaces it.
      kube.store.remove("pods", "default", BUILD_POD);
      kube.store.create("pods", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { namespace: "default", name: BUILD_POD },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: "default",
          containers: [{
            name: "custom-build",
            image: "quay.io/me/gangplank-worker:latest",
            workingDir: ROOT,
            command: [...DENO_RUN, `${ROOT}/scripts/work.ts`],
            env: [
              { name: "BUILD", value: JSON.stringify(o.build) },
              { name: "PUSH_DOCKERCFG_PATH", value: "/var/run/secrets/openshift.io/push" },
              { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
              ...Object.entries(o.env ?? {}).map(([name, value]) => ({ name, value })),
            ],
            volumeMounts: [
              { name: "srv", mountPath: "/srv" },
              { name: "push", mountPath: "/var/run/secrets/openshift.io/push", readOnly: true },
            ],
          }],
          volumes: [
            { name: "srv", hostPath: { path: o.srv } },
            { name: "push", secret: { secretName: "builder-dockercfg" } },
          ],
        },
      });
      const deadline = Date.now() + (o.timeoutMs ?? 240_000);
      for (;;) {
        const p = kube.pods().find((x) => x.metadata.name === BUILD_POD);
        const phase = (p?.status as { phase?: string } | undefined)?.phase ?? "";
        if (phase === "Succeeded" || phase === "Failed") {
          const log = kube.podLog("default", BUILD_POD, "custom-build") ?? "";
          const st = (p!.status as {
            containerStatuses?: { state?: { terminated?: { exitCode?: number } } }[];
          }).containerStatuses?.[0]?.state?.terminated;
          return { phase, log, ...(st?.exitCode !== undefined ? { exitCode: st.exitCode } : {}) };
        }
        if (Date.now() > deadline) throw new Error(`the build pod did not finish in time`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async [Symbol.asyncDispose]() {
      await reg[Symbol.asyncDispose]();
      await kube.close();
    },
  };
}

/** The fixture as OpenShift hands it to the pod: namespace default, output to `target`. */
export function fixtureBuild(
  target: string,
  // deno-lint-ignore no-explicit-any
  edit: (b: Record<string, any>) => void = () => {},
): Record<string, unknown> {
  const b = JSON.parse(FIXTURE);
  b.metadata.namespace = "default";
  b.spec.serviceAccount = "default";
  b.spec.output = {
    to: { kind: "DockerImage", name: target },
    pushSecret: { name: "builder-dockercfg" },
  };
  edit(b);
  return b;
}

/**
 * `oc start-build --from-dir`'s payload: the files as a tar.gz; or, with `zip`, what
 * `--from-archive=job.zip` sends: a zip made by Info-ZIP's `zip`.
 */
export async function dirPayload(
  tmp: string,
  files: Record<string, string>,
  { zip = false } = {},
): Promise<Uint8Array> {
  const dir = join(tmp, `payload-${crypto.randomUUID().slice(0, 6)}`);
  await mkdir(dir);
  for (const [n, t] of Object.entries(files)) await writeFile(join(dir, n), t);
  const out = `${dir}.${zip ? "zip" : "tgz"}`;
  const o = zip
    ? await new Deno.Command("zip", { args: ["-q", "-r", out, "."], cwd: dir }).output()
    : await new Deno.Command("tar", { args: ["-czf", out, "-C", dir, "."] }).output();
  if (!o.success) throw new Error(`${zip ? "zip" : "tar"} failed`);
  return await Deno.readFile(out);
}
