/**
 * Fuzzing the JobSpec parser (seeded, reproducible): generated specs with random types and
 * keys, byte-level mutations of real specs, deep nesting, huge strings, alias bombs. Every
 * input must either parse (and then plan/expand/render without crashing) or be rejected with a
 * JobSpecError whose every line reads `file:line:col: path: message`.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  generateJobSpec,
  JobSpecError,
  jobSpecToYaml,
  parseJobSpec,
  renderTemplate,
  stageCommands,
} from "../../lib/jobspec/mod.ts";
import { UsageError } from "../../lib/errors/mod.ts";
import { planJob } from "../../lib/plan/mod.ts";
import { ROOT } from "../_helpers/mod.ts";

function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STAGE_KEYS = [
  "id",
  "description",
  "concurrent",
  "direct_exec",
  "not_blocking",
  "require_artifacts",
  "request_artifacts",
  "build_artifacts",
  "commands",
  "publish_artifacts",
  "prep_commands",
  "post_commands",
  "post_always",
  "execution_order",
  "return_cache",
  "require_cache",
  "request_cache",
  "return_cache_repo",
  "require_cache_repo",
  "request_cache_repo",
  "return_files",
  "kola_tests",
  "overrides",
  "bogus_key",
  "command",
];
const TOP_KEYS = [
  "job",
  "recipe",
  "minio",
  "stages",
  "delay_meta_merge",
  "copy-build",
  "publish_oscontainer",
  "clouds_cfgs",
  "archives",
  "spec",
  "oscontainer",
  "unknown",
];
const WORDS = [
  "base",
  "qemu",
  "metal",
  "metal4k",
  "live",
  "aws",
  "gcp",
  "finalize",
  "ostree",
  "basicBios",
  "iso",
  "darkCloud",
  "../etc",
  "/abs",
  "file://x.rpm",
  "https://h/r.repo",
  "{{.JobSpec.Job.BuildName}}",
  "{{ .Meta.BuildID }}",
  "{{ if }}",
  "echo hi",
  "",
  " ",
  "true",
  "1",
  "-3",
  "null",
  "~",
  "a:b",
  "{{",
  "日本",
  "x\ny",
  "'",
  '"',
  "&a",
  "*a",
];

const MUT_CHARS = [
  ":",
  "-",
  "[",
  "]",
  "{",
  "}",
  "#",
  "&",
  "*",
  "!",
  "|",
  ">",
  "'",
  '"',
  "%",
  "@",
  "`",
  ",",
  "\n",
  " ",
  "\t",
  "?",
  "a",
  "0",
  "\u0000",
  "\ufeff",
];

function randomValue(rnd: () => number, depth: number): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const r = rnd();
  if (depth > 4 || r < 0.3) return pick(WORDS);
  if (r < 0.4) return Math.floor(rnd() * 2000) - 1000;
  if (r < 0.5) return rnd() < 0.5;
  if (r < 0.55) return rnd() * 10;
  if (r < 0.6) return null;
  if (r < 0.8) {
    return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth + 1));
  }
  const o: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(rnd() * 4); i++) o[pick(STAGE_KEYS)] = randomValue(rnd, depth + 1);
  return o;
}

function randomSpec(rnd: () => number): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const spec: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(rnd() * 5); i++) spec[pick(TOP_KEYS)] = randomValue(rnd, 1);
  const stages = [];
  for (let i = 0; i < Math.floor(rnd() * 5); i++) {
    const s: Record<string, unknown> = {};
    if (rnd() < 0.9) s.id = rnd() < 0.2 ? pick(["a", "b", ""]) : `s${i}`;
    for (let j = 0; j < 1 + Math.floor(rnd() * 5); j++) {
      const k = pick(STAGE_KEYS);
      // mostly well-typed values, sometimes anything
      if (rnd() < 0.3) s[k] = randomValue(rnd, 2);
      else if (k.endsWith("_order")) s[k] = Math.floor(rnd() * 6);
      else if (/^(concurrent|direct_exec|not_blocking|post_always|re\w+_cache(_repo)?)$/.test(k)) {
        s[k] = rnd() < 0.5;
      } else if (k === "id" || k === "description") s[k] = pick(WORDS);
      else if (k === "overrides") {
        s[k] = [{ uri: pick(WORDS), rpm: rnd() < 0.5, tarball: rnd() < 0.5 }];
      } else s[k] = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(WORDS));
    }
    stages.push(s);
  }
  if (rnd() < 0.9) spec.stages = stages;
  return spec;
}

function mutate(rnd: () => number, text: string): string {
  let t = text;
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(rnd() * (t.length + 1));
    const op = rnd();
    if (op < 0.35) t = t.slice(0, pos) + t.slice(pos + 1 + Math.floor(rnd() * 3));
    else if (op < 0.7) {
      t = t.slice(0, pos) + MUT_CHARS[Math.floor(rnd() * MUT_CHARS.length)] + t.slice(pos);
    } else {
      const lines = t.split("\n");
      const a = Math.floor(rnd() * lines.length);
      const b = Math.floor(rnd() * lines.length);
      if (op < 0.85) [lines[a], lines[b]] = [lines[b], lines[a]];
      else lines.splice(a, 0, lines[b]);
      t = lines.join("\n");
    }
  }
  return t;
}

const LINE = /^[^\n]*:\d+:\d+: [^\n]+$/;

function check(text: string, label: string, lenient: boolean) {
  let result;
  try {
    result = parseJobSpec(text, { file: "fuzz.yaml", lenient });
  } catch (e) {
    assert.ok(e instanceof JobSpecError, `${label}: not a JobSpecError: ${(e as Error)?.stack}`);
    assert.ok(e.issues.length > 0, label);
    for (const line of e.message.split("\n")) {
      assert.match(line, LINE, `${label}: ${JSON.stringify(line)}`);
      assert.ok(line.startsWith("fuzz.yaml:"), label);
    }
    for (const i of e.issues) assert.ok(i.line >= 0 && i.col >= 0, label);
    return "rejected";
  }
  // Accepted specs must plan, expand and render without crashing (typed errors only).
  const { spec } = result;
  try {
    const plan = planJob(spec);
    for (const s of plan.stages) {
      for (const c of [...s.commands.prep, ...s.commands.main, ...s.commands.post]) {
        try {
          renderTemplate(c, { JobSpec: spec, Meta: { buildid: "1", images: {} } });
        } catch (e) {
          assert.ok(e instanceof UsageError, `${label}: render: ${(e as Error)?.stack}`);
        }
      }
    }
  } catch (e) {
    assert.ok(e instanceof UsageError, `${label}: plan: ${(e as Error)?.stack}`);
  }
  for (const s of spec.stages) {
    try {
      stageCommands(s, spec);
    } catch (e) {
      assert.ok(e instanceof UsageError, `${label}: stageCommands: ${(e as Error)?.stack}`);
    }
  }
  return "accepted";
}

Deno.test("fuzz: 1,200 generated and mutated JobSpecs never crash the parser", () => {
  const rnd = prng(0x9a17);
  const counts = { accepted: 0, rejected: 0 };
  const seeds = [
    Deno.readTextFileSync(`${ROOT}/examples/demo.jobspec.yaml`),
    Deno.readTextFileSync("/work/shared/fixtures/jobspec/upstream-mock-os.yaml"),
    Deno.readTextFileSync("/work/shared/fixtures/jobspec/upstream-docs-example.yaml"),
    jobSpecToYaml(
      generateJobSpec({ artifacts: ["base,qemu+metal", "live", "finalize"], kolaTests: ["iso"] }),
    ),
  ];
  for (let i = 0; i < 500; i++) {
    const text = stringify(randomSpec(rnd));
    counts[check(text, `generated #${i}`, rnd() < 0.3)]++;
  }
  for (let i = 0; i < 600; i++) {
    const text = mutate(rnd, seeds[i % seeds.length]);
    counts[check(text, `mutated #${i}`, rnd() < 0.3)]++;
  }
  // pathological shapes
  const big = "x".repeat(512 * 1024);
  const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 9; i++) {
    bomb.push(
      `${"abcdefghij"[i]}: &${"abcdefghij"[i]} [${
        Array(10).fill(`*${"abcdefghij"[i - 1]}`).join(", ")
      }]`,
    );
  }
  const specials = [
    "a: " + "[".repeat(5000),
    "stages:\n" + "- ".repeat(5000) + "x",
    "{".repeat(10000),
    `stages:\n- id: big\n  commands: ["${big}"]\n`,
    `job:\n  build_name: ${big}\nstages:\n- id: a\n  commands: ['echo {{.JobSpec.Job.BuildName}}']\n`,
    bomb.join("\n") + "\nstages: *i\n",
    "stages:\n- &s {id: a, commands: [x]}\n- *s\n",
    "stages: *nope\n",
    "!!binary aGVsbG8=\n",
    "job: !!int x\n",
    "%YAML 1.2\n---\njob: {}\n",
    "\ufeffjob: {}\n",
    "\u0000",
    "job:\t{}\n",
    `${"\n".repeat(20000)}job: 3`,
    Array.from({ length: 3000 }, (_, i) => `- id: s${i}`).join("\n"),
    "stages:\n" +
    Array.from(
      { length: 300 },
      (_, i) =>
        `- {id: s${i}, execution_order: ${i % 7}, build_artifacts: [${
          ["base", "metal", "qemu", "aws"][i % 4]
        }]}`,
    ).join("\n"),
  ];
  specials.forEach((t, i) => counts[check(t, `special #${i}`, false)]++);
  const total = counts.accepted + counts.rejected;
  assert.ok(total >= 1000, `${total}`);
  // the generator must exercise both outcomes
  assert.ok(counts.accepted > 50, JSON.stringify(counts));
  assert.ok(counts.rejected > 500, JSON.stringify(counts));
});
