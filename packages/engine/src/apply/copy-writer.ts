// Feeds rows to a COPY … FROM STDIN as COPY text lines, gathered into large
// buffers: a row the stream sent (WireRow) is written from its bytes, a row
// of values through formatCopyLine. One write per megabyte, not per row.
import type { Writable } from "node:stream";
import { formatCopyLine } from "../source/copy-text";
import { WireRow, type Row } from "../source/wire-row";

const CHUNK = 1 << 20;
const NEWLINE = 0x0a;

export class CopyWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private pos = 0;

  constructor(private readonly copy: Writable) {}

  /** Appends one row, then `suffix` (extra columns, already COPY text, each starting with a tab). */
  row(row: Row, suffix = ""): void {
    if (row instanceof WireRow) {
      this.room(row.maxCopyLineBytes + suffix.length);
      this.pos = row.writeCopyLine(this.buf, this.pos);
      if (suffix) this.pos += this.buf.write(suffix, this.pos, "latin1");
      this.buf[this.pos++] = NEWLINE;
      return;
    }
    const line = formatCopyLine(row);
    // formatCopyLine ends the line; the suffix goes before its newline.
    const text = suffix ? `${line.slice(0, -1)}${suffix}\n` : line;
    this.room(3 * text.length);
    this.pos += this.buf.write(text, this.pos, "utf8");
  }

  /** Sends what is gathered and ends the COPY. */
  end(): void {
    this.copy.end(this.pos > 0 ? this.buf.subarray(0, this.pos) : undefined);
    this.pos = 0;
  }

  // The buffer is handed to the stream, which may hold it: a full one is never reused.
  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    if (this.pos > 0) this.copy.write(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK, bytes));
    this.pos = 0;
  }
}
