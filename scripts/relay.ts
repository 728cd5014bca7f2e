/**
 * `deno task relay`: serve a directory as an S3 endpoint until SIGINT/SIGTERM (Gangplank's
 * `gangplank minio`). Writes the minio config (mode 0600, never overwriting) once listening.
 *
 * Usage: deno task relay -d DIR -m FILE [--host ADDR] [--port N] [--bucket-dir name=dir]...
 *        [--abort-uploads-after HOURS]
 *
 * @module
 */
import { relay } from "../lib/cli/relay.ts";
import { runMain } from "./_harness.ts";

export { relay };

if (import.meta.main) await runMain("relay", relay, import.meta.url);
