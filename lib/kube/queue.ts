/**
 * A minimal async queue: producers push, one consumer awaits the next item (abortable).
 *
 * @module
 */

/** Simple async queue feeding the watch generator. */
export class Queue<T> {
  #items: T[] = [];
  #wake?: () => void;
  /** Adds an item, waking the consumer. */
  push(v: T): void {
    this.#items.push(v);
    this.#wake?.();
  }
  /** The next item, waiting for one; rejects when `signal` aborts. */
  async next(signal: AbortSignal): Promise<T> {
    while (this.#items.length === 0) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal.addEventListener("abort", onAbort, { once: true });
        this.#wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.#items.shift()!;
  }
}
