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
  env: Record<string, string | undefined>,
): boolean {
  return stdoutIsTerminal && !env.NO_COLOR && env.TERM !== "dumb";
}

/** Options of {@link liveViewFor}. */
export interface LiveViewForOptions {
  /** Whether stdout is a terminal. */
  isTerminal: boolean;
  env: Record<string, string | undefined>;
  plan: Plan;
  runId: string;
  /** Writes raw text to the terminal, synchronously. */
  write: (s: string) => void;
  /** The terminal's width. */
  columns: () => number;
}

/** The run's live view on a terminal; `undefined` (today's plain lines) otherwise. */
export function liveViewFor(o: LiveViewForOptions): LiveView | undefined {
  if (!wantsLiveView(o.isTerminal, o.env)) return undefined;
  return new LiveView({
    stages: stagesOf(o.plan),
    write: o.write,
    columns: o.columns,
    title: `run ${o.runId}`,
  });
}
