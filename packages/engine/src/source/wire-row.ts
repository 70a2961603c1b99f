// A row as the stream sent it, kept as the COPY row the target reads. Most
// rows go from the stream to the target untouched, so decoding every value
// into a string only to write it back out would be the engine's largest
// cost. Instead the decoder writes each row once, into large shared slabs (a
// LineArena), in the COPY format of the stream: a text line when pgoutput
// sends text, a binary tuple when it sends binary (binary transfer: no
// transforms, built-in types only). The applier sends those bytes on; text
// values are decoded only when a transform, a key or a partial update needs them.
import { UNCHANGED_TOAST, type ColumnValue } from "../types";
import { parseCopyLine } from "./copy-text";

// TupleData value kinds ("Logical Replication Message Formats").
const NULL = 0x6e; // n
const UNCHANGED = 0x75; // u
const TEXT = 0x74; // t
const BINARY = 0x62; // b
const BACKSLASH = 0x5c;
const TAB = 0x09;
const NEWLINE = 0x0a;
const RETURN = 0x0d;

const SLAB_BYTES = 1 << 20;

/** A column value as a row of either format carries it: binary transfer's values are bytes. */
export type WireValue = ColumnValue | Buffer;

/**
 * Append-only slabs for COPY rows. A slab is never written again once a row
 * points into it, so rows (and the COPY streams they are sent on) can share
 * it; it is freed when the last row pointing into it is.
 */
export class LineArena {
  slab = Buffer.allocUnsafe(SLAB_BYTES);
  // Plain typed-array views of the slab: faster than Buffer's own accessors in the copy loop.
  bytes = new Uint8Array(this.slab.buffer, this.slab.byteOffset, this.slab.length);
  view = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.length);
  pos = 0;

  /** Makes room for `bytes` at `pos`, starting a new slab when this one is full. */
  reserve(bytes: number): void {
    if (this.pos + bytes <= this.slab.length) return;
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, bytes));
    this.bytes = new Uint8Array(this.slab.buffer, this.slab.byteOffset, this.slab.length);
    this.view = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.length);
    this.pos = 0;
  }
}

export class WireRow {
  /**
   * @param slab holds the row; never rewritten
   * @param start offset of the row: its text line, or its binary tuple (from the field count)
   * @param end offset just past the row (past a text line's newline)
   * @param count the number of columns
   * @param textBytes the bytes of the row's values as the stream sent them
   * @param binary whether the row is a binary COPY tuple
   */
  constructor(
    readonly slab: Buffer,
    readonly start: number,
    readonly end: number,
    readonly count: number,
    readonly textBytes: number,
    readonly binary: boolean,
  ) {}

  /**
   * Reads the TupleData at `at.offset` of the pgoutput message `at.buf`
   * (column count, then per column a kind byte and, for text or binary, a
   * length and the bytes), checking every length against the message, and
   * moves `at.offset` past it. A row whose every value was sent is written
   * to `arena` in the stream's COPY format; a row with unchanged TOAST
   * values (which no COPY row can express) comes back as its values. Throws
   * a plain Error, which the decoder rewraps.
   */
  static read(at: { buf: Buffer; offset: number }, arena: LineArena, binary = false): Row {
    const data = at.buf;
    const offset = at.offset;
    // Offsets below are into the message's whole ArrayBuffer, read through cached views.
    const { bytes: src, view } = sourceViews(data);
    const base = data.byteOffset;
    const limit = base + data.length;
    if (offset + 2 > data.length) throw new Error(`truncated tuple at offset ${offset}`);
    const count = view.getInt16(base + offset);
    const start = base + offset + 2;
    const valueKind = binary ? BINARY : TEXT;
    let p = start;
    let textBytes = 0;
    let toast = false;
    for (let i = 0; i < count; i++) {
      const kind = p < limit ? src[p++] : undefined;
      if (kind === valueKind) {
        if (p + 4 > limit) throw new Error(`truncated value length at offset ${p - base}`);
        const n = view.getInt32(p);
        if (n < 0 || p + 4 + n > limit) throw new Error(`value of ${n} bytes at offset ${p - base} overruns the message`);
        p += 4 + n;
        textBytes += n;
      } else if (kind === UNCHANGED) {
        toast = true;
      } else if (kind !== NULL) {
        const shown = kind === undefined ? "end of message" : JSON.stringify(String.fromCharCode(kind));
        throw new Error(`unsupported tuple value kind ${shown} (${binary ? "binary" : "text"} format expected)`);
      }
    }
    const end = p;
    at.offset = end - base;
    if (toast) return decodeValues(data, start - base, count, binary);
    return binary ? writeBinary(src, view, start, count, textBytes, arena) : writeText(src, view, start, end, count, textBytes, arena);
  }

