/**
 * The download hasher follows a file as it is written, on a worker thread. These tests attack
 * what fetchFile relies on: the digest is the file's (bytes changed on disk behind the writer
 * are caught, not the chunks it was handed), a file cut short under it fails instead of
 * hanging, closing the store ends a running job promptly, and a cancelled job's worker is
 * reused, not leaked.
 */
import assert from "node:assert/strict";
import { randomBytes, tempDir, waitFor } from "../_helpers/mod.ts";
import { createHash } from "node:crypto";
import { FileHasher, INLINE_HASH_MAX } from "../../lib/relay/file_hasher.ts";

const MiB = 1 << 20;
/** The nice of each thread of this process, by thread id (field 19 of its stat). */
async function threadNices(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for await (const e of Deno.readDir("/proc/self/task")) {
    const stat = await Deno.readTextFile(`/proc/self/task/${e.name}/stat`).catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields.length > 16) out.set(Number(e.name), Number(fields[16]));
  }
  return out;
}

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Writes `data` to `path` in `parts` pieces, telling `grew` after each, pausing between. */
async function writeInParts(
  file: Deno.FsFile,
  data: Uint8Array,
  parts: number,
  grew: (c: Uint8Array) => void,
) {
  const step = Math.ceil(data.length / parts);
  for (let off = 0; off < data.length; off += step) {
    const c = data.subarray(off, Math.min(off + step, data.length));
    let w = 0;
    while (w < c.length) w += file.writeSync(c.subarray(w));
    grew(c);
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test("file hasher: the digest of a 24 MiB file written in 40 pieces is the file's sha256", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  using hasher = new FileHasher();
  const data = randomBytes(24 * MiB + 5);
  const path = `${dir}/f.bin`;
  using file = await Deno.open(path, { write: true, createNew: true });
  using job = await hasher.follow(path, data.length);
  await writeInParts(file, data, 40, (c) => job.grew(c));
  assert.deepEqual(await job.end(), { sha256: hex(data), size: data.length });
});

Deno.test("file hasher: bytes changed on disk behind the writer are what gets hashed", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  using hasher = new FileHasher();
  const data = randomBytes(INLINE_HASH_MAX * 2);
  const path = `${dir}/f.bin`;
  using file = await Deno.open(path, { write: true, createNew: true });
  using job = await hasher.follow(path, data.length);
  let w = 0;
  while (w < data.length) w += file.writeSync(data.subarray(w));
  // Another writer flips a byte before the hasher is told the bytes are there.
  using other = await Deno.open(path, { write: true });
  other.seekSync(12345, Deno.SeekMode.Start);
  other.writeSync(new Uint8Array([data[12345] ^ 0xff]));
  job.grew(data);
  const got = await job.end();
  const onDisk = await Deno.readFile(path);
  assert.notEqual(got.sha256, hex(data), "the chunks handed over were not what was hashed");
  assert.equal(got.sha256, hex(onDisk));
});

Deno.test("file hasher: a file cut short under it fails, it does not hang", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  using hasher = new FileHasher();
  const path = `${dir}/f.bin`;
  using file = await Deno.open(path, { write: true, createNew: true });
  using job = await hasher.follow(path, 32 * MiB);
  const data = randomBytes(16 * MiB);
  file.writeSync(data.subarray(0, 4 * MiB));
  await Deno.truncate(path, 1000);
  job.grew(data); // claims 16 MiB, the file has 1000 bytes
  await assert.rejects(job.end(), /shorter than what was written/);
});

Deno.test("file hasher: closing the store ends a running job within a second", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  using hasher = new FileHasher();
  const path = `${dir}/f.bin`;
  await Deno.writeFile(path, new Uint8Array(MiB));
  const job = await hasher.follow(path, 64 * MiB);
  job.grew(new Uint8Array(MiB)); // the writer never says it ended
  const ended = job.end();
  const t0 = performance.now();
  hasher.close();
  await assert.rejects(ended, /closed/);
  assert.ok(performance.now() - t0 < 1000, "end() settled promptly");
});

Deno.test("file hasher: a cancelled job's worker hashes the next file correctly", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  using hasher = new FileHasher({ keepIdle: 1 });
  const a = `${dir}/a.bin`;
  await Deno.writeFile(a, new Uint8Array(2 * MiB));
  {
    using job = await hasher.follow(a, 64 * MiB);
    job.grew(new Uint8Array(2 * MiB)); // dropped before end(): the download failed
  }
  const data = randomBytes(9 * MiB);
  const b = `${dir}/b.bin`;
  await Deno.writeFile(b, data);
  for (let i = 0; i < 3; i++) {
    using job = await hasher.follow(b, data.length);
    job.grew(data);
    assert.deepEqual(await job.end(), { sha256: hex(data), size: data.length }, `round ${i}`);
  }
});

Deno.test("file hasher: small files are hashed inline from the chunks, without a worker", async () => {
  using hasher = new FileHasher();
  const data = randomBytes(1000);
  // No such file: an inline job never reads it.
  using job = await hasher.follow("/nonexistent/gp-file-hasher", data.length);
  job.grew(data.subarray(0, 10));
  job.grew(data.subarray(10));
  assert.deepEqual(await job.end(), { sha256: hex(data), size: 1000 });
});

