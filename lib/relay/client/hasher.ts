/**
 * The sha256 of a fetch that streams to disk, computed on a worker thread: the main thread
 * receives and writes each buffer, then hands the same buffer (transferred, never copied) to
 * the worker, which hashes it and sends it back for the next read. On a 2-CPU machine this
 * takes the hash off the path of the transfer (measured in `deno task bench relay`).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The worker's source: one sha256, updated by transferred buffers, each sent back for reuse. */
const WORKER_SOURCE = `
import { createHash } from "node:crypto";
const h = createHash("sha256");
self.onmessage = (e) => {
  const m = e.data;
  if (m.end) { self.postMessage({ digest: h.digest("hex") }); return; }
  h.update(new Uint8Array(m.buf, 0, m.len));
  self.postMessage({ buf: m.buf }, [m.buf]);
};
`;

/** A streaming sha256 that also lends the buffers to read into. */
export interface StreamHasher extends Disposable {
  /** A buffer to read the next chunk into (may wait until the hasher returns one). */
  buffer(): Promise<Uint8Array<ArrayBuffer>>;
  /** Hashes `chunk` (a prefix of a buffer from {@link buffer}); the caller must not reuse it. */
  update(chunk: Uint8Array<ArrayBuffer>): void;
  /** The hex digest of everything handed over. */
  digest(): Promise<string>;
}

/**
 * A {@link StreamHasher} on a worker thread, or on this thread when no worker can be started
 * (the buffers are then reused in place).
 */
export function streamHasher(bufferSize = 1 << 20, buffers = 4): StreamHasher {
  try {
    return new WorkerHasher(bufferSize, buffers);
  } catch {
    return inlineHasher(bufferSize);
  }
}

function inlineHasher(bufferSize: number): StreamHasher {
  const h = createHash("sha256");
  let buf = new Uint8Array(bufferSize);
  return {
    buffer: () => Promise.resolve(buf),
    update: (chunk) => {
      h.update(chunk);
      buf = new Uint8Array(chunk.buffer);
    },
    digest: () => Promise.resolve(h.digest("hex")),
    [Symbol.dispose]: () => {},
  };
}

class WorkerHasher implements StreamHasher {
  #worker: Worker;
  #pool: ArrayBuffer[] = [];
  #waiters: { resolve: (b: ArrayBuffer) => void; reject: (e: unknown) => void }[] = [];
  #digest?: { resolve: (hex: string) => void; reject: (e: unknown) => void };
  #failed?: unknown;
  #lent = 0;
  readonly #size: number;
  readonly #max: number;

  constructor(bufferSize: number, buffers: number) {
    this.#size = bufferSize;
    this.#max = buffers;
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    try {
      this.#worker = new Worker(url, { type: "module" });
    } finally {
      URL.revokeObjectURL(url);
    }
    this.#worker.onmessage = (e: MessageEvent) => {
      const m = e.data as { buf?: ArrayBuffer; digest?: string };
      if (m.digest !== undefined) this.#digest?.resolve(m.digest);
      else if (m.buf) {
        const w = this.#waiters.shift();
        if (w) w.resolve(m.buf);
        else {
          this.#lent--;
          this.#pool.push(m.buf);
        }
      }
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(e.error ?? new Error(`sha256 worker: ${e.message}`));
    };
  }

  #fail(e: unknown): void {
    this.#failed = e;
    for (const w of this.#waiters.splice(0)) w.reject(e);
    this.#digest?.reject(e);
  }

  buffer(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.#failed) return Promise.reject(this.#failed);
    const b = this.#pool.pop();
    if (b) {
      this.#lent++;
      return Promise.resolve(new Uint8Array(b));
    }
    if (this.#lent < this.#max) {
      this.#lent++;
      return Promise.resolve(new Uint8Array(this.#size));
    }
    return new Promise((resolve, reject) =>
      this.#waiters.push({ resolve: (x) => resolve(new Uint8Array(x)), reject })
    );
  }

  update(chunk: Uint8Array<ArrayBuffer>): void {
    if (this.#failed) throw this.#failed;
    this.#worker.postMessage({ buf: chunk.buffer, len: chunk.length }, [chunk.buffer]);
  }

  digest(): Promise<string> {
    if (this.#failed) return Promise.reject(this.#failed);
    const p = new Promise<string>((resolve, reject) => (this.#digest = { resolve, reject }));
    this.#worker.postMessage({ end: true });
    return p;
  }

  [Symbol.dispose](): void {
    this.#worker.terminate();
    this.#fail(new Error("sha256 worker ended"));
  }
}
