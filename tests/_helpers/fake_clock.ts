/**
 * A fake {@link Clock} for unit tests: `now()` moves only when {@link FakeClock.run} jumps to
 * the next due wait or scheduled event, so code that waits minutes runs in milliseconds, with
 * no real timer left behind, and a promise that waits on nothing the clock knows of is reported
 * as a deadlock instead of hanging the test.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Clock } from "../../lib/toolkit/clock.ts";
import type { DelayOptions } from "../../lib/toolkit/delay.ts";

interface Sleeper {
  at: number;
  seq: number;
  fire: () => void;
  /** A `delay()` of the code under test (counted by `pendingDelays`), or a scripted event. */
  kind: "delay" | "event";
}

/** Lets every queued microtask (and what it queues) run: one macrotask turn. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Fake time. Start it at a fixed origin; drive the code under test with {@link run}. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #sleepers: Sleeper[] = [];
  /** The time `run` started (for elapsed-time assertions). */
  readonly origin: number;

  constructor(origin = 1_700_000_000_000) {
    this.#now = origin;
    this.origin = origin;
  }

  now = (): number => this.#now;

  /** Fake milliseconds since the origin. */
  get elapsed(): number {
    return this.#now - this.origin;
  }

  delay = (ms: number, opts: DelayOptions = {}): Promise<void> => {
    const { signal } = opts;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const s: Sleeper = {
        at: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        kind: "delay",
        fire: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((x) => x !== s);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.push(s);
    });
  };

  /** Schedules `fn` `ms` from now on fake time (a scripted event of a fake server). */
  after(ms: number, fn: () => void): void {
    this.#sleepers.push({
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      kind: "event",
      fire: fn,
    });
  }

  /** Waits of the code under test still pending (0 once it has settled: no leaked timer). */
  get pendingDelays(): number {
    return this.#sleepers.filter((s) => s.kind === "delay").length;
  }

  /**
   * Drives `p` to settlement: lets the code run until it waits, then jumps to the next due
   * wait or event, and so on. Throws when `p` waits on nothing the clock knows of (a
   * deadlock), after `limitMs` of fake time, or after `maxSteps` jumps (a busy loop).
   */
  async run<T>(p: Promise<T>, opts: { limitMs?: number; maxSteps?: number } = {}): Promise<T> {
    const limitMs = opts.limitMs ?? 24 * 3600_000;
    const maxSteps = opts.maxSteps ?? 50_000;
    const start = this.#now;
    let done = false;
    p.then(() => done = true, () => done = true);
    for (let step = 0;; step++) {
      await flush();
      if (done) return await p;
      if (step >= maxSteps) throw new Error(`FakeClock: still pending after ${maxSteps} steps`);
      if (this.#sleepers.length === 0) {
        throw new Error("FakeClock: deadlock: the promise waits on nothing the clock knows of");
      }
      this.#sleepers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#sleepers.shift()!;
      if (next.at - start > limitMs) {
        throw new Error(`FakeClock: still pending after ${limitMs} ms of fake time`);
      }
      this.#now = Math.max(this.#now, next.at);
      next.fire();
    }
  }
}
