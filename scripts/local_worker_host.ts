/**
 * A pre-started ("warm") local worker: the local backend starts this process ahead of time so
 * that loading the worker's modules (npm:minio and friends, most of a worker's start-up time)
 * happens before a stage needs it. It loads the worker module given as its only argument, then
 * waits for one JSON line on stdin — `{ "env": {...}, "cwd": "..." }`, the exact environment
 * and directory the worker would have been started with (stdin is a private pipe: the relay's
 * secret key travels there, never in argv) — replaces its own environment and directory with
 * them, and runs the module's exported `main()`, exiting with its code.
 *
 * Exit codes: the worker's; 70 when the module has no `main` export; 71 for a bad launch line.
 * An idle host whose stdin closes exits 0 without running anything.
 *
 * @module
 */

const EX_NO_MAIN = 70;
const EX_BAD_LAUNCH = 71;

async function readLine(): Promise<string | undefined> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += dec.decode(chunk, { stream: true });
    const nl = buf.indexOf("\n");
    if (nl >= 0) return buf.slice(0, nl);
  }
  return buf === "" ? undefined : buf;
}

async function host(moduleUrl: string): Promise<number> {
  const mod = await import(moduleUrl);
  if (typeof mod.main !== "function") {
    console.error(`local_worker_host: ${moduleUrl} exports no main()`);
    return EX_NO_MAIN;
  }
  const line = await readLine();
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
