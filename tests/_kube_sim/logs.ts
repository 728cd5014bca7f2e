/**
 * Per-container log buffers of the simulated kubelet, and the `pods/log` stream built from
 * them (`follow`, `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`, `limitBytes`).
 *
 * @module
 */

/** One log line (with its trailing newline, except a final partial line). */
export interface LogEntry {
  ts: Date;
  text: string;
}

/** Everything one container wrote to stdout and stderr, in arrival order. */
export class LogBuffer {
  readonly entries: LogEntry[] = [];
  #partial: Record<"stdout" | "stderr", string> = { stdout: "", stderr: "" };
  #ended = false;
  #listeners = new Set<() => void>();

  /** Whether the container has ended (no more output). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds output of one stream. */
  append(stream: "stdout" | "stderr", chunk: string): void {
    if (this.#ended) return;
    const all = this.#partial[stream] + chunk;
    const parts = all.split("\n");
    this.#partial[stream] = parts.pop() ?? "";
    const ts = new Date();
    for (const p of parts) this.entries.push({ ts, text: p + "\n" });
    if (parts.length) this.#notify();
  }

  /** Flushes partial lines and marks the end. */
  end(): void {
    if (this.#ended) return;
    for (const s of ["stdout", "stderr"] as const) {
      if (this.#partial[s]) this.entries.push({ ts: new Date(), text: this.#partial[s] });
      this.#partial[s] = "";
    }
    this.#ended = true;
    this.#notify();
  }

  /** The whole output as text. */
  text(): string {
    return this.entries.map((e) => e.text).join("");
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  /** Calls `fn` whenever entries are added or the buffer ends. */
  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}

/** Query options of `pods/log`. */
export interface LogQuery {
  follow: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  sinceTime?: Date;
  timestamps: boolean;
  limitBytes?: number;
}

/** RFC 3339 with nanoseconds, as the kubelet prints with `timestamps=true`. */
export function rfc3339Nano(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}

/**
 * A byte stream of a container's log. With `follow`, it stays open until the container ends
 * or `stop` fires (server close, pod deletion).
 */
export function logStream(
  buf: LogBuffer,
  q: LogQuery,
  stop: AbortSignal,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let start = 0;
  if (q.sinceSeconds !== undefined || q.sinceTime !== undefined) {
    const since = q.sinceTime?.getTime() ?? Date.now() - (q.sinceSeconds ?? 0) * 1000;
    while (start < buf.entries.length && buf.entries[start].ts.getTime() < since) start++;
  }
  if (q.tailLines !== undefined) {
    start = Math.max(start, buf.entries.length - q.tailLines);
  }
  let sent = 0;
  let unsubscribe = () => {};
  let onAbort = () => {};
  return new ReadableStream<Uint8Array>({
    start(controller) {
      let idx = start;
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        stop.removeEventListener("abort", onAbort);
        try {
          controller.close();
        } catch { /* already closed or cancelled */ }
      };
      const pump = () => {
        if (closed) return;
        while (idx < buf.entries.length) {
          const e = buf.entries[idx++];
          let line = q.timestamps ? `${rfc3339Nano(e.ts)} ${e.text}` : e.text;
          if (q.limitBytes !== undefined) {
            const left = q.limitBytes - sent;
            if (left <= 0) return close();
            const bytes = enc.encode(line);
            if (bytes.length > left) {
              controller.enqueue(bytes.slice(0, left));
              sent += left;
              return close();
            }
            line = "";
            controller.enqueue(bytes);
            sent += bytes.length;
            continue;
          }
          controller.enqueue(enc.encode(line));
        }
        if (!q.follow || buf.ended) close();
      };
      onAbort = close;
      if (q.follow && !buf.ended) {
        unsubscribe = buf.subscribe(pump);
        stop.addEventListener("abort", onAbort, { once: true });
      }
      pump();
    },
    cancel() {
      unsubscribe();
      stop.removeEventListener("abort", onAbort);
    },
  });
}
