// Feeds rows to a COPY … FROM STDIN as COPY text lines. A row the stream
// sent (WireRow) already is its line, in a slab shared with the rows decoded
// after it: consecutive lines are sent as one piece of their slab, so a batch
// of inserts costs a few writes, not one per row. Rows of values are
// formatted into a buffer of their own.
import type { Writable } from "node:stream";
import { formatCopyLine } from "../source/copy-text";
import { WireRow, type Row } from "../source/wire-row";

const CHUNK = 1 << 20;
const DIRECT_BYTES = 64 << 10;
const NEWLINE = 0x0a;

export class CopyWriter {
  private buf: Buffer | undefined;
  private pos = 0;
  // A run of adjacent lines in one slab, not yet written.
  private run: { slab: Buffer; start: number; end: number } | undefined;

  constructor(private readonly copy: Writable) {}

  /** Appends one row, then `suffix` (extra columns, already COPY text, each starting with a tab). */
  row(row: Row, suffix = ""): void {
    if (row instanceof WireRow && !suffix) {
      const run = this.run;
      if (run && run.slab === row.slab && run.end === row.start) {
        run.end = row.end;
        return;
      }
      this.flushRun();
      this.run = { slab: row.slab, start: row.start, end: row.end };
      return;
    }
    this.flushRun();
    if (row instanceof WireRow) {
      // The line without its newline, the extra columns, then the newline.
      const buf = this.room(row.end - row.start + suffix.length);
      this.pos += row.slab.copy(buf, this.pos, row.start, row.end - 1);
      this.pos += buf.write(suffix, this.pos, "latin1");
      buf[this.pos++] = NEWLINE;
      return;
    }
    const line = formatCopyLine(row);
    // formatCopyLine ends the line; the suffix goes before its newline.
    const text = suffix ? `${line.slice(0, -1)}${suffix}\n` : line;
    const buf = this.room(3 * text.length);
    this.pos += buf.write(text, this.pos, "utf8");
  }

  /** Sends what is gathered and ends the COPY. */
  end(): void {
    this.flushRun();
    this.flushBuffer();
    this.copy.end();
  }

  // Slabs are never rewritten, so a long run is handed to the stream as it
  // is; a short one (lines of tables interleaved in the stream) is copied.
  private flushRun(): void {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    const bytes = run.end - run.start;
    if (bytes < DIRECT_BYTES) {
      const buf = this.room(bytes);
      this.pos += run.slab.copy(buf, this.pos, run.start, run.end);
      return;
    }
    this.flushBuffer();
    this.copy.write(run.slab.subarray(run.start, run.end));
  }

  private flushBuffer(): void {
    if (!this.buf || this.pos === 0) return;
    this.copy.write(this.buf.subarray(0, this.pos));
    // The stream may hold the buffer: a written one is never reused.
    this.buf = undefined;
    this.pos = 0;
  }

  private room(bytes: number): Buffer {
    if (this.buf && this.pos + bytes <= this.buf.length) return this.buf;
    this.flushBuffer();
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK, bytes));
    return this.buf;
  }
}
