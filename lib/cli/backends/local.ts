/**
 * `--backend local`: every stage's worker is a process on this machine (the default).
 *
 * @module
 */
import { resolve } from "node:path";
import { UsageError } from "../../errors/mod.ts";
import type { FlagDef } from "../flags.ts";
import type { BackendDef, BackendRuntime } from "./types.ts";
import { workerBaseEnv } from "./local_env.ts";

/** Flags of the local backend. */
export const LOCAL_FLAGS: readonly FlagDef[] = [
  {
    flags: "--worker-path <dir>",
    help: "directory put first on workers' PATH, e.g. examples/fake-cosa (repeatable)",
    group: "local",
    repeat: true,
  },
];

const runtime: BackendRuntime = {
  async createExecutor(ctx) {
    if (ctx.opts.image !== undefined) {
      throw new UsageError(
        `--image ${ctx.opts.image}: the local backend runs workers as processes, not ` +
          `containers; use --backend podman or --backend kube`,
      );
    }
    for (
      const [attr, flag] of [["workerSource", "--worker-source"], ["denoImage", "--deno-image"]]
    ) {
      if (ctx.opts.flags[attr] !== undefined) {
        throw new UsageError(
          `${flag}: the local backend runs workers as processes with this deno; use --backend ` +
            `podman or --backend kube`,
        );
      }
    }
    const { LocalExecutor } = await import("../../executors/local.ts");
    const workerPath = (ctx.opts.flags.workerPath as string[] | undefined) ?? [];
    return new LocalExecutor({
      baseEnv: workerBaseEnv(ctx.env),
      pathPrefix: workerPath.map((p) => resolve(ctx.cwd, p)),
      ...(ctx.install.workerCommand ? { workerCommand: ctx.install.workerCommand } : {}),
      ...(ctx.pid !== undefined ? { ownerPid: ctx.pid } : {}),
    });
  },
  async cleanup(ctx) {
    // A run ends with nothing left; a killed coordinator leaves workers, temp dirs and parts.
    const { cleanupLocal } = await import("../../executors/local_cleanup.ts");
    const workDir = ctx.opts.workDir !== undefined ? resolve(ctx.cwd, ctx.opts.workDir) : undefined;
    const r = await cleanupLocal({
      tempParent: ctx.env.TMPDIR || "/tmp",
      ...(workDir ? { workDirs: [workDir] } : {}),
      kill: (pid, sig) => Deno.kill(pid, sig),
      signal: ctx.signal,
    });
    for (const pid of r.processes) ctx.out(`cleanup: stopped worker process group ${pid}`);
    for (const d of r.dirs) ctx.out(`cleanup: removed ${d}`);
    for (const u of r.uploads) ctx.out(`cleanup: removed unfinished upload ${u}`);
    for (const a of r.alive) ctx.out(`cleanup: left ${a} alone: its coordinator is running`);
    ctx.out(
      `cleanup: ${r.processes.length} worker process group(s) stopped, ${r.dirs.length} temp ` +
        `dir(s) and ${r.uploads.length} unfinished upload(s) removed`,
    );
    return 0;
  },
};

/** The local backend. */
export const localBackend: BackendDef = {
  name: "local",
  summary: "workers are processes on this machine",
  flags: LOCAL_FLAGS,
  load: () => Promise.resolve(runtime),
};
