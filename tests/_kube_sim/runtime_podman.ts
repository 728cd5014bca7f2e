/**
 * Podman-mode containers of the simulated kubelet: `podman run --rm --pull never` with the
 * volumes as bind mounts; values from Secrets/ConfigMaps pass through podman's environment
 * (`--env NAME`), never its argv.
 *
 * @module
 */

import { signalExitCode } from "../../lib/errors/mod.ts";
import type { LogBuffer } from "./logs.ts";
import type { ContainerLaunch, Handle, KubeletHost, PodRun } from "./pod_run.ts";
import { pump } from "./runtime_process.ts";

const PODMAN_ENV_DENY = /^(PATH|HOME|TMPDIR|XDG_.*|CONTAINERS_.*|STORAGE_.*|REGISTRIES_.*)$/;

/** Whether images are in local podman storage (only positive answers are cached). */
export class PodmanImages {
  #cache = new Map<string, Promise<boolean>>();

  /** Whether `image` is in local podman storage. */
  exists(image: string): Promise<boolean> {
    let p = this.#cache.get(image);
    if (!p) {
      p = new Deno.Command("podman", {
        args: ["image", "exists", image],
        stdout: "null",
        stderr: "null",
      }).output().then((o) => o.success).catch(() => false);
      this.#cache.set(image, p);
      p.then((ok) => {
        if (!ok) this.#cache.delete(image);
      });
    }
    return p;
  }
}

/** Starts one podman-mode container. */
export function startPodman(
  host: KubeletHost,
  run: PodRun,
  l: ContainerLaunch,
  log: LogBuffer,
): Handle {
  const restarts = run.restarts.get(l.container)?.count ?? 0;
  const name = `kube-sim-${run.name}-${l.container}-${run.uid.slice(0, 8)}${
    restarts ? `-r${restarts}` : ""
  }`.replace(
    /[^a-zA-Z0-9_.-]/g,
    "-",
  );
  run.podmanNames.add(name);
  const args = ["run", "--rm", "--name", name, "--network", "host", "--pull", "never"];
  args.push("--hostname", run.name);
  for (const m of l.mounts) {
    args.push("-v", `${m.hostPath}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
  }
  if (l.workingDir) args.push("-w", l.workingDir);
  if (l.runAsUser !== undefined) {
    args.push("--user", `${l.runAsUser}${l.runAsGroup !== undefined ? `:${l.runAsGroup}` : ""}`);
  }
  if (l.privileged) args.push("--privileged");
  for (const [k, v] of Object.entries(l.env)) args.push("--env", `${k}=${v}`);
  const podmanEnv: Record<string, string> = {};
  const hostEnv = Deno.env.toObject();
  for (const k of ["PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "CONTAINERS_CONF"]) {
    if (hostEnv[k]) podmanEnv[k] = hostEnv[k];
  }
  const fileEnv: string[] = [];
  for (const [k, v] of Object.entries(l.secretEnv)) {
    if (!PODMAN_ENV_DENY.test(k)) {
      // `--env NAME` takes the value from podman's own environment: any bytes, never argv
      podmanEnv[k] = v;
      args.push("--env", k);
    } else if (!v.includes("\n")) {
      fileEnv.push(`${k}=${v}`); // names podman itself reads go through a 0600 env file
    } else {
      throw new Error(`kube-sim cannot pass a multi-line value for ${k} to podman`);
    }
  }
  if (fileEnv.length) {
    const f = `${run.tmp}/env-${l.container}`;
    Deno.writeTextFileSync(f, fileEnv.join("\n") + "\n", { mode: 0o600 });
    args.push("--env-file", f);
  }
  if (l.command) args.push("--entrypoint", JSON.stringify(l.command));
  args.push(l.image, ...l.args);
  const child = new Deno.Command("podman", {
    args,
    env: podmanEnv,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pumps = Promise.all([
    pump(child.stdout, "stdout", log),
    pump(child.stderr, "stderr", log),
  ]);
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const podmanKill = () =>
    new Deno.Command("podman", {
      args: ["kill", "--signal", "KILL", name],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => {});
  const exited = child.status.then(async (st) => {
    clearTimeout(killTimer);
    await pumps;
    return st.signal ? signalExitCode(st.signal) : st.code;
  });
  const hardKill = () => {
    host.track(podmanKill());
    // If the container never came up, podman run itself must go.
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 2000);
    exited.finally(() => clearTimeout(t));
  };
  return {
    exited,
    kill: hardKill,
    terminate: (graceMs) => {
      try {
        child.kill("SIGTERM"); // podman run proxies it to the container
      } catch { /* gone */ }
      clearTimeout(killTimer);
      killTimer = setTimeout(hardKill, graceMs);
    },
  };
}

/** Removes the pod's podman containers (they run with --rm; this catches leftovers). */
export async function removePodmanContainers(run: PodRun): Promise<void> {
  for (const name of run.podmanNames) {
    await new Deno.Command("podman", {
      args: ["rm", "-f", "--ignore", "-t", "0", name],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => {});
  }
}
