/**
 * A pre-started ("warm") local worker: the local backend starts this process ahead of time so
 * that loading the worker's modules (npm:minio and friends, most of a worker's start-up time)
 * happens before a stage needs it. It loads the worker module given as its only argument, then
 * waits for one JSON line on stdin — `{ "env": {...}, "cwd": "..." }`, the exact environment
 * and directory the worker would have been started with (stdin is a private pipe: the relay's
 * secret key travels there, never in argv) — replaces its own environment and directory with
 * them, and runs the module's exported `main()`, exiting with its code.
 *
 * While it waits, it calls the module's `warmUp()` when it exports one (modules the worker
 * loads on first use, loaded ahead of time; a launch does not wait for it).
 *
 * Exit codes: the worker's; 70 when the module has no `main` export; 71 for a bad launch line.
 * An idle host whose stdin closes exits 0 without running anything. After the launch, the rest
 * of stdin goes to the module's `takeLifeline()` when it exports one: with `COSA_LIFELINE=stdin`
 * it is the coordinator's lifeline (see lib/worker/lifeline.ts).
 *
 * @module
 */

const EX_NO_MAIN = 70;
const EX_BAD_LAUNCH = 71;

/** The first line of stdin (linear in its length), and the reader to keep watching stdin. */
async function readLine(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string | undefined> {
  const dec = new TextDecoder();
  const parts: string[] = [];
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    const text = dec.decode(r.value, { stream: true });
    const nl = text.indexOf("\n");
    if (nl >= 0) return parts.join("") + text.slice(0, nl);
    parts.push(text);
  }
  const rest = parts.join("") + dec.decode();
  return rest === "" ? undefined : rest;
}

async function host(moduleUrl: string): Promise<number> {
  const mod = await import(moduleUrl);
  if (typeof mod.main !== "function") {
    console.error(`local_worker_host: ${moduleUrl} exports no main()`);
    return EX_NO_MAIN;
  }
  // Not awaited: whatever the stage needs of it, it awaits itself.
  if (typeof mod.warmUp === "function") mod.warmUp().catch(() => {});
  const stdin = Deno.stdin.readable.getReader();
  const line = await readLine(stdin);
  if (line === undefined) return 0;
  let launch: { env: Record<string, string>; cwd: string };
  try {
    launch = JSON.parse(line);
    if (!launch || typeof launch.cwd !== "string" || typeof launch.env !== "object") {
      throw new Error("expected {env, cwd}");
    }
  } catch (e) {
    console.error(`local_worker_host: bad launch line: ${(e as Error).message}`);
    return EX_BAD_LAUNCH;
  }
  for (const k of Object.keys(Deno.env.toObject())) Deno.env.delete(k);
  for (const [k, v] of Object.entries(launch.env)) Deno.env.set(k, String(v));
  Deno.chdir(launch.cwd);
  // The rest of stdin is the coordinator's lifeline (the worker module watches it).
  if (typeof mod.takeLifeline === "function") mod.takeLifeline(() => stdin);
  return await mod.main();
}

if (import.meta.main) {
  const url = Deno.args[0];
  if (!url) {
    console.error("usage: local_worker_host.ts <worker module URL>");
    Deno.exit(2);
  }
  Deno.exit(await host(url));
}
