/**
 * The one line splitter of the project: bytes (or text) in, lines out, in linear time and
 * bounded memory whatever the input. A line longer than `maxLineLength` is never dropped and
 * never stops the stream (Gangplank's 64 KiB `bufio.Scanner` limit did, reference §12.1.31): it
 * is emitted in pieces, every piece but the last ending with {@link LINE_CONTINUES}, each piece
 * (marker included) at most `maxLineLength` characters long — so splitting an already split
 * stream again with the same limit changes nothing.
 *
 * {@link LineSplitStream} is the `TransformStream`; {@link LineSplitter} is the same engine for
 * push-style producers (node streams, multiplexed frames).
 *
 * @module
 */

/** Default maximum line length, in UTF-16 code units (64 Ki). */
export const DEFAULT_MAX_LINE_LENGTH = 64 * 1024;

/**
 * Maximum line length (UTF-16 code units, 4 Mi) of what the coordinator reads from a worker
 * (local process, container, pod). The worker's commands' lines arrive split at
 * {@link DEFAULT_MAX_LINE_LENGTH} already; the worker's own summary line (every object it
 * uploaded, the builds it added) may be longer and must arrive whole to be parsed. Still a
 * bound: a worker printing endlessly without a newline holds at most this much.
 */
export const WORKER_MAX_LINE_LENGTH = 4 * 1024 * 1024;

/** Marker that ends every piece of an overlong line except its last. */
export const LINE_CONTINUES = " \u21a9[continued]";

/** Options of {@link LineSplitter} and {@link LineSplitStream}. */
export interface LineSplitOptions {
  /**
   * Maximum length of an emitted line, marker included, in UTF-16 code units. Default
   * {@link DEFAULT_MAX_LINE_LENGTH}; at least 2 × the marker's length.
   */
  maxLineLength?: number;
}

/**
 * Push-style line splitting: {@link push} bytes or text as they arrive, {@link end} at the end
 * (emits a last line without newline). Lines are emitted without `\n` and without a trailing
 * `\r`. Memory held is at most `maxLineLength` characters plus one chunk.
 *
 * @example
 * ```ts
 * const lines: string[] = [];
 * const s = new LineSplitter((l) => lines.push(l));
 * s.push(new TextEncoder().encode("a\nb"));
 * s.end(); // lines: ["a", "b"]
 * ```
 */
export class LineSplitter {
  readonly maxLineLength: number;
  readonly #emit: (line: string) => void;
  readonly #dec = new TextDecoder();
  /** Text of the current line not emitted yet (joined only when needed). */
  #parts: string[] = [];
  #len = 0;
  #ended = false;

  constructor(emit: (line: string) => void, opts: LineSplitOptions = {}) {
    const max = opts.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    if (!Number.isInteger(max) || max < 2 * LINE_CONTINUES.length) {
      throw new RangeError(
        `maxLineLength ${max}: must be an integer ≥ ${2 * LINE_CONTINUES.length}`,
      );
    }
    this.maxLineLength = max;
    this.#emit = emit;
  }

  /** Adds bytes (decoded as UTF-8, split characters kept across calls) or text. */
  push(chunk: Uint8Array | string): void {
    if (this.#ended) throw new Error("LineSplitter: push after end");
    const text = typeof chunk === "string" ? chunk : this.#dec.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      this.#add(text.slice(start, nl));
      this.#line(true);
      start = nl + 1;
    }
    if (start < text.length) this.#add(start === 0 ? text : text.slice(start));
  }

  /** Emits what is left (a last line without newline) and the decoder's tail. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const tail = this.#dec.decode();
    if (tail) this.#add(tail);
    if (this.#len > 0) this.#line(false);
  }

  #add(s: string): void {
    if (s === "") return;
    this.#parts.push(s);
    this.#len += s.length;
    // Keep at most one line's worth: emit full pieces as soon as there are more.
    if (this.#len > this.maxLineLength) this.#pieces();
  }

  /** Emits marked pieces while more than `maxLineLength` characters are pending. */
  #pieces(): void {
    let buf = this.#parts.length === 1 ? this.#parts[0] : this.#parts.join("");
    const room = this.maxLineLength - LINE_CONTINUES.length;
    let off = 0;
    while (buf.length - off > this.maxLineLength) {
      let cut = off + room;
      // Never cut a surrogate pair in two.
      const c = buf.charCodeAt(cut - 1);
      if (c >= 0xd800 && c <= 0xdbff) cut--;
      this.#emit(buf.slice(off, cut) + LINE_CONTINUES);
      off = cut;
    }
    buf = buf.slice(off);
    this.#parts = [buf];
    this.#len = buf.length;
  }

  /** Emits the pending text as one line (a complete line loses its trailing `\r`). */
  #line(complete: boolean): void {
    let l = this.#parts.length === 1 ? this.#parts[0] : this.#parts.join("");
    this.#parts = [];
    this.#len = 0;
    if (complete && l.endsWith("\r")) l = l.slice(0, -1);
    this.#emit(l);
  }
}

/**
 * A `TransformStream` from bytes (or text) to lines, with {@link LineSplitter}'s rules.
 *
 * @example
 * ```ts
 * const lines = ReadableStream.from([new TextEncoder().encode("a\nb\n")])
 *   .pipeThrough(new LineSplitStream());
 * for await (const l of lines) console.log(l);
 * ```
 */
export class LineSplitStream extends TransformStream<Uint8Array | string, string> {
  constructor(opts: LineSplitOptions = {}) {
    let splitter: LineSplitter;
    super({
      start(ctl) {
        splitter = new LineSplitter((l) => ctl.enqueue(l), opts);
      },
      transform(chunk) {
        splitter.push(chunk);
      },
      flush() {
        splitter.end();
      },
    });
  }
}

/**
 * Reads `stream` to its end and calls `onLine` for each line ({@link LineSplitStream}'s rules).
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  opts: LineSplitOptions & { signal?: AbortSignal } = {},
): Promise<void> {
  const lines = stream.pipeThrough(new LineSplitStream(opts), { signal: opts.signal });
  for await (const l of lines) onLine(l);
}
