// Feeds rows to a COPY … FROM STDIN, in text or binary format. A row the
// stream sent (WireRow) already is its COPY row, in a slab shared with the
// rows decoded after it: consecutive rows are sent as one piece of their
// slab, so a batch of inserts costs a few writes, not one per row. Rows of
// values are formatted into a buffer of their own.
import { formatCopyLine } from "../source/copy-text";
import { WireRow, type Row } from "../source/wire-row";
import type { ColumnValue } from "../types";

// A batch's first buffer is small and each next one twice as large, up to CHUNK: a COPY of a few rows (a batch of
// lone small transactions) allocated a whole CHUNK each time, which the garbage collector then had to reclaim.
const FIRST_CHUNK = 16 << 10;
const CHUNK = 1 << 20;
const DIRECT_BYTES = 64 << 10;
const NEWLINE = 0x0a;
// Binary COPY: signature, flags, header extension length; a field count of -1 ends the data.
const BINARY_HEADER = Buffer.from("PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", "latin1");

/** The staging table's two extra columns of a row: its operation and whether the stream expected the row. */
export interface StageColumns {
  op: "d" | "u";
  expect: boolean;
}

/** Where a COPY's data goes: a stream, or CopyData (copy-in.ts), which gathers it for one write. */
export interface CopySink {
  write(chunk: Buffer): unknown;
  end(): unknown;
}

export class CopyWriter {
  private buf: Buffer | undefined;
  private pos = 0;
  private nextSize = FIRST_CHUNK;
  // A run of adjacent rows in one slab, not yet written.
  private run: { slab: Buffer; start: number; end: number } | undefined;

  /** `binary`: the COPY reads FORMAT binary, and every row must be one of binary transfer. */
  constructor(
    private readonly copy: CopySink,
    private readonly binary: boolean,
  ) {
    if (binary) this.copy.write(BINARY_HEADER);
  }

  /** Appends one row, and the staging table's extra columns when given. */
  row(row: Row, extra?: StageColumns): void {
    if (row instanceof WireRow) {
      if (row.binary !== this.binary) throw new Error(`a ${row.binary ? "binary" : "text"} row in a ${this.binary ? "binary" : "text"} COPY`);
      if (!extra) return this.extendRun(row);
      this.flushRun();
      if (this.binary) {
        // The tuple with two more fields: its count rewritten, its fields, then the extra ones.
        const buf = this.room(row.end - row.start + 10);
        buf.writeInt16BE(row.count + 2, this.pos);
        this.pos += 2;
        this.pos += row.slab.copy(buf, this.pos, row.start + 2, row.end);
        this.pos = writeBinaryExtra(buf, this.pos, extra);
        return;
      }
      // The line without its newline, the extra columns, then the newline.
      const buf = this.room(row.end - row.start + 4);
      this.pos += row.slab.copy(buf, this.pos, row.start, row.end - 1);
      this.pos += buf.write(`\t${extra.op}\t${extra.expect ? "t" : "f"}\n`, this.pos, "latin1");
      return;
    }
    this.flushRun();
    if (this.binary) {
      const buf = this.room(2 + row.reduce<number>((n, v) => n + 4 + (v === null ? 0 : Buffer.byteLength(v as string | Buffer)), 0) + 10);
      buf.writeInt16BE(row.length + (extra ? 2 : 0), this.pos);
      this.pos += 2;
      for (const v of row) {
        if (v === null) {
          buf.writeInt32BE(-1, this.pos);
          this.pos += 4;
        } else if (Buffer.isBuffer(v)) {
          buf.writeInt32BE(v.length, this.pos);
          this.pos += 4 + v.copy(buf, this.pos + 4);
        } else {
          throw new Error("a text value in a binary COPY");
        }
      }
      if (extra) this.pos = writeBinaryExtra(buf, this.pos, extra);
      return;
    }
    if (row.some((v) => Buffer.isBuffer(v))) throw new Error("a binary value in a text COPY");
    const line = formatCopyLine(row as ColumnValue[]);
    // formatCopyLine ends the line; the extra columns go before its newline.
    const text = extra ? `${line.slice(0, -1)}\t${extra.op}\t${extra.expect ? "t" : "f"}\n` : line;
    const buf = this.room(3 * text.length);
    this.pos += buf.write(text, this.pos, "utf8");
  }

  /** Sends what is gathered and ends the COPY. */
  end(): void {
    this.flushRun();
    if (this.binary) {
      const buf = this.room(2);
      buf.writeInt16BE(-1, this.pos);
      this.pos += 2;
    }
    this.flushBuffer();
    this.copy.end();
  }

  private extendRun(row: WireRow): void {
    const run = this.run;
    if (run && run.slab === row.slab && run.end === row.start) {
      run.end = row.end;
      return;
    }
    this.flushRun();
    this.run = { slab: row.slab, start: row.start, end: row.end };
  }

  // Slabs are never rewritten, so a long run is handed to the stream as it
  // is; a short one (rows of tables interleaved in the stream) is copied.
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
    this.buf = Buffer.allocUnsafe(Math.max(this.nextSize, bytes));
    this.nextSize = Math.min(CHUNK, this.nextSize * 2);
    return this.buf;
  }
}

// heliosdb_op is "char" (one byte), heliosdb_expect boolean (one byte).
function writeBinaryExtra(buf: Buffer, pos: number, extra: StageColumns): number {
  buf.writeInt32BE(1, pos);
  buf[pos + 4] = extra.op.charCodeAt(0);
  buf.writeInt32BE(1, pos + 5);
  buf[pos + 9] = extra.expect ? 1 : 0;
  return pos + 10;
}