  /** The values in PostgreSQL's text format (a text row's only: binary values are not text). */
  values(): ColumnValue[] {
    if (this.binary) throw new Error("a row of binary transfer has no text values");
    if (this.count === 0) return [];
    return parseCopyLine(this.slab.toString("utf8", this.start, this.end - 1));
  }

  /** The values as the row carries them: text, or a binary row's bytes. */
  fields(): WireValue[] {
    if (!this.binary) return this.values();
    const fields = new Array<WireValue>(this.count);
    let p = this.start + 2;
    for (let i = 0; i < this.count; i++) {
      const n = this.slab.readInt32BE(p);
      p += 4;
      fields[i] = n < 0 ? null : Buffer.from(this.slab.subarray(p, p + n));
      if (n > 0) p += n;
    }
    return fields;
  }

  /**
   * A string that identifies one value among the values of its column (row
   * keys need only theirs): the text itself, or a binary value's bytes as
   * latin1 — what keyOf makes of the same value in a row of values.
   */
  key(index: number): string {
    const slab = this.slab;
    if (this.binary) {
      let p = this.start + 2;
      for (let i = 0; i < index; i++) p += 4 + Math.max(0, slab.readInt32BE(p));
      const n = slab.readInt32BE(p);
      return n < 0 ? "null" : slab.toString("latin1", p + 4, p + 4 + n);
    }
    let from = this.start;
    for (let i = 0; i < index; i++) from = slab.indexOf(TAB, from) + 1;
    let to = slab.indexOf(TAB, from);
    if (to < 0 || to >= this.end) to = this.end - 1;
    if (to - from === 2 && slab[from] === BACKSLASH && slab[from + 1] === 0x4e) return "null";
    const text = slab.toString("utf8", from, to);
    return text.includes("\\") ? String(parseCopyLine(text)[0]) : text;
  }
}

// A text row: values separated by tabs, \N for NULL, ended by a newline.
function writeText(src: Uint8Array, view: DataView, start: number, end: number, count: number, textBytes: number, arena: LineArena): WireRow {
  // Every byte escaped, plus separators, NULL markers and the newline.
  arena.reserve(2 * (end - start) + 3 * count + 1);
  const out = arena.bytes;
  const dst = arena.view;
  const lineStart = arena.pos;
  let pos = lineStart;
  let p = start;
  for (let i = 0; i < count; i++) {
    if (i > 0) out[pos++] = TAB;
    if (src[p++] === NULL) {
      out[pos++] = BACKSLASH;
      out[pos++] = 0x4e; // \N
      continue;
    }
    const valueEnd = p + 4 + view.getInt32(p);
    // Four bytes at a time while none needs escaping: this loop sees every byte the engine streams.
    for (p += 4; p + 4 <= valueEnd; p += 4) {
      const word = view.getInt32(p);
      if (needsEscape(word)) pos = escape(src, p, p + 4, out, pos);
      else {
        dst.setInt32(pos, word);
        pos += 4;
      }
    }
    pos = escape(src, p, valueEnd, out, pos);
    p = valueEnd;
  }
  out[pos++] = NEWLINE;
  arena.pos = pos;
  return new WireRow(arena.slab, lineStart, pos, count, textBytes, false);
}

