/**
 * libpod's multiplexed log stream: frames ({@link LogDemuxer}) and lines per stream
 * ({@link StreamLineSplitter}).
 *
 * @module
 */
import { type LineSplitOptions, LineSplitter } from "../log/lines.ts";

/** Which stream a log frame came from. */
export type LogStream = "stdout" | "stderr";

/**
 * Splits libpod's multiplexed log stream (8-byte header: stream byte, 3 zero bytes, big-endian
 * length; then the payload) into frames. Feed chunks with {@link push}; frames are delivered
 * through the callback. Incomplete frames are kept until more bytes arrive.
 */
export class LogDemuxer {
  #buf: Uint8Array = new Uint8Array(0);
  /** Number of complete frames delivered so far. */
  frames = 0;
  constructor(readonly onFrame: (stream: LogStream, payload: Uint8Array) => void) {}

  /** Adds bytes from the HTTP body. */
  push(chunk: Uint8Array): void {
    if (this.#buf.length === 0) {
      this.#buf = chunk;
    } else {
      const b = new Uint8Array(this.#buf.length + chunk.length);
      b.set(this.#buf);
      b.set(chunk, this.#buf.length);
      this.#buf = b;
    }
    let off = 0;
    while (this.#buf.length - off >= 8) {
      const kind = this.#buf[off];
      const size = new DataView(this.#buf.buffer, this.#buf.byteOffset + off + 4, 4).getUint32(0);
      if (this.#buf.length - off - 8 < size) break;
      const payload = this.#buf.slice(off + 8, off + 8 + size);
      off += 8 + size;
      this.frames++;
      this.onFrame(kind === 2 ? "stderr" : "stdout", payload);
    }
    this.#buf = off === this.#buf.length ? new Uint8Array(0) : this.#buf.slice(off);
  }
}

/**
 * Turns frames into lines per stream (a frame may carry part of a line, several lines or a
 * line without its newline), with one {@link LineSplitter} per stream. {@link flush} emits
 * what is left at the end.
 */
export class StreamLineSplitter {
  readonly #split: Record<LogStream, LineSplitter>;
  constructor(
    readonly onLine: (line: string, stream: LogStream) => void,
    opts: LineSplitOptions = {},
  ) {
    this.#split = {
      stdout: new LineSplitter((l) => onLine(l, "stdout"), opts),
      stderr: new LineSplitter((l) => onLine(l, "stderr"), opts),
    };
  }

  /** Adds a frame's payload. */
  push(stream: LogStream, payload: Uint8Array): void {
    this.#split[stream].push(payload);
  }

  /** Emits unterminated lines. */
  flush(): void {
    this.#split.stdout.end();
    this.#split.stderr.end();
  }
}
