/**
 * Incremental MD5 / SHA-256 of upload bodies on worker threads, so hashing runs in parallel
 * with receiving and writing (MD5 alone costs about as much CPU as the rest of an upload).
 *
 * The worker is created from inline source (a blob URL), so it survives bundling. Batches are
 * transferred, not copied, and handed back for reuse; at most {@link HIGH_WATER} bytes per
 * upload are in flight, and callers pause the request body while over it. When workers are
 * unavailable, hashing falls back to the calling thread.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
const sessions = new Map();
self.onmessage = (ev) => {
  const m = ev.data;
  if (m.t === "start") {
    sessions.set(m.id, m.algs.map((a) => createHash(a)));
  } else if (m.t === "data") {
    const hs = sessions.get(m.id);
    const view = new Uint8Array(m.buf, 0, m.len);
    for (const h of hs) h.update(view);
    self.postMessage({ t: "ack", id: m.id, buf: m.buf, len: m.len }, [m.buf]);
  } else if (m.t === "end") {
    const hs = sessions.get(m.id);
    sessions.delete(m.id);
    self.postMessage({ t: "digest", id: m.id, out: hs.map((h) => h.digest("hex")) });
  } else if (m.t === "drop") {
    sessions.delete(m.id);
  }
};
self.postMessage({ t: "ready" });
`;

/** Bytes per batch posted to a worker. */
const BATCH = 1 << 20;
/** In-flight bytes per session above which the producer should pause. */
export const HIGH_WATER = 4 << 20;
/**
 * Batch buffers come back from the worker and are reused by every session: allocating fresh
 * off-heap buffers per batch would pile up garbage the GC reclaims late (RSS growth).
 */
const SPARE: ArrayBuffer[] = [];
const MAX_SPARE = 8;

/** One upload's running hashes. */
export interface HashSession {
  /** Feeds bytes (copied; the caller may reuse `chunk`). */
  update(chunk: Uint8Array): void;
  /** True while more than {@link HIGH_WATER} bytes wait for the worker. */
  readonly congested: boolean;
  /** Called once when a congested session drains below half the high-water mark. */
  onDrain(cb: () => void): void;
  /** Final digests (hex), in the order of the requested algorithms. */
  digest(): Promise<string[]>;
  /** Abandons the session (on errors). */
  drop(): void;
}

interface Pending {
  resolve: (out: string[]) => void;
  reject: (e: Error) => void;
}

class InlineSession implements HashSession {
  private hs: Hash[];
  constructor(algs: string[]) {
    this.hs = algs.map((a) => createHash(a));
  }
  readonly congested = false;
  update(chunk: Uint8Array) {
    for (const h of this.hs) h.update(chunk);
  }
  onDrain(cb: () => void) {
    cb();
  }
  digest() {
    return Promise.resolve(this.hs.map((h) => h.digest("hex")));
  }
  drop() {}
}

/** A small pool of hashing workers, created lazily and terminated by {@link close}. */
export class HashPool {
  private workers: Worker[] = [];
  private next = 0;
  private nextId = 1;
  private sessions = new Map<number, WorkerSession>();
  private blobUrl: string | undefined;
  private broken = false;

  constructor(private readonly size = 1) {}

  /** Starts hashing one body with the given algorithms (`md5`, `sha256`). */
  session(algs: string[]): HashSession {
    if (algs.length > 1 && this.size > 1) {
      // One algorithm per worker: MD5 and SHA-256 run in parallel.
      const parts = algs.map((a) => this.single([a]));
      if (parts.every((p) => p instanceof WorkerSession)) return new FanOut(parts);
      parts.forEach((p) => p.drop());
      return new InlineSession(algs);
    }
    return this.single(algs);
  }

  private single(algs: string[]): HashSession {
    const w = this.broken ? undefined : this.worker();
    if (!w) return new InlineSession(algs);
    const id = this.nextId++;
    const s = new WorkerSession(id, w, () => this.sessions.delete(id));
    this.sessions.set(id, s);
    w.postMessage({ t: "start", id, algs });
    return s;
  }

