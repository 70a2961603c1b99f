// A row transform applied to a COPY text line, the form rows travel in from
// the source to the target. Only the transformed columns' fields are decoded
// into strings and written back; the bytes between them are copied as they
// are. A row of nine columns with three hashed ones decodes three values,
// not nine, and formats none of the other six. Fixed-length outputs (Hash)
// are written last, into the room left for them, so that the columns that
// share a LaneWriter are computed in one call.
import { escapeField, unescapeField } from "../source/copy-text";
import { WireRow, type LineArena } from "../source/wire-row";
import type { FixedBytesTransform, LaneWriter, ValueTransform } from "./anonymize";

/** One transformed column: its index in the row and its function. */
export interface LineStep {
  index: number;
  fn: ValueTransform;
  /** Used instead of `fn` for a field without escapes: its bytes are its value's. */
  bytes?: FixedBytesTransform;
  /** Says which column failed, since the function's own message cannot. */
  describe: string;
}

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const N = 0x4e;
const BYTES = Symbol("bytes");

/**
 * A function that writes `row` (a text COPY line) with the steps' columns
 * transformed into `arena`, and returns the new line. NULL fields stay NULL.
 * Steps are in column order.
 */
export function lineTransform(steps: readonly LineStep[]): (row: WireRow, arena: LineArena) => WireRow {
  // Field bounds and outputs, reused across rows: [from, to) of each step's field.
  const from = new Array<number>(steps.length);
  const to = new Array<number>(steps.length);
  // A step's output: text to write, BYTES (its bytes transform writes it), or undefined (NULL, left as it is).
  const outputs = new Array<string | typeof BYTES | undefined>(steps.length);
  // Where each BYTES output goes in the new line.
  const holes = new Array<number>(steps.length);
  const groups = new Map<LaneWriter, LaneGroup>();
  const groupOf = steps.map((step) => {
    const lanes = step.bytes?.lanes;
    if (!lanes) return undefined;
    let group = groups.get(lanes);
    if (!group) groups.set(lanes, (group = new LaneGroup(lanes)));
    return group;
  });
  return (row, arena) => {
    if (row.binary) throw new Error("a row of binary transfer has no text to transform");
    const src = row.slab;
    const end = row.end - 1; // the newline
    let valueBytes = row.textBytes;
    let extra = 0;
    let field = 0;
    let p = row.start;
    for (let s = 0; s < steps.length; s++) {
      const step = steps[s]!;
      while (field < step.index) {
        const tab = find(src, TAB, p, end);
        if (tab === end) throw new Error(`a line of ${field + 1} columns, expected more than ${step.index}`);
        p = tab + 1;
        field++;
      }
      const q = find(src, TAB, p, end);
      from[s] = p;
      to[s] = q;
      if (q - p === 2 && src[p] === BACKSLASH && src[p + 1] === N) {
        outputs[s] = undefined; // NULL: not transformed
        continue;
      }
      const bytes = step.bytes;
      if (bytes && find(src, BACKSLASH, p, q) === q) {
        outputs[s] = BYTES;
        valueBytes += bytes.length - (q - p);
        extra += bytes.length;
        continue;
      }
      const raw = src.toString("utf8", p, q);
      const escaped = raw.includes("\\");
      const value = escaped ? unescapeField(raw) : raw;
      let out: string;
      try {
        out = step.fn(value);
      } catch (e) {
        throw new Error(`transforming ${step.describe} failed: ${(e as Error).message}`, { cause: e });
      }
      valueBytes += Buffer.byteLength(out) - (escaped ? Buffer.byteLength(value) : q - p);
      const text = escapeField(out);
      outputs[s] = text;
      extra += text.length * 3; // at most 3 UTF-8 bytes per UTF-16 unit
    }
    arena.reserve(row.end - row.start + extra);
    const slab = arena.slab;
    const lineStart = arena.pos;
    let pos = lineStart;
    let copied = row.start;
    for (let s = 0; s < steps.length; s++) {
      const text = outputs[s];
      if (text === undefined) continue;
      pos += copyBytes(src, copied, from[s]!, slab, pos);
      if (text === BYTES) {
        holes[s] = pos;
        pos += steps[s]!.bytes!.length;
      } else {
        pos += slab.write(text, pos, "utf8");
      }
      copied = to[s]!;
    }
    pos += copyBytes(src, copied, row.end, slab, pos);
    if (slab[pos - 1] !== NEWLINE) throw new Error("a COPY line without its newline");
    for (let s = 0; s < steps.length; s++) {
      if (outputs[s] !== BYTES) continue;
      const group = groupOf[s];
      if (group) group.add(src, from[s]!, to[s]!, slab, holes[s]!);
      else steps[s]!.bytes!.write(src, from[s]!, to[s]!, slab, holes[s]!);
    }
    for (const group of groups.values()) group.flush();
    arena.pos = pos;
    return new WireRow(slab, lineStart, pos, row.count, valueBytes, false);
  };
}

// The first `byte` in [from, to), or `to`. A loop, not Buffer.indexOf: fields
// are short, and indexOf would search on past the line.
function find(src: Uint8Array, byte: number, from: number, to: number): number {
  let p = from;
  while (p < to && src[p] !== byte) p++;
  return p;
}

// Copies src[from, to) to dst[at]; returns the length. Short runs (the tab
// between two adjacent transformed columns) byte by byte: Node 20's
// Buffer.copy makes a view of the source each call, which cost more than the
// copy below about 32 bytes (200 against 50 ns for 8 bytes).
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n >= 32) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!;
  return n;
}

// One row's pending values for a LaneWriter, written a full call at a time.
class LaneGroup {
  private readonly from: Int32Array;
  private readonly to: Int32Array;
  private readonly at: Int32Array;
  private count = 0;
  private src: Uint8Array | undefined;
  private out: Uint8Array | undefined;

  constructor(private readonly lanes: LaneWriter) {
    this.from = new Int32Array(lanes.width);
    this.to = new Int32Array(lanes.width);
    this.at = new Int32Array(lanes.width);
  }

  add(src: Uint8Array, from: number, to: number, out: Uint8Array, at: number): void {
    this.src = src;
    this.out = out;
    this.from[this.count] = from;
    this.to[this.count] = to;
    this.at[this.count] = at;
    if (++this.count === this.lanes.width) this.flush();
  }

  flush(): void {
    if (this.count === 0) return;
    const { src, out, count } = this;
    this.count = 0;
    // Not kept past the row: they are the reader's and the arena's slabs, 1 MiB each.
    this.src = this.out = undefined;
    this.lanes.writeLanes(src!, this.from, this.to, count, out!, this.at);
  }
}
