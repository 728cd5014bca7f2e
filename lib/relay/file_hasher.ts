/**
 * The SHA-256 of a file while it is being written, on a worker thread that follows the
 * writer: the writer says how many bytes are in the file ({@link FileHashJob.grew}), the
 * worker reads and hashes them from the page cache as CPU allows, and goes on after the last
 * byte while the writer fsyncs. Receiving and writing never wait for the hash, nothing is
 * buffered in memory, and what is hashed is what the file holds (a write that went wrong is
 * caught, not only a transfer). The downloads of the store's client use it at the lowest
 * priority; the relay uses it to hash a file it serves without blocking its event loop.
 *
 * The worker comes from inline source (a blob URL), so it survives bundling. Without workers
 * (or for small files) the bytes are hashed on the calling thread as they are written.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import * as fs from "node:fs";

/** Below this size a file is hashed on the calling thread (a worker hand-off costs more). */
export const INLINE_HASH_MAX = 8 << 20;

/** Control words shared with the worker (BigInt64Array indexes). */
const WRITTEN = 0;
const STATE = 1;
/** Bytes hashed so far (written by the worker). */
const HASHED = 2;
const ENDED = 1n;
const CANCELLED = 2n;

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
self.onmessage = (ev) => {
  if (ev.data.nice !== undefined) {
    try {
      // Linux: this thread alone (per-thread nice).
      const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
      if (Number.isSafeInteger(tid) && tid > 0) os.setPriority(tid, ev.data.nice);
    } catch { /* elsewhere: normal priority */ }
    return self.postMessage({ ready: true });
  }
  const { path, ino, ctl } = ev.data;
  const c = new BigInt64Array(ctl);
  let fd;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    if (ino !== undefined && fs.fstatSync(fd).ino !== ino) {
      throw new Error("the file was replaced before it could be hashed");
    }
    const h = createHash("sha256");
    const buf = new Uint8Array(1 << 20);
    let pos = 0;
    for (;;) {
      const written = Number(Atomics.load(c, ${WRITTEN}));
      const state = Atomics.load(c, ${STATE});
      if (state === ${CANCELLED}n) return self.postMessage({ cancelled: true });
      if (written > pos) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, written - pos), pos);
        if (n === 0) throw new Error("file is shorter than what was written to it");
        h.update(buf.subarray(0, n));
        pos += n;
        Atomics.store(c, ${HASHED}, BigInt(pos));
      } else if (state === ${ENDED}n) {
        return self.postMessage({ sha256: h.digest("hex"), size: pos });
      } else {
        Atomics.wait(c, ${WRITTEN}, BigInt(written), 200);
      }
    }
  } catch (e) {
    self.postMessage({ error: String(e?.message ?? e) });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
};
self.postMessage({ loaded: true });
`;

/** One file being hashed as it is written. */
export interface FileHashJob extends Disposable {
  /** `chunk` was just appended to the file (in order). */
  grew(chunk: Uint8Array): void;
  /** Nothing more will be written: the file's sha256 (hex) and the size hashed. */
  end(): Promise<{ sha256: string; size: number }>;
}

/** Hashes on the calling thread, chunk by chunk (small files, no workers). */
class InlineJob implements FileHashJob {
  #h: Hash = createHash("sha256");
  #size = 0;
  grew(chunk: Uint8Array): void {
    this.#h.update(chunk);
    this.#size += chunk.length;
  }
  end() {
    return Promise.resolve({ sha256: this.#h.digest("hex"), size: this.#size });
  }
  [Symbol.dispose]() {}
}

type Answer = { sha256?: string; size?: number; error?: string; cancelled?: boolean };

/**
 * After the last write, how long a low-priority hash may take before a normal-priority one
 * of the whole file is raced against it: this grace plus the bytes left at
 * {@link RESCUE_RATE} bytes per second. A hash starved by other busy threads of ours (nice 19
 * gets ~1.5% of a CPU beside each of them) cannot hold a download for more than that.
 */
const RESCUE_GRACE_MS = 1000;
const RESCUE_RATE = 200e6;

/** Hashes a complete file at normal priority (the rescue of a starved low-priority job). */
type Rescue = (file: string | { path: string; ino: number }, size: number) => Promise<FileHashJob>;

/** A worker following one file; its answer settles `result`. */
class TailJob implements FileHashJob {
  readonly #c = new BigInt64Array(new SharedArrayBuffer(24));
  #written = 0;
  #settled = false;
  readonly #result: Promise<Answer>;
  /** Settles the job from outside (its hasher was closed). */
  fail!: (why: string) => void;

  constructor(
    readonly worker: Worker,
    readonly file: string | { path: string; ino: number },
    release: (reusable: boolean) => void,
    readonly rescue?: Rescue,
  ) {
    this.#result = new Promise<Answer>((resolve) => {
      this.fail = (why) => resolve({ error: why });
      worker.onmessage = (ev: MessageEvent<Answer>) => resolve(ev.data);
      worker.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        resolve({ error: ev.message });
      };
    }).then((a) => {
      this.#settled = true;
      // A worker that answered is idle again; one that failed is not trusted again.
      release(a.error === undefined);
      return a;
    });
    worker.postMessage(
      typeof file === "string"
        ? { path: file, ctl: this.#c.buffer }
        : { path: file.path, ino: file.ino, ctl: this.#c.buffer },
    );
  }

  grew(chunk: Uint8Array): void {
    this.wrote(chunk.length);
  }

  /** `n` more bytes are in the file. */
  wrote(n: number): void {
    this.#written += n;
    Atomics.store(this.#c, WRITTEN, BigInt(this.#written));
    Atomics.notify(this.#c, WRITTEN);
  }

  async end(): Promise<{ sha256: string; size: number }> {
    Atomics.store(this.#c, STATE, ENDED);
    Atomics.notify(this.#c, WRITTEN);
    const a = this.rescue ? await this.#orRescued(this.rescue) : await this.#result;
    if (a.error !== undefined || a.sha256 === undefined) {
      throw new Error(`hashing the file failed: ${a.error ?? "cancelled"}`);
    }
    return { sha256: a.sha256, size: a.size ?? 0 };
  }

  /** The worker's answer, or a normal-priority hash's if the worker is late (see RESCUE_*). */
  async #orRescued(rescue: Rescue): Promise<Answer> {
    const left = this.#written - Number(Atomics.load(this.#c, HASHED));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), RESCUE_GRACE_MS + (left / RESCUE_RATE) * 1000);
    });
    const first = await Promise.race([this.#result, late]);
    clearTimeout(timer);
    if (first) return first;
    let job: FileHashJob | undefined;
    try {
      job = await rescue(this.file, this.#written);
      const rescued = job.end().then(
        (r): Answer => r,
        (e): Answer => ({ error: String((e as Error)?.message ?? e) }),
      );
      const a = await Promise.race([this.#result, rescued]);
      return a.error === undefined ? a : await this.#result;
    } finally {
      job?.[Symbol.dispose]();
      this[Symbol.dispose]();
    }
  }

  [Symbol.dispose](): void {
    if (this.#settled) return;
    Atomics.store(this.#c, STATE, CANCELLED);
    Atomics.notify(this.#c, WRITTEN);
  }
}

/** Options of {@link FileHasher}. */
export interface FileHasherOptions {
  /** Idle workers kept for the next file (default 2). */
  keepIdle?: number;
  /**
   * The workers' thread priority on Linux (default 0). 19 lets the hash take only the CPU
   * nothing else of ours wants (a spare core, an fsync): a download's receiving and writing
   * never slow down for it.
   */
  nice?: number;
}

/**
 * Starts {@link FileHashJob}s: a few idle workers are kept for the next file; {@link close}
 * terminates them (a job still running fails).
 */
export class FileHasher implements Disposable {
  #idle: Worker[] = [];
  #busy = new Map<Worker, TailJob>();
  #url: string | undefined;
  #broken = false;
  /** A worker being started ahead of a job ({@link warm}). */
  #spare: Promise<Worker | undefined> | undefined;
  readonly #keepIdle: number;
  readonly #nice: number;
  /** Normal-priority hasher for jobs of a low-priority one that fall behind. */
  #rescuer: FileHasher | undefined;

  constructor(opts: FileHasherOptions = {}) {
    this.#keepIdle = opts.keepIdle ?? 2;
    this.#nice = opts.nice ?? 0;
  }

  /**
   * A job for `file`, a path (of a file being written from its start; a symlink is refused),
   * with the inode it must be (the job fails if the path holds another file). `expectedSize`
   * (when known) below {@link INLINE_HASH_MAX} hashes inline, from the chunks given to
   * {@link FileHashJob.grew}.
   */
  async follow(
    file: string | { path: string; ino: number },
    expectedSize?: number,
  ): Promise<FileHashJob> {
    if (this.#broken || (expectedSize !== undefined && expectedSize < INLINE_HASH_MAX)) {
      return new InlineJob();
    }
    const spare = this.#spare;
    this.#spare = undefined;
    const w = this.#idle.pop() ?? await spare ?? await this.#start();
    if (!w) return new InlineJob();
    const rescue: Rescue | undefined = this.#nice > 0
      ? async (f, size) => {
        const target = typeof f === "string" ? { path: f, ino: fs.statSync(f).ino } : f;
        this.#rescuer ??= new FileHasher({ keepIdle: 0 });
        const job = await this.#rescuer.follow(target);
        if (job instanceof TailJob) job.wrote(size);
        else await readInto(job, target, size);
        return job;
      }
      : undefined;
    const job = new TailJob(w, file, (reusable) => {
      this.#busy.delete(w);
      if (reusable && this.#url && this.#idle.length < this.#keepIdle) this.#idle.push(w);
      else w.terminate();
    }, rescue);
    this.#busy.set(w, job);
    return job;
  }

  /**
   * Starts a worker ahead of a job (a download about to begin), so that the job does not wait
   * for one. Nothing happens when one is idle or already starting.
   */
  warm(): void {
    if (this.#idle.length === 0 && !this.#spare && !this.#broken) this.#spare = this.#start();
  }

  /**
   * The sha256 of the first `size` bytes of a complete file (a path and the inode it must be;
   * a symlink is refused), on a worker thread; read on the calling thread's event loop when no
   * worker starts.
   */
  async hashFile(
    file: { path: string; ino: number },
    size: number,
  ): Promise<{ sha256: string; size: number }> {
    const job = await this.follow(file);
    try {
      if (job instanceof TailJob) {
        job.wrote(size);
      } else {
        await readInto(job, file, size);
      }
      return await job.end();
    } finally {
      job[Symbol.dispose]();
    }
  }

  /** A new worker, ready; `undefined` (and inline hashing from then on) when none starts. */
  async #start(timeoutMs = 10_000): Promise<Worker | undefined> {
    let w: Worker | undefined;
    try {
      this.#url ??= URL.createObjectURL(
        new Blob([WORKER_SOURCE], { type: "application/javascript" }),
      );
      const worker = new Worker(this.#url, { type: "module" });
      w = worker;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("hash worker start timeout")), timeoutMs);
        worker.onmessage = (ev: MessageEvent) => {
          if (ev.data?.loaded) return worker.postMessage({ nice: this.#nice });
          clearTimeout(timer);
          resolve();
        };
        worker.onerror = (ev: ErrorEvent) => {
          ev.preventDefault();
          clearTimeout(timer);
          reject(new Error(ev.message));
        };
      });
      return worker;
    } catch {
      w?.terminate();
      this.#broken = true;
      return undefined;
    }
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Terminates every worker; a job still running fails. Idempotent. */
  close(): void {
    for (const [w, job] of this.#busy) {
      w.terminate();
      job.fail("the store was closed");
    }
    for (const w of this.#idle) w.terminate();
    this.#rescuer?.close();
    this.#spare?.then((w) => w?.terminate());
    this.#spare = undefined;
    this.#idle = [];
    this.#busy.clear();
    if (this.#url) URL.revokeObjectURL(this.#url);
    this.#url = undefined;
  }
}

/** Feeds the first `size` bytes of `file` to `job` (the no-worker path of hashFile). */
async function readInto(job: FileHashJob, file: { path: string; ino: number }, size: number) {
  const fh = await fs.promises.open(file.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    if ((await fh.stat()).ino !== file.ino) {
      throw new Error("hashing the file failed: the file was replaced before it could be hashed");
    }
    const buf = new Uint8Array(1 << 20);
    for (let pos = 0; pos < size;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) {
        throw new Error("hashing the file failed: file is shorter than what was written to it");
      }
      job.grew(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}
