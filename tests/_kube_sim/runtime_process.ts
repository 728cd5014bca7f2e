/**
 * Process-mode containers of the simulated kubelet: `command + args` run on the host, in a
 * private mount namespace with the volumes bind-mounted when running as root (missing mount
 * points made in private overlays), else with `KUBE_SIM_MOUNTS` naming the host dirs.
 *
 * @module
 */

import { signalExitCode } from "../../lib/errors/mod.ts";
import type { LogBuffer } from "./logs.ts";
import type { ContainerLaunch, Handle, KubeletHost, PodRun } from "./pod_run.ts";
import { planMountPoints } from "./volumes.ts";

/** Mount points created on the host for process-mode pods, reference counted. */
const createdMountPoints = new Map<string, number>();

/** Copies a child's output stream into a container's log. */
export function pump(
  stream: ReadableStream<Uint8Array>,
  which: "stdout" | "stderr",
  log: LogBuffer,
): Promise<void> {
  const dec = new TextDecoder();
  return (async () => {
    try {
      for await (const chunk of stream) log.append(which, dec.decode(chunk, { stream: true }));
      log.append(which, dec.decode());
    } catch { /* stream ended abruptly */ }
  })();
}

/** Starts one process-mode container. */
export async function startProcess(
  host: KubeletHost,
  run: PodRun,
  l: ContainerLaunch,
  log: LogBuffer,
): Promise<Handle> {
  const argv = [...(l.command ?? []), ...l.args];
  if (!argv.length) {
    throw new Error(
      `kube-sim process mode: container "${l.container}" has neither command nor args`,
    );
  }
  const env: Record<string, string> = {};
  const hostEnv = Deno.env.toObject();
  for (const k of ["PATH", "HOME", "DENO_DIR"]) if (hostEnv[k]) env[k] = hostEnv[k];
  Object.assign(env, host.opts.processEnv ?? {}, l.env, l.secretEnv);
  const resolved = await resolveExecutable(argv[0], env.PATH ?? hostEnv.PATH ?? "");
  if (!resolved) throw new Error(`exec: "${argv[0]}": executable file not found in $PATH`);
  argv[0] = resolved;
  let cwd = l.workingDir ?? run.tmp!;
  let cmd: string;
  let args: string[];
  const useNs = (Deno.uid() === 0) && l.mounts.length > 0;
  if (useNs) {
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const lines = ["set -e"];
    const plan = planMountPoints(l.mounts.map((m) => m.mountPath), l.workingDir);
    for (const p of plan.hostCreate) refMountPoint(run, p);
    if (plan.overlays.length) {
      // Missing mount points are made in overlays private to this container, so the host's
      // directories stay untouched.
      const t = `${run.tmp}/ov-${l.container}`;
      await Deno.mkdir(t, { recursive: true });
      lines.push(`mount -t tmpfs kube-sim ${q(t)}`);
      plan.overlays.forEach((dir, i) => {
        lines.push(`mkdir ${q(`${t}/u${i}`)} ${q(`${t}/w${i}`)}`);
        lines.push(
          `mount -t overlay kube-sim -o ${
            q(`lowerdir=${dir},upperdir=${t}/u${i},workdir=${t}/w${i}`)
          } ${q(dir)}`,
        );
      });
    }
    for (const m of [...l.mounts].sort((a, b) => a.mountPath.length - b.mountPath.length)) {
      lines.push(`mkdir -p ${q(m.mountPath)}`);
      lines.push(`mount --bind ${q(m.hostPath)} ${q(m.mountPath)}`);
      if (m.readOnly) lines.push(`mount -o remount,bind,ro ${q(m.mountPath)}`);
    }
    if (l.workingDir) lines.push(`mkdir -p ${q(l.workingDir)}`, `cd ${q(l.workingDir)}`);
    lines.push(`exec "$@"`);
    cmd = "setsid";
    args = [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      lines.join("\n"),
      "sh",
      ...argv,
    ];
    cwd = run.tmp!;
  } else {
    if (l.mounts.length) {
      env.KUBE_SIM_MOUNTS = JSON.stringify(
        Object.fromEntries(l.mounts.map((m) => [m.mountPath, m.hostPath])),
      );
      for (const m of l.mounts) {
        if (l.workingDir === m.mountPath || l.workingDir?.startsWith(`${m.mountPath}/`)) {
          cwd = m.hostPath + l.workingDir.slice(m.mountPath.length);
        }
      }
    }
    await Deno.mkdir(cwd, { recursive: true }).catch(() => {});
    cmd = "setsid";
    args = argv;
  }
  if (run.address) args = ["nsenter", `--net=${run.address.netnsPath}`, "--", ...args];
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    env,
    clearEnv: true,
    stdin: l.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pid = child.pid;
  if (l.stdin) {
    const w = child.stdin.getWriter();
    void w.write(l.stdin).then(() => w.close()).catch(() => {/* it exited first */});
  }
  const pumps = Promise.all([
    pump(child.stdout, "stdout", log),
    pump(child.stderr, "stderr", log),
  ]);
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const killGroup = (sig: Deno.Signal) => {
    try {
      Deno.kill(-pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch { /* gone */ }
    }
  };
  let sig: number | undefined;
  const exited = child.status.then(async (st) => {
    clearTimeout(killTimer);
    killGroup("SIGKILL"); // leftovers of the container's process group
    await pumps;
    sig = st.signal ? signalExitCode(st.signal) - 128 : undefined;
    return st.signal ? signalExitCode(st.signal) : st.code;
  });
  return {
    exited,
    signal: () => sig,
    kill: () => killGroup("SIGKILL"),
    terminate: (graceMs) => {
      killGroup("SIGTERM");
      clearTimeout(killTimer);
      killTimer = setTimeout(() => killGroup("SIGKILL"), graceMs);
    },
  };
}

function refMountPoint(run: PodRun, path: string): void {
  // Record which missing directories mkdir -p will create, so they can be removed later.
  const parts = path.split("/").filter(Boolean);
  let cur = "";
  for (const p of parts) {
    cur += `/${p}`;
    let exists = true;
    try {
      Deno.statSync(cur);
    } catch {
      exists = false;
    }
    if (!exists || createdMountPoints.has(cur)) {
      createdMountPoints.set(cur, (createdMountPoints.get(cur) ?? 0) + 1);
      run.mountRefs.push(cur);
    }
  }
}

/** Removes the host mount points this pod created once no pod uses them. */
export async function releaseMountPoints(run: PodRun): Promise<void> {
  for (const p of run.mountRefs.reverse()) {
    const n = (createdMountPoints.get(p) ?? 1) - 1;
    if (n > 0) createdMountPoints.set(p, n);
    else {
      createdMountPoints.delete(p);
      await Deno.remove(p).catch(() => {});
    }
  }
  run.mountRefs = [];
}

async function resolveExecutable(cmd: string, path: string): Promise<string | undefined> {
  if (cmd.includes("/")) {
    try {
      await Deno.stat(cmd);
      return cmd;
    } catch {
      return undefined;
    }
  }
  for (const dir of path.split(":").filter(Boolean)) {
    try {
      const st = await Deno.stat(`${dir}/${cmd}`);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return `${dir}/${cmd}`;
    } catch { /* next */ }
  }
  return undefined;
}
