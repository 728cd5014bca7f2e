/**
 * Whether a run shows the live view (a status block redrawn in place) or today's plain lines.
 *
 * @module
 */
import { stagesOf } from "../coordinator/plan_view.ts";
import { LiveView } from "../log/live_view.ts";
import type { Plan } from "../plan/mod.ts";

/**
 * The live view needs a terminal on stdout that takes cursor movement and colours: not when
 * `NO_COLOR` is set to anything but "" (https://no-color.org) or `TERM` is `dumb`.
 */
export function wantsLiveView(
  stdoutIsTerminal: boolean,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return stdoutIsTerminal && !env.NO_COLOR && env.TERM !== "dumb";
}

/** Options of {@link liveViewFor}. */
export interface LiveViewForOptions {
  /** Present when stdout is a terminal (see `CliIo.terminal`). */
  terminal?: { columns(): number };
  env: Readonly<Record<string, string | undefined>>;
  plan: Plan;
  runId: string;
  /** Writes raw text to stdout, synchronously. */
  write: (s: string) => void;
}

/** The run's live view on a terminal; `undefined` (today's plain lines) otherwise. */
export function liveViewFor(o: LiveViewForOptions): LiveView | undefined {
  if (!o.terminal || !wantsLiveView(true, o.env)) return undefined;
  const columns = o.terminal.columns;
  return new LiveView({
    stages: stagesOf(o.plan),
    write: o.write,
    columns: () => {
      try {
        return columns();
      } catch {
        return 80; // the terminal went away
      }
    },
    title: `run ${o.runId}`,
  });
}