Deno.test("file hasher: with nice 19 (downloads) its thread runs at nice 19, the rest of the process does not", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  using hasher = new FileHasher({ nice: 19 });
  const before = await threadNices();
  const path = `${tmp.path}/f.bin`;
  await Deno.writeFile(path, new Uint8Array(MiB));
  using job = await hasher.follow(path, 64 * MiB);
  job.grew(new Uint8Array(MiB));
  const during = await threadNices();
  const fresh = [...during].filter(([tid]) => !before.has(tid));
  assert.ok(fresh.some(([, n]) => n === 19), `new threads and their nice: ${fresh}`);
  assert.equal(during.get(Deno.pid), before.get(Deno.pid), "the main thread's nice");
  for (const [tid, n] of before) {
    if (during.has(tid) && n !== 19) assert.equal(during.get(tid), n, `thread ${tid}`);
  }
});

Deno.test("file hasher: a file given with its inode is refused once the path holds another, or a symlink", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  using hasher = new FileHasher();
  const data = randomBytes(10 * MiB);
  const path = `${dir}/f.bin`;
  await Deno.writeFile(path, data);
  const ino = (await Deno.stat(path)).ino!;
  {
    using job = await hasher.follow({ path, ino }, data.length);
    job.grew(data);
    assert.deepEqual(await job.end(), { sha256: hex(data), size: data.length });
  }
  // Replaced by another file (new inode) between the stat and the hash.
  await Deno.writeFile(`${dir}/g.bin`, data);
  await Deno.rename(`${dir}/g.bin`, path);
  {
    using job = await hasher.follow({ path, ino }, data.length);
    job.grew(data);
    await assert.rejects(job.end(), /replaced/);
  }
  // A symlink to the original file is not followed.
  await Deno.remove(path);
  await Deno.writeFile(`${dir}/real.bin`, data);
  await Deno.symlink(`${dir}/real.bin`, path);
  {
    using job = await hasher.follow(
      { path, ino: (await Deno.stat(`${dir}/real.bin`)).ino! },
      data.length,
    );
    job.grew(data);
    await assert.rejects(job.end(), /ELOOP|symbolic|loop/i);
  }
});

Deno.test("file hasher: a worker warmed ahead is used by the next job, and closed if never used", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  const data = randomBytes(9 * MiB);
  await Deno.writeFile(`${dir}/f.bin`, data);
  const hasher = new FileHasher({ keepIdle: 0 });
  hasher.warm();
  hasher.warm(); // one start, not two
  const t0 = performance.now();
  const got = await hasher.hashFile({
    path: `${dir}/f.bin`,
    ino: Deno.statSync(`${dir}/f.bin`).ino!,
  }, data.length);
  assert.deepEqual(got, { sha256: hex(data), size: data.length });
  assert.ok(performance.now() - t0 < 5000);
  hasher.close();
  // Warmed and never used: its thread (told apart by its nice 19) ends with close().
  const niced = async () => [...(await threadNices()).values()].filter((n) => n === 19).length;
  const unused = new FileHasher({ nice: 19 });
  unused.warm();
  await waitFor(async () => (await niced()) === 1 || undefined, {
    timeoutMs: 10_000,
    what: "the warmed worker's thread",
  });
  unused.close();
  await waitFor(async () => (await niced()) === 0 || undefined, {
    timeoutMs: 10_000,
    what: "the warmed worker's thread to end",
  });
});

Deno.test("file hasher: a nice-19 hash starved by busy threads does not hold the download: a normal-priority one is raced in", async () => {
  await using tmp = await tempDir("gp-file-hasher-");
  const dir = tmp.path;
  using hasher = new FileHasher({ nice: 19 });
  // Two threads of this process spinning at normal priority take both CPUs of a 2-CPU machine.
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const spinSrc = `self.onmessage = (e) => { const s = new Int32Array(e.data);
    const until = Date.now() + 60000; while (Atomics.load(s, 0) === 0 && Date.now() < until) {}
    self.postMessage(0); };`;
  const url = URL.createObjectURL(new Blob([spinSrc], { type: "application/javascript" }));
  const spinners = Array.from(
    { length: Math.max(2, navigator.hardwareConcurrency) },
    () => new Worker(url, { type: "module" }),
  );
  try {
    const data = randomBytes(256 * MiB);
    const path = `${dir}/f.bin`;
    await Deno.writeFile(path, data);
    const job = await hasher.follow(path, data.length);
    for (const s of spinners) s.postMessage(stop.buffer);
    job.grew(data);
    const t0 = performance.now();
    const got = await job.end();
    const took = performance.now() - t0;
    assert.deepEqual(got, { sha256: hex(data), size: data.length });
    // Grace 1 s + 256 MiB at 200 MB/s (1.3 s) + a normal-priority hash beside the spinners.
    assert.ok(took < 8000, `the starved hash held the download ${took.toFixed(0)} ms`);
  } finally {
    Atomics.store(stop, 0, 1);
    await Promise.all(spinners.map((s) => new Promise((r) => (s.onmessage = r))));
    spinners.forEach((s) => s.terminate());
    URL.revokeObjectURL(url);
  }
});
