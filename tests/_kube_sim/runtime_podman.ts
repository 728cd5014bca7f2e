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
import {
  allProcesses,
  commOf,
  descendants,
  isRunning,
  seenNow,
  type SeenProcess,
  stillAlive,
} from "../_helpers/procs.ts";

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
  // Tracked before podman is asked: cleanup finds what it started by this name and pid file.
  run.podmanNames.add(name);
  const network = run.address ? `ns:${run.address.netnsPath}` : "host";
  const args = [...host.opts.podmanGlobalArgs ?? [], "run", "--rm", "--name", name];
  args.push("--network", network, "--pull", "never", "--conmon-pidfile", conmonPidFile(run, name));
  args.push("--hostname", run.name);
  for (const m of l.mounts) {
    args.push("-v", `${m.hostPath}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
  }
  if (l.workingDir) args.push("-w", l.workingDir);
  if (l.runAsUser !== undefined) {
    args.push("--user", `${l.runAsUser}${l.runAsGroup !== undefined ? `:${l.runAsGroup}` : ""}`);
  }
  for (const g of l.groups ?? []) args.push("--group-add", String(g));
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
  // podman's own start failures arrive on stderr; keep its first lines to recognise them.
  let stderrHead = "";
  const [errForLog, errForCheck] = child.stderr.tee();
  const pumps = Promise.all([
    pump(child.stdout, "stdout", log),
    pump(errForLog, "stderr", log),
    (async () => {
      const dec = new TextDecoder();
      for await (const chunk of errForCheck) {
        if (stderrHead.length < 4096) stderrHead += dec.decode(chunk, { stream: true });
      }
    })().catch(() => {}),
  ]);
  let exitCode: number | undefined;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const podmanKill = () => podman(["kill", "--signal", "KILL", name]);
  const exited = child.status.then(async (st) => {
    clearTimeout(killTimer);
    await pumps;
    exitCode = st.signal ? signalExitCode(st.signal) : st.code;
    return exitCode;
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
    startError: () =>
      exitCode === 126 || exitCode === 127 ? podmanStartError(stderrHead) : undefined,
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

/**
 * The OCI runtime's message when `podman run` could not start the container's command (exit
 * 126/127 with `Error: ... OCI runtime ...`), worded as containerd words it for the kubelet;
 * undefined for a command that ran and exited 126/127 itself.
 */
export function podmanStartError(stderr: string): string | undefined {
  const line = stderr.split("\n").find((l) =>
    /^Error: .*(OCI runtime|runc create failed|executable file not found)/.test(l)
  );
  if (!line) return undefined;
  const m = line.match(/unable to start container process: (.*?)(: OCI runtime.*)?$/);
  return `failed to create containerd task: failed to create shim task: OCI runtime create ` +
    `failed: runc create failed: unable to start container process: ${m ? m[1] : line.slice(7)}: ` +
    `unknown`;
}

/**
 * Removes the pod's podman containers (they run with --rm; this catches leftovers), then ends
 * what podman left of them: a start that never returned (an OCI hook or `runc init` that
 * hangs) leaves conmon, `runc create` and `runc init` running after `podman rm -f` has
 * dropped the record. Only processes of this pod's containers are touched: a conmon found by
 * the pid file podman was given or by its `-n <name>` argument, and that conmon's
 * descendants. Every wait is bounded.
 */
export async function removePodmanContainers(run: PodRun): Promise<void> {
  for (const name of run.podmanNames) {
    await podman(["rm", "-f", "--ignore", "-t", "0", name]);
    const left = conmonsOf(name, conmonPidFile(run, name));
    if (!left.length) continue;
    // A conmon may still be finishing a container that ended: give it a moment.
    if (await gone(left.map(seenNow), 1000)) continue;
    const tree = left.flatMap((pid) => [seenNow(pid), ...descendants(pid)]);
    for (const p of stillAlive(tree)) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await gone(tree, 5000);
    // The record may have come back from a podman call that was still running.
    await podman(["rm", "-f", "--ignore", "-t", "0", name]);
  }
}

/** Where conmon writes its pid for container `name`. */
function conmonPidFile(run: PodRun, name: string): string {
  return `${run.tmp}/conmon-${name}.pid`;
}

/** Runs a podman command (output discarded), given up after `timeoutMs`. Never throws. */
async function podman(args: string[], timeoutMs = 8000): Promise<void> {
  await new Deno.Command("podman", {
    args,
    stdout: "null",
    stderr: "null",
    signal: AbortSignal.timeout(timeoutMs),
  }).output().catch(() => {});
}

/** The live conmon processes of container `name`: from its pid file and by their argv. */
function conmonsOf(name: string, pidFile: string): number[] {
  const isOurs = (pid: number) => {
    const argv = argvOf(pid);
    return /(^|\/)conmon$/.test(argv[0] ?? "") && argv[argv.indexOf("-n") + 1] === name &&
      isRunning(pid);
  };
  const pids = new Set<number>();
  try {
    pids.add(Number(Deno.readTextFileSync(pidFile).trim()));
  } catch { /* not written (yet) */ }
  for (const p of allProcesses()) if (commOf(p.pid) === "conmon") pids.add(p.pid);
  return [...pids].filter((pid) => pid > 0 && isOurs(pid));
}

function argvOf(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  } catch {
    return [];
  }
}

/** Waits until none of `procs` runs (true), or `ms` passed (false). */
async function gone(procs: SeenProcess[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (stillAlive(procs).length) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
