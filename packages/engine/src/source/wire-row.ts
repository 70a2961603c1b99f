// A row as pgoutput sent it, kept as its bytes. Most rows go from the stream
// to the target untouched, so decoding every value into a string only to
// write it back out as COPY text would be the engine's largest cost; a
// WireRow decodes its values only when a transform, a key or a partial
// update needs them, and writes its COPY text line straight from the bytes.
import { UNCHANGED_TOAST, type ColumnValue } from "../types";

// TupleData value kinds ("Logical Replication Message Formats").
const NULL = 0x6e; // n
const UNCHANGED = 0x75; // u
const TEXT = 0x74; // t
const BACKSLASH = 0x5c;
const TAB = 0x09;
const NEWLINE = 0x0a;
const RETURN = 0x0d;

export class WireRow {
  private decoded: ColumnValue[] | undefined;

  /**
   * @param data the message holding the tuple; owned by this row (never a reused read buffer)
   * @param start offset of the tuple's first value kind byte (after its column count)
   * @param end offset just past the tuple
   * @param count the number of columns
   * @param textBytes the bytes of all text values together
   * @param hasUnchangedToast whether some value is an unchanged TOASTed one the stream omitted
   */
  constructor(
    private readonly data: Buffer,
    private readonly start: number,
    readonly end: number,
    readonly count: number,
    readonly textBytes: number,
    readonly hasUnchangedToast: boolean,
  ) {}

  /**
   * Reads the TupleData at `offset` (column count, then per column a kind
   * byte and, for text, a length and the bytes), checking every length
   * against the message. Throws a plain Error the decoder rewraps.
   */
  static read(data: Buffer, offset: number): WireRow {
    if (offset + 2 > data.length) throw new Error(`truncated tuple at offset ${offset}`);
    const count = data.readInt16BE(offset);
    let p = offset + 2;
    let textBytes = 0;
    let toast = false;
    for (let i = 0; i < count; i++) {
      const kind = data[p++];
      if (kind === TEXT) {
        if (p + 4 > data.length) throw new Error(`truncated value length at offset ${p}`);
        const n = data.readInt32BE(p);
        if (n < 0 || p + 4 + n > data.length) throw new Error(`value of ${n} bytes at offset ${p} overruns the message`);
        p += 4 + n;
        textBytes += n;
      } else if (kind === UNCHANGED) {
        toast = true;
      } else if (kind !== NULL) {
        const shown = kind === undefined ? "end of message" : JSON.stringify(String.fromCharCode(kind));
        throw new Error(`unsupported tuple value kind ${shown} (text format expected)`);
      }
    }
    return new WireRow(data, offset + 2, p, count, textBytes, toast);
  }

  /** The values in PostgreSQL's text format; decoded once, on first use. */
  values(): ColumnValue[] {
    if (this.decoded) return this.decoded;
    const values = new Array<ColumnValue>(this.count);
    let p = this.start;
    for (let i = 0; i < this.count; i++) {
      const kind = this.data[p++];
      if (kind === TEXT) {
        const n = this.data.readInt32BE(p);
        values[i] = this.data.toString("utf8", p + 4, p + 4 + n);
        p += 4 + n;
      } else {
        values[i] = kind === NULL ? null : UNCHANGED_TOAST;
      }
    }
    this.decoded = values;
    return values;
  }

  /** One value, without decoding the others (row keys need only theirs). */
  value(index: number): ColumnValue {
    if (this.decoded) return this.decoded[index]!;
    let p = this.start;
    for (let i = 0; ; i++) {
      const kind = this.data[p++];
      const n = kind === TEXT ? this.data.readInt32BE(p) : 0;
      if (i === index) {
        if (kind === TEXT) return this.data.toString("utf8", p + 4, p + 4 + n);
        return kind === NULL ? null : UNCHANGED_TOAST;
      }
      if (kind === TEXT) p += 4 + n;
    }
  }

  /** The most bytes writeCopyLine can write: every byte escaped, plus separators, NULL markers and the newline. */
  get maxCopyLineBytes(): number {
    return 2 * (this.end - this.start) + 3 * this.count + 1;
  }

  /**
   * Writes the row as one COPY text line, without its newline, at `pos`
   * (which must have maxCopyLineBytes of room); returns the position after
   * it. Only backslash, tab, newline and carriage return need escaping.
   */
  writeCopyLine(out: Buffer, pos: number): number {
    const data = this.data;
    let p = this.start;
    for (let i = 0; i < this.count; i++) {
      if (i > 0) out[pos++] = TAB;
      const kind = data[p++];
      if (kind === NULL) {
        out[pos++] = BACKSLASH;
        out[pos++] = 0x4e; // \N
        continue;
      }
      // A value the stream omitted cannot be written: the applier updates such rows column by column.
      if (kind !== TEXT) throw new Error("a row with unchanged TOAST values has no COPY line");
      const end = p + 4 + data.readInt32BE(p);
      for (p += 4; p < end; p++) {
        const b = data[p]!;
        if (b === BACKSLASH || b === TAB || b === NEWLINE || b === RETURN) {
          out[pos++] = BACKSLASH;
          out[pos++] = b === BACKSLASH ? BACKSLASH : b === TAB ? 0x74 : b === NEWLINE ? 0x6e : 0x72;
        } else {
          out[pos++] = b;
        }
      }
    }
    return pos;
  }
}

/** A row of a change: its values, or the bytes the stream sent. */
export type Row = ColumnValue[] | WireRow;

/** A row's values, decoding a WireRow's if needed. */
export function rowValues(row: Row): ColumnValue[] {
  return row instanceof WireRow ? row.values() : row;
}