  /**
   * Starts the workers and waits until each one has loaded (bounded). Any failure leaves the
   * pool hashing inline, so a runtime without workers (or without node:crypto in them) still
   * serves uploads.
   */
  async start(timeoutMs = 10_000): Promise<void> {
    if (this.size < 1 || this.workers.length > 0) return;
    try {
      this.blobUrl = URL.createObjectURL(
        new Blob([WORKER_SOURCE], { type: "application/javascript" }),
      );
      const ready: Promise<void>[] = [];
      for (let i = 0; i < this.size; i++) {
        const w = new Worker(this.blobUrl, { type: "module" });
        this.workers.push(w);
        ready.push(
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error("hash worker start timeout")),
              timeoutMs,
            );
            w.onmessage = (ev: MessageEvent) => {
              if (ev.data?.t !== "ready") return;
              clearTimeout(timer);
              w.onmessage = (ev: MessageEvent) => this.sessions.get(ev.data.id)?.receive(ev.data);
              resolve();
            };
            w.onerror = (ev: ErrorEvent) => {
              ev.preventDefault();
              clearTimeout(timer);
              this.broken = true;
              for (const s of this.sessions.values()) {
                s.fail(new Error(`hash worker: ${ev.message}`));
              }
              reject(new Error(ev.message));
            };
          }),
        );
      }
      await Promise.all(ready);
    } catch {
      this.close();
      this.broken = true;
    }
  }

  private worker(): Worker | undefined {
    if (this.broken || this.workers.length === 0) return undefined;
    return this.workers[this.next++ % this.workers.length];
  }

  /** Terminates the workers; running sessions fail. */
  close(): void {
    for (const s of this.sessions.values()) s.fail(new Error("relay closed"));
    this.sessions.clear();
    for (const w of this.workers) w.terminate();
    this.workers = [];
    if (this.blobUrl) URL.revokeObjectURL(this.blobUrl);
    this.blobUrl = undefined;
  }
}

/** Feeds several single-algorithm sessions; digests come back in session order. */
class FanOut implements HashSession {
  constructor(private readonly parts: HashSession[]) {}
  get congested(): boolean {
    return this.parts.some((p) => p.congested);
  }
  update(chunk: Uint8Array): void {
    for (const p of this.parts) p.update(chunk);
  }
  onDrain(cb: () => void): void {
    let left = this.parts.length;
    for (const p of this.parts) p.onDrain(() => --left === 0 && cb());
  }
  async digest(): Promise<string[]> {
    return (await Promise.all(this.parts.map((p) => p.digest()))).flat();
  }
  drop(): void {
    for (const p of this.parts) p.drop();
  }
}

class WorkerSession implements HashSession {
  private batch: Uint8Array | undefined;
  private fill = 0;
  private inFlight = 0;
  private drainCb: (() => void) | undefined;
  private pending: Pending | undefined;
  private failed: Error | undefined;

  constructor(
    private readonly id: number,
    private readonly w: Worker,
    private readonly done: () => void,
  ) {}

  get congested(): boolean {
    return this.inFlight > HIGH_WATER;
  }

  update(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) {
      if (!this.batch) {
        this.batch = new Uint8Array(SPARE.pop() ?? new ArrayBuffer(BATCH));
        this.fill = 0;
      }
      const n = Math.min(chunk.length - off, BATCH - this.fill);
      this.batch.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === BATCH) this.flush();
    }
  }

  private flush(): void {
    if (!this.batch || this.fill === 0) return;
    const buf = this.batch.buffer as ArrayBuffer;
    this.inFlight += this.fill;
    this.w.postMessage({ t: "data", id: this.id, buf, len: this.fill }, [buf]);
    this.batch = undefined;
    this.fill = 0;
  }

  onDrain(cb: () => void): void {
    if (!this.congested) cb();
    else this.drainCb = cb;
  }

  receive(m: { t: string; buf?: ArrayBuffer; len?: number; out?: string[] }): void {
    if (m.t === "ack") {
      this.inFlight -= m.len!;
      if (SPARE.length < MAX_SPARE) SPARE.push(m.buf!);
      if (this.drainCb && this.inFlight <= HIGH_WATER / 2) {
        const cb = this.drainCb;
        this.drainCb = undefined;
        cb();
      }
    } else if (m.t === "digest") {
      this.done();
      this.pending?.resolve(m.out!);
    }
  }

  fail(e: Error): void {
    this.failed = e;
    this.pending?.reject(e);
    const cb = this.drainCb;
    this.drainCb = undefined;
    cb?.();
  }

  digest(): Promise<string[]> {
    if (this.failed) return Promise.reject(this.failed);
    this.flush();
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.w.postMessage({ t: "end", id: this.id });
    });
  }

  drop(): void {
    this.done();
    this.w.postMessage({ t: "drop", id: this.id });
  }
}
