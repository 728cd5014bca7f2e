/**
 * Fakes for the worker's seams: an in-memory artifact store and a command runner that hands
 * each script's text to a JS function.
 */

import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { addBuild, type CosaMeta, readBuilds, writeBuilds } from "../../lib/cosa/mod.ts";
import type {
  ArtifactStoreLike,
  CommandRunner,
  FetchExpect,
  RunScriptOptions,
  RunScriptResult,
} from "../../lib/worker/mod.ts";

export const sha256 = (d: Uint8Array | string) => createHash("sha256").update(d).digest("hex");

/** In-memory S3: `bucket/key` → bytes. */
export class MemStore implements ArtifactStoreLike {
  objects = new Map<string, Uint8Array>();
  buckets = new Set<string>();
  fetches: string[] = [];
  puts: string[] = [];
  /** Keys whose upload fails. */
  failPut = new Set<string>();
  /** Called right after putJSON/putJSONIf wrote (to simulate a concurrent writer). */
  afterPutJSON?: (bucket: string, key: string) => void;
  /** Like an S3 endpoint without conditional writes: If-Match / If-None-Match are ignored. */
  ignoreConditions = false;
  /** Conditional writes refused with 412. */
  preconditionFailures = 0;
  /** Yield to other tasks between a read and a write (lets parallel workers interleave). */
  interleave = false;
  etags = new Map<string, string>();
  #version = 0;

  put(bucket: string, key: string, data: Uint8Array | string) {
    this.buckets.add(bucket);
    this.etags.set(`${bucket}/${key}`, `"v${++this.#version}"`);
    this.objects.set(
      `${bucket}/${key}`,
      typeof data === "string" ? new TextEncoder().encode(data) : data,
    );
  }
  get(bucket: string, key: string): Uint8Array | undefined {
    return this.objects.get(`${bucket}/${key}`);
  }
  text(bucket: string, key: string): string | undefined {
    const d = this.get(bucket, key);
    return d && new TextDecoder().decode(d);
  }
  ensureBucket(bucket: string): Promise<void> {
    this.buckets.add(bucket);
    return Promise.resolve();
  }
  async fetchFile(
    bucket: string,
    key: string,
    dest: string,
    opts: { signal: AbortSignal; expect?: FetchExpect },
  ): Promise<{ bytes: number; skipped: boolean }> {
    const data = this.get(bucket, key);
    if (!data) throw new Error(`no such object ${bucket}/${key}`);
    if (opts.expect) {
      try {
        if (sha256(await readFile(dest)) === opts.expect.sha256) return { bytes: 0, skipped: true };
      } catch { /* not there */ }
      if (sha256(data) !== opts.expect.sha256) throw new Error(`sha256 mismatch for ${key}`);
      if (opts.expect.size !== undefined && opts.expect.size !== data.length) {
        throw new Error(`size mismatch for ${key}`);
      }
    }
    this.fetches.push(key);
    const tmp = `${dest}.part`;
    await writeFile(tmp, data);
    await rename(tmp, dest);
    return { bytes: data.length, skipped: false };
  }
  /** Keys uploaded with `ifNoneMatch` (create only). */
  creates: string[] = [];
  async putFile(
    bucket: string,
    key: string,
    path: string,
    opts: { ifNoneMatch?: boolean } = {},
  ): Promise<{ bytes: number }> {
    if (this.failPut.has(key)) throw new Error("simulated upload failure");
    if (!this.buckets.has(bucket)) throw new Error(`no bucket ${bucket}`);
    if (opts.ifNoneMatch) {
      if (this.get(bucket, key) && !this.ignoreConditions) {
        throw new Error(`PreconditionFailed: ${key} exists`);
      }
      this.creates.push(key);
    }
    this.puts.push(key);
    const data = await readFile(path);
    this.put(bucket, key, data);
    return { bytes: data.length };
  }
  putJSON(bucket: string, key: string, value: unknown): Promise<{ bytes: number }> {
    if (this.failPut.has(key)) return Promise.reject(new Error("simulated upload failure"));
    this.puts.push(key);
    const text = JSON.stringify(value);
    this.put(bucket, key, text);
    this.afterPutJSON?.(bucket, key);
    return Promise.resolve({ bytes: text.length });
  }
  async getJSONVersioned(
    bucket: string,
    key: string,
  ): Promise<{ value: unknown; etag: string } | undefined> {
    if (this.interleave) await new Promise((r) => setTimeout(r, Math.random() * 3));
    const t = this.text(bucket, key);
    return t === undefined
      ? undefined
      : { value: JSON.parse(t), etag: this.etags.get(`${bucket}/${key}`)! };
  }
  async putJSONIf(
    bucket: string,
    key: string,
    value: unknown,
    cond: { etag: string } | { absent: true },
  ): Promise<boolean> {
    if (this.interleave) await new Promise((r) => setTimeout(r, Math.random() * 3));
    if (this.failPut.has(key)) throw new Error("simulated upload failure");
    const cur = this.etags.get(`${bucket}/${key}`);
    const holds = "absent" in cond ? !this.get(bucket, key) : cur === cond.etag;
    if (!holds && !this.ignoreConditions) {
      this.preconditionFailures++;
      return false;
    }
    this.puts.push(key);
    this.put(bucket, key, JSON.stringify(value));
    this.afterPutJSON?.(bucket, key);
    return true;
  }
  getJSON<T = unknown>(bucket: string, key: string): Promise<T | undefined> {
    const t = this.text(bucket, key);
    return Promise.resolve(t === undefined ? undefined : JSON.parse(t) as T);
  }
}

/** A script as the fake runner saw it. */
export interface SeenScript {
  text: string;
  env: Record<string, string>;
  cwd: string;
  start: number;
  end: number;
}

/** Runs scripts by handing their text to `handler` (returns the exit code). */
export class FakeRunner implements CommandRunner {
  seen: SeenScript[] = [];
  constructor(
    readonly handler: (
      text: string,
      opts: RunScriptOptions,
    ) => number | Promise<number> = () => 0,
  ) {}
  async run(script: string, opts: RunScriptOptions): Promise<RunScriptResult> {
    const text = await readFile(script, "utf8");
    const rec: SeenScript = { text, env: opts.env, cwd: opts.cwd, start: Date.now(), end: 0 };
    this.seen.push(rec);
    const code = await this.handler(text, opts);
    rec.end = Date.now();
    return { code, signal: null };
  }
}

/** Deterministic artifact content. */
export const artifactData = (id: string, name: string) => `${id}:${name}:`.repeat(100);

/** Makes (or extends) a build in `<srv>/builds` like cosa does. */
export async function fakeBuild(
  srv: string,
  id: string,
  names: string[],
  arch = "x86_64",
): Promise<CosaMeta> {
  const dir = join(srv, "builds", id, arch);
  await mkdir(dir, { recursive: true });
  let meta: CosaMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8"));
  } catch {
    meta = { buildid: id, name: "t", images: {} };
  }
  for (const n of names) {
    const file = `t-${id}-${n}.img`;
    const data = artifactData(id, n);
    await writeFile(join(dir, file), data);
    meta.images![n] = { path: file, sha256: sha256(data), size: data.length };
  }
  await writeFile(join(dir, "meta.json"), JSON.stringify(meta));
  const builds = await readBuilds(join(srv, "builds"));
  if (!builds?.builds.some((b) => b.id === id)) {
    await writeBuilds(join(srv, "builds"), addBuild(builds, id, arch));
  }
  return meta;
}

export async function writeRel(root: string, rel: string, data: string) {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await writeFile(join(root, rel), data);
}
