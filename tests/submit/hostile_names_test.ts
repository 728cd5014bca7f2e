/**
 * Hostile names given to `submit`: a bucket that climbs out of the work dir, in the JobSpec or
 * as `--bucket`, is refused with exit 2 before anything is created, in a dry run and a real run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runScript, tempDir } from "../_helpers/mod.ts";

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      out.push(`${rel}${e.name}`);
      if (e.isDirectory) await walk(join(d, e.name), `${rel}${e.name}/`);
    }
  };
  await walk(dir, "");
  return out.sort();
}

Deno.test("submit: minio.bucket ../../x is refused at file:line:col, nothing created outside or in the work dir", async () => {
  await using tmp = await tempDir();
  const base = join(tmp.path, "a", "b");
  await Deno.mkdir(base, { recursive: true });
  const spec = join(base, "j.yaml");
  await Deno.writeTextFile(
    spec,
    "minio:\n  bucket: ../../x\nstages:\n- id: s\n  commands: [true]\n",
  );
  const before = await tree(tmp.path);
  for (const extra of [["--dry-run"], ["-w", join(base, "work")]]) {
    const r = await runScript("submit.ts", ["-s", spec, ...extra], { cwd: base });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `${spec}:2:11: minio.bucket: "../../x" is not an S3 bucket name: only lowercase letters, digits, '.' and '-' are allowed`,
    );
    assert.deepEqual(await tree(tmp.path), before, `after ${extra.join(" ")}`);
  }
});

Deno.test("submit: --bucket and --copy-build get the same checks as the file", async () => {
  await using tmp = await tempDir();
  const spec = join(tmp.path, "j.yaml");
  await Deno.writeTextFile(spec, "stages:\n- id: s\n  commands: [true]\n");
  for (
    const [args, want] of [
      [["--bucket", "UPPER_bad"], /^submit: --bucket: "UPPER_bad" is not an S3 bucket name/],
      [["--bucket", "../../x"], /^submit: --bucket: "\.\.\/\.\.\/x" is not an S3 bucket name/],
      [["--copy-build", "../evil"], /^submit: --copy-build: build id "\.\.\/evil" contains "\/"/],
    ] as const
  ) {
    const before = await tree(tmp.path);
    const r = await runScript("submit.ts", ["-s", spec, "--dry-run", ...args], { cwd: tmp.path });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), want);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.deepEqual(await tree(tmp.path), before);
  }
});

Deno.test("submit: -e and --env-file refuse the names gangplank sets itself (lifeline, WorkSpec parts)", async () => {
  await using tmp = await tempDir();
  const spec = join(tmp.path, "j.yaml");
  await Deno.writeTextFile(spec, "stages:\n- id: s\n  commands: [true]\n");
  const envFile = join(tmp.path, "w.env");
  await Deno.writeTextFile(envFile, "OK=1\nCOSA_WORK_POD_JSON_2_FILE=/etc/passwd\n");
  for (
    const [args, want] of [
      [["-e", "COSA_LIFELINE=stdin"], /-e COSA_LIFELINE: set by gangplank itself/],
      [["-e", "COSA_WORK_POD_JSON_PARTS=3"], /-e COSA_WORK_POD_JSON_PARTS: set by gangplank/],
      [
        ["--env-file", envFile],
        /--env-file .*w\.env:2: COSA_WORK_POD_JSON_2_FILE: set by gangplank/,
      ],
    ] as const
  ) {
    const r = await runScript("submit.ts", ["-s", spec, "--dry-run", ...args], { cwd: tmp.path });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, want);
  }
});
