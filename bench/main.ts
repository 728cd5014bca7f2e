/**
 * `deno task bench`: runs the benchmark sections and prints their reports. Sections never
 * fail on speed; a section that crashes is reported and makes the exit code 1.
 *
 * Usage: deno task bench [section...]   (default: all; `--list` prints the names)
 *
 * To add a section: import its function and add one line to {@link SECTIONS}.
 *
 * @module
 */

import { relayBench } from "./relay_bench.ts";
import { localBench } from "./local_bench.ts";
import { podmanBench } from "./podman_bench.ts";
import { listingBench } from "./listing_bench.ts";
import { linesBench } from "./lines_bench.ts";

/** One benchmark section: prints its own lines through `print`. */
export interface BenchSection {
  name: string;
  description: string;
  run(print: (line: string) => void): Promise<void>;
}

/** The registry. One line per section. */
export const SECTIONS: BenchSection[] = [
  { name: "relay", description: "relay PUT/GET of 1 GiB vs bare node:http", run: relayBench },
  { name: "local", description: "local dispatch overhead, relay bytes/artifact", run: localBench },
  {
    name: "listing",
    description: "ListObjectsV2 pages over 1k/10k/100k objects vs walk+stat, relay RSS",
    run: listingBench,
  },
  { name: "podman", description: "podman per-stage overhead vs bare podman run", run: podmanBench },
  { name: "lines", description: "line splitter vs the quadratic one it replaced", run: linesBench },
];

async function main(args: string[]): Promise<number> {
  if (args.includes("--list")) {
    for (const s of SECTIONS) console.log(`${s.name.padEnd(10)} ${s.description}`);
    return 0;
  }
  const unknown = args.filter((a) => !SECTIONS.some((s) => s.name === a));
  if (unknown.length > 0) {
    console.error(`bench: unknown section(s): ${unknown.join(", ")} (see --list)`);
    return 2;
  }
  const chosen = args.length ? SECTIONS.filter((s) => args.includes(s.name)) : SECTIONS;
  let failed = 0;
  console.log(`gangplank bench — ${new Date().toISOString()} — ${Deno.build.target}`);
  for (const s of chosen) {
    console.log(`\n== ${s.name}: ${s.description}`);
    const t0 = performance.now();
    try {
      await s.run((line) => console.log(line));
      console.log(`-- ${s.name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      failed++;
      console.log(`-- ${s.name} FAILED: ${e instanceof Error ? e.stack ?? e.message : e}`);
    }
  }
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
