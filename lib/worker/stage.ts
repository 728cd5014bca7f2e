/**
 * Executing one JobSpec stage on a worker (§3.6 with its bugs fixed): prep (one script), the
 * main commands (each its own script; serial, or concurrent started ~50 ms apart, waiting for
 * all and collecting every failure), then post (one script; `post_always` runs it after a
 * failure too). Commands are rendered (plain-text templates over `{JobSpec, Meta}`) before any
 * of them runs, so a template error has no side effects.
 *
 * @module
 */

import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
// Direct module imports (not mod.ts): a worker starts for every stage, and the YAML parser and
// the JSON-schema validator behind the mod.ts files cost a third of a second to load.
import type { JobSpec, Stage } from "../jobspec/mod.ts";
import { stageCommands } from "../jobspec/shorthands.ts";
import { renderTemplate } from "../jobspec/template.ts";
import type { CosaMeta } from "../cosa/mod.ts";
import type { CommandRunner } from "./runner.ts";
import { pause as sleep } from "../toolkit/delay.ts";

/** Which part of a stage a script belongs to. */
export type ScriptPart = "prep" | "main" | "post" | "init";

/** One command (script) that did not succeed. */
export interface CommandFailure {
  /** Stage id. */
  stageId: string;
  /** Which part of the stage. */
  part: ScriptPart;
  /** 1-based index of the main command (0 for prep/post/init). */
  index: number;
  /** First line of the command, shortened, for messages. */
  command: string;
  /** Its exit code. */
  exitCode: number;
  /** The signal that killed it, if any. */
  signal: string | null;
  /** `stage "build-base": main command 2 (cosa build) exited with code 3` */
  message: string;
}

/** How a stage ended. */
export interface StageRunOutcome {
  stageId: string;
  /** 0 on success; otherwise the exit code of the first failing command (by position). */
  exitCode: number;
  failures: CommandFailure[];
  /** Set when the stage could not even start (template error, no commands). */
  error?: string;
}

/** Dependencies of {@link runStage}. */
export interface StageDeps {
  runner: CommandRunner;
  env: Record<string, string>;
  cwd: string;
  /** A private directory for the rendered scripts. */
  scriptDir: string;
  log: (line: string) => void;
  signal: AbortSignal;
  /** Delay between starts of concurrent commands (default 50 ms). */
  staggerMs?: number;
}

/** Shortens a command for messages: its first non-empty line, at most 60 characters. */
export function commandLabel(cmd: string): string {
  const first = cmd.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  return first.length > 60 ? `${first.slice(0, 57)}...` : first;
}

function describe(stageId: string, part: ScriptPart, index: number, cmd: string): string {
  const what = part === "main"
    ? `main command ${index} (${commandLabel(cmd)})`
    : part === "init"
    ? `cosa init`
    : `${part} commands`;
  return `stage "${stageId}": ${what}`;
}

interface Script {
  part: ScriptPart;
  index: number;
  source: string;
  file: string;
}

/**
 * Runs one script file through the runner and turns a non-zero end into a
 * {@link CommandFailure}.
 */
export async function runScriptFile(
  s: { part: ScriptPart; index: number; source: string; file: string },
  stageId: string,
  deps: StageDeps,
): Promise<CommandFailure | undefined> {
  const r = await deps.runner.run(s.file, {
    env: deps.env,
    cwd: deps.cwd,
    signal: deps.signal,
    onLine: (line) => deps.log(line),
  });
  if (r.code === 0 && !r.signal) return undefined;
  const base = describe(stageId, s.part, s.index, s.source);
  const message = r.signal
    ? `${base} was killed by ${r.signal} (exit code ${r.code})`
    : `${base} exited with code ${r.code}`;
  return {
    stageId,
    part: s.part,
    index: s.index,
    command: commandLabel(s.source),
    exitCode: r.code || 1,
    signal: r.signal,
    message,
  };
}

/**
 * Renders and runs a stage. Never throws for command failures: they are reported in the
 * outcome (exit code = the first failing command's, by position). Throws only for I/O errors
 * writing the scripts.
 */
export async function runStage(
  stage: Stage,
  spec: JobSpec,
  meta: CosaMeta | undefined,
  deps: StageDeps,
): Promise<StageRunOutcome> {
  const id = stage.id;
  let cmds: { prep: string[]; main: string[]; post: string[] };
  try {
    cmds = stageCommands(stage, spec);
  } catch (e) {
    return fail(id, `stage "${id}": ${(e as Error).message}`, 2);
  }
  if (cmds.prep.length === 0 && cmds.main.length === 0 && cmds.post.length === 0) {
    return fail(id, `stage "${id}": no commands to execute`, 2);
  }
  const data = meta ? { JobSpec: spec, Meta: meta } : { JobSpec: spec };
  const scripts: Script[] = [];
  const add = async (part: ScriptPart, index: number, source: string) => {
    let text: string;
    try {
      text = renderTemplate(source, data);
    } catch (e) {
      throw new RenderFailure(
        `${describe(id, part, index, source)}: cannot render: ${(e as Error).message}`,
      );
    }
    const file = join(deps.scriptDir, part === "main" ? `script-${index}.sh` : `${part}.sh`);
    await writeFile(file, text.endsWith("\n") ? text : text + "\n", { mode: 0o700 });
    await chmod(file, 0o700);
    scripts.push({ part, index, source, file });
  };
  try {
    if (cmds.prep.length) await add("prep", 0, cmds.prep.join("\n"));
    for (const [i, c] of cmds.main.entries()) await add("main", i + 1, c);
    if (cmds.post.length) await add("post", 0, cmds.post.join("\n"));
  } catch (e) {
    if (e instanceof RenderFailure) return fail(id, e.message, 2);
    throw e;
  }
  const prep = scripts.find((s) => s.part === "prep");
  const main = scripts.filter((s) => s.part === "main");
  const post = scripts.find((s) => s.part === "post");

  const failures: CommandFailure[] = [];
  if (prep) {
    deps.log(`gangway: stage "${id}": running prep commands`);
    const f = await runScriptFile(prep, id, deps);
    if (f) failures.push(f);
  }
  if (failures.length === 0 && !deps.signal.aborted && main.length) {
    if (stage.concurrent) {
      deps.log(`gangway: stage "${id}": running ${main.length} command(s) concurrently`);
      const runs: Promise<CommandFailure | undefined>[] = [];
      for (const [k, s] of main.entries()) {
        if (k > 0) await sleep(deps.staggerMs ?? 50, deps.signal);
        if (deps.signal.aborted) break;
        runs.push(runScriptFile(s, id, deps));
      }
      for (const f of await Promise.all(runs)) if (f) failures.push(f);
    } else {
      for (const s of main) {
        if (deps.signal.aborted) break;
        deps.log(`gangway: stage "${id}": running main command ${s.index}`);
        const f = await runScriptFile(s, id, deps);
        if (f) {
          failures.push(f);
          break;
        }
      }
    }
  }
  if (post && !deps.signal.aborted && (failures.length === 0 || stage.post_always)) {
    deps.log(`gangway: stage "${id}": running post commands`);
    const f = await runScriptFile(post, id, deps);
    if (f) failures.push(f);
  }
  const exitCode = deps.signal.aborted && failures.length === 0
    ? 130
    : failures.length
    ? failures[0].exitCode
    : 0;
  return { stageId: id, exitCode, failures };
}

class RenderFailure extends Error {}

function fail(stageId: string, error: string, exitCode: number): StageRunOutcome {
  return { stageId, exitCode, failures: [], error };
}
