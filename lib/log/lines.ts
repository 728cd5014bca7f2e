/**
 * Splitting a byte stream into text lines, with no line-length limit that silently stops the
 * stream (Gangplank's 64 KiB `bufio.Scanner` limit did, reference §12.1.31): overlong lines
 * are emitted in pieces of at most `maxLineLength` characters.
 *
 * @module
 */

/**
 * Reads `stream` to its end and calls `onLine` for each line (without `\n` or a trailing
 * `\r`). A final line without newline is emitted too.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  { maxLineLength = 64 * 1024 }: { maxLineLength?: number } = {},
): Promise<void> {
  const dec = new TextDecoder();
  let buf = "";
  const emit = (l: string) => onLine(l.endsWith("\r") ? l.slice(0, -1) : l);
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      emit(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    while (buf.length > maxLineLength) {
      emit(buf.slice(0, maxLineLength));
      buf = buf.slice(maxLineLength);
    }
  }
  buf += dec.decode();
  if (buf.length > 0) emit(buf);
}
