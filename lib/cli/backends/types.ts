/**
 * The backend seam of the command line: a {@link BackendDef} declares a backend's flags (one
 * table, shown in help under the backend's own heading) and loads its {@link BackendRuntime}
 * lazily, so a local dry run never loads the podman or Kubernetes clients.
 *
 * @module
 */
import type { Executor } from "../../executors/types.ts";
import type { JobSpec } from "../../jobspec/mod.ts";
import type { Plan } from "../../plan/mod.ts";
import type { FlagDef } from "../flags.ts";
import type { Backend, SubmitOptions } from "../submit_options.ts";

/** How this program was installed: where a worker comes from. Filled in by the scripts. */
export interface Installation {
  /** `source` (a checkout: `deno run scripts/…`), `bundle` (`dist/*.js`), `compiled`. */
  kind: "source" | "bundle" | "compiled";
  /** argv that starts one worker process (local backend); absent: the checkout's work.ts. */
  workerCommand?: string[];
  /** The bundled worker (`work.js`) bound into local podman workers, when it exists. */
  workerBundle?: string;
  /** Builds the bundled worker from the checkout (source installs); returns its path. */
  bundleWorker?: (signal: AbortSignal) => Promise<string>;
}

/** Where the embedded relay listens and how workers reach it. */
export interface RelayPlacement {
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Bind port (default: any free one). */
  port?: number;
  /** Where workers reach it, for `--dry-run` and the run's first lines. */
  advertised?: string;
}

/** What a backend runtime gets to work with. */
export interface BackendContext {
  opts: SubmitOptions;
  /** The coordinator's environment (read once by the script). */
  env: Readonly<Record<string, string | undefined>>;
  uid: number | null;
  /** The coordinator's pid when it is its own process (see `CliIo.pid`). */
  pid?: number;
  /** Directory relative paths are resolved against. */
  cwd: string;
  install: Installation;
  /** Diagnostics, one line each (stderr). */
  log: (line: string) => void;
  /** Ordinary output, one line each (stdout). */
  out: (line: string) => void;
  signal: AbortSignal;
}

/** A loaded backend. */
export interface BackendRuntime {
  /** The executor of a run (validates its inputs first: nothing is created on bad input). */
  createExecutor(ctx: BackendContext): Promise<Executor>;
  /** `--cleanup`: removes what earlier runs left behind; prints what it did; exit code. */
  cleanup(ctx: BackendContext): Promise<number>;
  /** The objects a run would create, for `--dry-run -o json|yaml`. */
  dryRunResources?(ctx: BackendContext, plan: Plan): unknown;
  /**
   * Where the embedded relay listens (default 127.0.0.1, any free port) and where workers
   * reach it (shown by `--dry-run`). Throws `UsageError` when workers could not reach it.
   */
  relay?(ctx: BackendContext): RelayPlacement | undefined;
  /** Called after a run here ended (reports written), before the exit code is returned. */
  afterRun?(ctx: BackendContext, run: { workDir: string; exitCode: number }): Promise<void>;
  /**
   * Runs the whole job somewhere else (kube hop mode) and returns its exit code, or
   * `undefined` to run it here.
   */
  runElsewhere?(ctx: BackendContext, spec: JobSpec): Promise<number | undefined>;
}

/** One backend: its name, its flags, and its lazily loaded runtime. */
export interface BackendDef {
  name: Backend;
  /** One line for help. */
  summary: string;
  /** The backend's own flags (help group = the backend's name). */
  flags: readonly FlagDef[];
  /** Loads the runtime (dynamic import of the heavy modules). */
  load(): Promise<BackendRuntime>;
}
