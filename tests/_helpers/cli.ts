/**
 * Runs a script's logic in-process through the harness (lib/cli/harness.ts), the way the
 * script itself does, with argv/env/cwd injected and stdout/stderr captured.
 *
 * @module
 */
import { type CliMain, runCli } from "../../lib/cli/harness.ts";
import type { Installation } from "../../lib/cli/backends/types.ts";
import { installation } from "../../scripts/_harness.ts";
import { ROOT, withTestState } from "./mod.ts";

/** What an in-process run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runInProcess}. */
export interface InProcessOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  signal?: AbortSignal;
  install?: Installation;
  /** Fail the test if the run takes longer. Default 120 s. */
  timeoutMs?: number;
}

/**
 * Runs `main` (e.g. `submit`) with `argv`; the environment is `env` only (nothing inherited
 * unless given) plus the test state dir (`XDG_STATE_HOME`, see `withTestState`), the
 * installation is this checkout's.
 */
export async function runInProcess(
  name: string,
  main: CliMain,
  argv: string[],
  opts: InProcessOptions = {},
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 120_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const code = await runCli(name, main, {
    argv,
    env: withTestState(opts.env ?? {}),
    cwd: opts.cwd ?? Deno.cwd(),
    uid: Deno.uid(),
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    signal,
    install: opts.install ?? installation(`file://${ROOT}/scripts/submit.ts`),
  });
  if (timeout.aborted) throw new Error(`${name} ${argv.join(" ")} timed out\n${stdout}\n${stderr}`);
  return { code, stdout, stderr };
}
