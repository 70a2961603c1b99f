import { describe, expect, test } from "vitest";
import { UNCHANGED_TOAST, type ColumnValue } from "../types";
import { parseCopyLine, formatCopyLine } from "./copy-text";
import { LineArena, WireRow, hasUnchangedToast, rowValues, type Row } from "./wire-row";

// TupleData as pgoutput writes it, behind `prefix` bytes of an enclosing message.
function tuple(values: ColumnValue[], prefix = 3): Buffer {
  const parts: Buffer[] = [Buffer.alloc(prefix, 0x49), Buffer.alloc(2)];
  parts[1]!.writeInt16BE(values.length);
  for (const v of values) {
    if (v === null) parts.push(Buffer.from("n"));
    else if (v === UNCHANGED_TOAST) parts.push(Buffer.from("u"));
    else {
      const text = Buffer.from(v, "utf8");
      const head = Buffer.alloc(5);
      head.write("t");
      head.writeInt32BE(text.length, 1);
      parts.push(head, text);
    }
  }
  return Buffer.concat(parts);
}

function read(data: Buffer, offset: number, arena = new LineArena()): WireRow {
  const at = { buf: data, offset };
  const row = WireRow.read(at, arena);
  expect(at.offset).toBe(data.length);
  if (!(row instanceof WireRow)) throw new Error("expected a COPY line");
  return row;
}

function copyLine(row: WireRow): string {
  return row.slab.toString("utf8", row.start, row.end);
}

describe("WireRow", () => {
  const awkward: ColumnValue[] = ["42", null, "tab\there", "line\nbreak\r\n", "back\\slash \\N", "naïve ☃ 🚀", "", "\\", "\t\n\r\\"];

  test("decodes the values it was sent, all at once or one by one", () => {
    const row = read(tuple(awkward), 3);
    expect(row.count).toBe(awkward.length);
    expect(row.textBytes).toBe(awkward.reduce((n, v) => n + (typeof v === "string" ? Buffer.byteLength(v) : 0), 0));
    expect(awkward.map((_, i) => row.key(i))).toEqual(awkward.map(String));
    expect(rowValues(row)).toEqual(awkward);
    expect(hasUnchangedToast(row)).toBe(false);
    expect(rowValues(read(tuple([], 0), 0))).toEqual([]);
    expect(rowValues(read(tuple([""], 0), 0))).toEqual([""]);
  });

  test("is the COPY text line formatCopyLine writes for the same values", () => {
    const line = copyLine(read(tuple(awkward), 3));
    expect(line.endsWith("\n")).toBe(true);
    expect(parseCopyLine(line.slice(0, -1))).toEqual(awkward);
    // formatCopyLine also escapes \b \f \v; neither form needs more than backslash, tab, newline, return.
    expect(line).toBe(formatCopyLine(awkward));
    expect(copyLine(read(tuple([null], 0), 0))).toBe("\\N\n");
  });

  test("every byte that needs escaping is escaped, wherever it falls in a four-byte word", () => {
    const alphabet = ["a", "\\", "\t", "\n", "\r", "é", "\\N", "🚀", "\u0001", "\u00ff", "Z"];
    let seed = 7;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const arena = new LineArena();
    for (let i = 0; i < 500; i++) {
      const values = Array.from({ length: 1 + random(6) }, () =>
        random(8) === 0 ? null : Array.from({ length: random(24) }, () => alphabet[random(alphabet.length)]).join(""),
      );
      // The message's other bytes shift where the values fall against four-byte words.
      const prefix = random(5);
      const row = read(tuple(values, prefix), prefix, arena);
      expect(copyLine(row)).toBe(formatCopyLine(values));
      expect(row.values()).toEqual(values);
    }
  });

  test("rows share slabs, in stream order, and a full slab is never written again", () => {
    const arena = new LineArena();
    const rows: WireRow[] = [];
    const big = "\\".repeat(300_000); // 600 kB escaped: two of them fill a slab
    for (const v of ["a", big, "b", big, "c"]) rows.push(read(tuple([v], 0), 0, arena));
    expect(rows[1]!.slab).toBe(rows[0]!.slab);
    expect(rows[1]!.start).toBe(rows[0]!.end);
    expect(rows[3]!.slab).not.toBe(rows[1]!.slab);
    expect(rows.map((r) => r.key(0))).toEqual(["a", big, "b", big, "c"]);
    const huge = read(tuple(["x".repeat(3 << 20)], 0), 0, arena);
    expect(huge.key(0)).toHaveLength(3 << 20);
    expect(rows[4]!.key(0)).toBe("c");
  });

  test("a row with unchanged TOAST values comes back as its values", () => {
    const row = WireRow.read({ buf: tuple(["1", UNCHANGED_TOAST, "x"], 0), offset: 0 }, new LineArena());
    expect(row).toEqual(["1", UNCHANGED_TOAST, "x"]);
    expect(hasUnchangedToast(row as Row)).toBe(true);
  });

  test("binary transfer: the row is a binary COPY tuple; its fields are the bytes sent; text values are refused", () => {
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(42n);
    const data = Buffer.concat([Buffer.from([0, 3]), Buffer.from("b"), Buffer.from([0, 0, 0, 8]), int8, Buffer.from("n"), Buffer.from("b"), Buffer.from([0, 0, 0, 3]), Buffer.from("a\tb")]);
    const at = { buf: data, offset: 0 };
    const row = WireRow.read(at, new LineArena(), true) as WireRow;
    expect(at.offset).toBe(data.length);
    expect(row.binary).toBe(true);
    expect(row.slab.subarray(row.start, row.end)).toEqual(
      Buffer.concat([Buffer.from([0, 3, 0, 0, 0, 8]), int8, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 3]), Buffer.from("a\tb")]),
    );
    expect(row.fields()).toEqual([int8, null, Buffer.from("a\tb")]);
    expect(row.key(0)).toBe(int8.toString("latin1"));
    expect(() => row.values()).toThrow(/no text values/);
    expect(() => WireRow.read({ buf: tuple(["1"], 0), offset: 0 }, new LineArena(), true)).toThrow(/binary format expected/);
  });

  test("lengths that overrun the message and unknown kinds are refused", () => {
    const arena = new LineArena();
    const whole = tuple(["abc", "defgh"], 0);
    expect(() => WireRow.read({ buf: whole.subarray(0, whole.length - 1), offset: 0 }, arena)).toThrow(/overruns/);
    expect(() => WireRow.read({ buf: whole.subarray(0, 4), offset: 0 }, arena)).toThrow(/truncated value length/);
    expect(() => WireRow.read({ buf: whole.subarray(0, 1), offset: 0 }, arena)).toThrow(/truncated tuple/);
    const negative = tuple(["abc"], 0);
    negative.writeInt32BE(-5, 3);
    expect(() => WireRow.read({ buf: negative, offset: 0 }, arena)).toThrow(/-5 bytes/);
    expect(() => WireRow.read({ buf: Buffer.from([0, 1, 0x62]), offset: 0 }, arena)).toThrow(/kind "b"/);
    expect(() => WireRow.read({ buf: Buffer.from([0, 2, 0x6e]), offset: 0 }, arena)).toThrow(/end of message/);
  });
});
