/**
 * Decoder for `aws-chunked` request bodies (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD` with chunk
 * signatures, and `STREAMING-UNSIGNED-PAYLOAD-TRAILER` without). Incremental: it is fed the
 * raw body as it arrives and hands out payload bytes, never buffering more than one header
 * line plus the bytes of the current chunk's hash state.
 *
 * @module
 */

import { createHash, createHmac, type Hash } from "node:crypto";
import { chunkSignature, type ChunkSigner, signaturesEqual } from "./sigv4.ts";
import { S3Error } from "./s3_error.ts";

const MAX_LINE = 4096;

/** Incremental aws-chunked decoder; throws {@link S3Error} on malformed or forged chunks. */
export class AwsChunkedDecoder {
  private state: "header" | "data" | "crlf" | "trailer" | "done" = "header";
  private line = "";
  private remaining = 0;
  private chunkHash: Hash | undefined;
  private chunkSig = "";
  private prevSig: string;
  private crlfSeen = 0;

  /** Trailer fields after the final chunk (lower-case names), e.g. `x-amz-checksum-crc32`. */
  readonly trailers = new Map<string, string>();
  private trailerSig = "";
  private readonly withTrailer: boolean;

  /**
   * `signer` is undefined for unsigned streaming payloads; `trailer` says trailer fields
   * follow the final chunk (`...-TRAILER` payloads; always so when unsigned).
   */
  constructor(private readonly signer: ChunkSigner | undefined, opts: { trailer?: boolean } = {}) {
    this.prevSig = signer?.seedSignature ?? "";
    this.withTrailer = opts.trailer ?? signer === undefined;
  }

  /** True once the final zero-length chunk (and trailers) were read. */
  get finished(): boolean {
    return this.state === "done";
  }

  /** Feeds raw body bytes; calls `out` with each run of payload bytes. */
  push(buf: Uint8Array, out: (data: Uint8Array) => void): void {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case "header":
        case "trailer": {
          const nl = buf.indexOf(0x0a, i);
          const end = nl < 0 ? buf.length : nl;
          this.line += Buffer.from(buf.subarray(i, end)).toString("latin1");
          if (this.line.length > MAX_LINE) throw this.bad("chunk header too long");
          i = end;
          if (nl < 0) break;
          i++; // consume \n
          const line = this.line.replace(/\r$/, "");
          this.line = "";
          if (this.state === "header") this.startChunk(line);
          else if (line === "") this.state = "done";
          else this.trailerField(line);
          break;
        }
        case "data": {
          const n = Math.min(this.remaining, buf.length - i);
          const part = buf.subarray(i, i + n);
          this.chunkHash?.update(part);
          if (n > 0) out(part);
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) {
            this.endChunk();
            this.state = "crlf";
            this.crlfSeen = 0;
          }
          break;
        }
        case "crlf": {
          const want = this.crlfSeen === 0 ? 0x0d : 0x0a;
          if (buf[i] !== want) throw this.bad("missing CRLF after chunk data");
          i++;
          if (++this.crlfSeen === 2) this.state = this.finalPending ? "done" : "header";
          break;
        }
        case "done":
          // Anything after the final chunk is ignored (a trailing CRLF, typically).
          return;
      }
    }
  }

  private startChunk(line: string): void {
    const [sizePart, ...exts] = line.split(";");
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizePart.trim())) throw this.bad("bad chunk size");
    const size = parseInt(sizePart.trim(), 16);
    this.chunkSig = "";
    for (const e of exts) {
      const [k, v] = e.split("=");
      if (k.trim() === "chunk-signature") this.chunkSig = (v ?? "").trim();
    }
    if (this.signer && !this.chunkSig) throw this.bad("chunk without chunk-signature");
    this.remaining = size;
    this.chunkHash = this.signer ? createHash("sha256") : undefined;
    if (size === 0) {
      this.endChunk();
      this.crlfSeen = 0;
      if (this.withTrailer) this.state = "trailer";
      else {
        this.state = "crlf";
        this.finalPending = true;
      }
    } else this.state = "data";
  }

  private trailerField(line: string): void {
    const colon = line.indexOf(":");
    if (colon <= 0) throw this.bad("malformed trailer field");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "x-amz-trailer-signature") this.trailerSig = value;
    else {
      if (this.trailers.size >= 16) throw this.bad("too many trailer fields");
      this.trailers.set(name, value);
    }
  }

  /** Signed trailers: checks `x-amz-trailer-signature` over the trailer fields. */
  private checkTrailerSignature(): void {
    if (!this.signer || !this.withTrailer) return;
    let canonical = "";
    for (const [k, v] of this.trailers) canonical += `${k}:${v}\n`;
    const toSign = [
      "AWS4-HMAC-SHA256-TRAILER",
      this.signer.amzDate,
      this.signer.scope,
      this.prevSig,
      createHash("sha256").update(canonical).digest("hex"),
    ].join("\n");
    const expected = createHmac("sha256", this.signer.signingKey).update(toSign).digest("hex");
    if (!this.trailerSig || !signaturesEqual(expected, this.trailerSig)) {
      throw new S3Error(
        403,
        "SignatureDoesNotMatch",
        "The trailer signature we calculated does not match the signature you provided.",
      );
    }
  }

  private finalPending = false;

  private endChunk(): void {
    if (!this.signer) return;
    const expected = chunkSignature(this.signer, this.prevSig, this.chunkHash!.digest("hex"));
    if (!signaturesEqual(expected, this.chunkSig)) {
      throw new S3Error(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
      );
    }
    this.prevSig = expected;
  }

  /** Must be called at end of body: throws if the final chunk never came. */
  end(): void {
    if (this.state === "trailer" && this.line.replace(/\r$/, "") !== "") {
      this.trailerField(this.line.replace(/\r$/, ""));
      this.line = "";
    }
    const complete = this.state === "done" || this.finalPending || // closing CRLF omitted
      (this.state === "trailer" && this.line === "");
    if (!complete) throw this.bad("incomplete aws-chunked body");
    this.checkTrailerSignature();
  }

  private bad(msg: string): S3Error {
    return new S3Error(400, "IncompleteBody", msg);
  }
}
