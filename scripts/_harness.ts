/**
 * The process side of the script harness (lib/cli/harness.ts): builds a {@link CliIo} from
 * this process — argv, environment, cwd, uid, stdout/stderr, and an abort signal fired by
 * SIGINT/SIGTERM/SIGHUP (a second signal exits at once) — finds where workers come from
 * (a checkout, a bundle, or compiled binaries), runs the script's {@link CliMain}, and exits
 * with its code. The only module that installs signal handlers and calls `Deno.exit`.
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { InterruptedError } from "../lib/errors/mod.ts";
import type { Installation } from "../lib/cli/backends/types.ts";
import { type CliIo, type CliMain, runCli } from "../lib/cli/harness.ts";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Writes `text` whole. A reader that has gone away (EPIPE: a killed coordinator reading a
 * worker's output, `submit ... | head`) loses the rest of the output instead of the process
 * dying mid-step: a worker must live on long enough to stop its stage's processes (its
 * lifeline sees the same coordinator gone), a coordinator long enough to clean up its run.
 */
function writeAll(file: { writeSync(b: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  try {
    for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}

/**
 * Where a worker comes from, judged by where this script runs: `scripts/*.ts` in a checkout,
 * `<dir>/*.js` bundles (with `work.js` next to them), or compiled `gangplank-*` binaries
 * (with `gangplank-work` next to them).
 */
export function installation(entryUrl: string): Installation {
  const exe = Deno.execPath();
  const exeName = exe.slice(exe.lastIndexOf("/") + 1);
  if (exeName.startsWith("gangplank-")) {
    const dir = dirname(exe);
    return {
      kind: "compiled",
      workerCommand: [`${dir}/gangplank-work`],
      ...(existsSync(`${dir}/work.js`) ? { workerBundle: `${dir}/work.js` } : {}),
    };
  }
  if (entryUrl.startsWith("file:") && entryUrl.endsWith(".js")) {
    const dir = dirname(fileURLToPath(entryUrl));
    return {
      kind: "bundle",
      workerCommand: [exe, "run", "-A", "--no-config", "--quiet", `${dir}/work.js`],
      workerBundle: `${dir}/work.js`,
    };
  }
  return {
    kind: "source",
    bundleWorker: async (signal) => {
      const { bundle } = await import("./bundle.ts");
      const [path] = await bundle({ entries: ["work"], signal });
      return path;
    },
  };
}

/**
 * A {@link CliIo} over this process; its signal is aborted by SIGINT/SIGTERM/SIGHUP (with an
 * {@link InterruptedError}); a second signal exits at once with its code. Dispose to remove the
 * handlers.
 */
export function processIo(name: string, entryUrl: string): CliIo & Disposable {
  const ctl = new AbortController();
  const handlers = SIGNALS.map((sig) =>
    [sig, () => {
      if (ctl.signal.aborted) {
        writeAll(Deno.stderr, `${name}: second ${sig}, exiting now (run --cleanup later)\n`);
        Deno.exit(new InterruptedError(sig).exitCode);
      }
      // Abort first: what listens (the live view erasing its status block) goes before the
      // message, so the message is not drawn under the block.
      ctl.abort(new InterruptedError(sig));
      writeAll(Deno.stderr, `${name}: ${sig} received, stopping\n`);
    }] as const
  );
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return {
    argv: [...Deno.args],
    env: Deno.env.toObject(),
    cwd: Deno.cwd(),
    uid: Deno.uid(),
    pid: Deno.pid,
    stdout: (t) => writeAll(Deno.stdout, t),
    stderr: (t) => writeAll(Deno.stderr, t),
    signal: ctl.signal,
    install: installation(entryUrl),
    ...(Deno.stdout.isTerminal()
      ? { terminal: { columns: () => Deno.consoleSize().columns } }
      : {}),
    [Symbol.dispose]() {
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    },
  };
}

/** Runs `main` as this process's program and exits with its code. */
export async function runMain(name: string, main: CliMain, entryUrl: string): Promise<never> {
  let code: number;
  {
    using io = processIo(name, entryUrl);
    code = await runCli(name, main, io);
  }
  Deno.exit(code);
}
