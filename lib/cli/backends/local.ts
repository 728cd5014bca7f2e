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
    const { LocalExecutor } = await import("../../executors/local.ts");
    const workerPath = (ctx.opts.flags.workerPath as string[] | undefined) ?? [];
    return new LocalExecutor({
      baseEnv: workerBaseEnv(ctx.env),
      pathPrefix: workerPath.map((p) => resolve(ctx.cwd, p)),
      ...(ctx.install.workerCommand ? { workerCommand: ctx.install.workerCommand } : {}),
    });
  },
  // deno-lint-ignore require-await
  async cleanup(ctx) {
    // Local workers are child processes and temp dirs of one run, gone when it ends.
    ctx.out("submit: --cleanup: the local backend leaves nothing behind between runs");
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
