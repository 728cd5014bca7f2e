/**
 * The project's primitives, one of each kind, after Deno's std: {@link delay}, {@link pause},
 * {@link abortable}, {@link retry} and {@link backoffDelay}; time as a seam ({@link Clock});
 * {@link redact}; an atomic write ({@link writeFileAtomic}); a disposable temp dir
 * ({@link makeTempDir}); shell {@link quote}. Everything else in lib/ builds on these instead
 * of writing its own.
 *
 * @example
 * ```ts
 * import { retry } from "./mod.ts";
 * const ctl = new AbortController();
 * const answer = await retry(() => Promise.resolve(42), { signal: ctl.signal });
 * if (answer !== 42) throw new Error("retry");
 * ```
 *
 * @module
 */

export { abortable, delay, type DelayOptions, pause } from "./delay.ts";
export { type Clock, SYSTEM_CLOCK, timeoutSignal } from "./clock.ts";
export {
  backoffDelay,
  type BackoffOptions,
  retry,
  type RetryInfo,
  type RetryOptions,
} from "./retry.ts";
export { redact, REDACTED, redactor } from "./redact.ts";
export {
  type AtomicWriteOptions,
  makeTempDir,
  type TempDir,
  type TempDirOptions,
  writeFileAtomic,
  writeFileAtomicSync,
} from "./fs.ts";
export { quote } from "./shell.ts";