// A binary tuple: the field count, then per field its length (-1 for NULL)
// and bytes — pgoutput's layout without the kind bytes.
function writeBinary(src: Uint8Array, view: DataView, start: number, count: number, textBytes: number, arena: LineArena): WireRow {
  arena.reserve(2 + 4 * count + textBytes);
  const out = arena.bytes;
  const dst = arena.view;
  const rowStart = arena.pos;
  dst.setInt16(rowStart, count);
  let pos = rowStart + 2;
  let p = start;
  for (let i = 0; i < count; i++) {
    if (src[p++] === NULL) {
      dst.setInt32(pos, -1);
      pos += 4;
      continue;
    }
    const n = view.getInt32(p);
    const valueEnd = p + 4 + n;
    dst.setInt32(pos, n);
    pos += 4;
    for (p += 4; p + 4 <= valueEnd; p += 4) {
      dst.setInt32(pos, view.getInt32(p));
      pos += 4;
    }
    while (p < valueEnd) out[pos++] = src[p++]!;
  }
  arena.pos = pos;
  return new WireRow(arena.slab, rowStart, pos, count, textBytes, true);
}

// COPY text needs only backslash, tab, newline and carriage return escaped.
function escape(src: Uint8Array, from: number, to: number, out: Uint8Array, pos: number): number {
  for (let p = from; p < to; p++) {
    const b = src[p]!;
    if (b === BACKSLASH || b === TAB || b === NEWLINE || b === RETURN) {
      out[pos++] = BACKSLASH;
      out[pos++] = b === BACKSLASH ? BACKSLASH : b === TAB ? 0x74 : b === NEWLINE ? 0x6e : 0x72;
    } else {
      out[pos++] = b;
    }
  }
  return pos;
}

// Whether any byte of a 32-bit word is one escape() changes: x has a zero
// byte exactly when (x - 0x01010101) & ~x & 0x80808080 is not zero.
function needsEscape(word: number): boolean {
  const a = word ^ 0x5c5c5c5c;
  const t = word ^ 0x09090909;
  const n = word ^ 0x0a0a0a0a;
  const r = word ^ 0x0d0d0d0d;
  const zero = ((a - 0x01010101) & ~a) | ((t - 0x01010101) & ~t) | ((n - 0x01010101) & ~n) | ((r - 0x01010101) & ~r);
  return (zero & 0x80808080) !== 0;
}

// Messages are slices of a few large read buffers: one pair of views serves them all.
let lastSource: { bytes: Uint8Array; view: DataView } | undefined;
function sourceViews(data: Buffer): { bytes: Uint8Array; view: DataView } {
  if (lastSource?.bytes.buffer !== data.buffer) lastSource = { bytes: new Uint8Array(data.buffer), view: new DataView(data.buffer) };
  return lastSource;
}

// A row with unchanged TOAST values, as values: text, or copies of binary values' bytes.
function decodeValues(data: Buffer, start: number, count: number, binary: boolean): WireValue[] {
  const values = new Array<WireValue>(count);
  let p = start;
  for (let i = 0; i < count; i++) {
    const kind = data[p++];
    if (kind === TEXT || kind === BINARY) {
      const n = data.readInt32BE(p);
      values[i] = binary ? Buffer.from(data.subarray(p + 4, p + 4 + n)) : data.toString("utf8", p + 4, p + 4 + n);
      p += 4 + n;
    } else {
      values[i] = kind === NULL ? null : UNCHANGED_TOAST;
    }
  }
  return values;
}

/** A row of a change: its values, or its COPY row as the stream sent it. */
export type Row = WireValue[] | WireRow;

/** A row's values in text format. Throws for rows of binary transfer, whose values are not text. */
export function rowValues(row: Row): ColumnValue[] {
  if (row instanceof WireRow) return row.values();
  for (const v of row) if (Buffer.isBuffer(v)) throw new Error("a row of binary transfer has no text values");
  return row as ColumnValue[];
}

/** A row's values as it carries them: text, or bytes under binary transfer. */
export function rowFields(row: Row): WireValue[] {
  return row instanceof WireRow ? row.fields() : row;
}

/** Whether a row carries unchanged TOAST values the stream omitted (only rows of values can). */
export function hasUnchangedToast(row: Row): boolean {
  return !(row instanceof WireRow) && row.includes(UNCHANGED_TOAST);
}

/** Whether a row is one of binary transfer. */
export function isBinary(row: Row): boolean {
  return row instanceof WireRow ? row.binary : row.some((v) => Buffer.isBuffer(v));
}
