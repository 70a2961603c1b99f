import { describe, expect, test } from "vitest";
import { UNCHANGED_TOAST, type ColumnValue } from "../types";
import { parseCopyLine, formatCopyLine } from "./copy-text";
import { WireRow, rowValues } from "./wire-row";

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

function copyLine(row: WireRow): string {
  const out = Buffer.alloc(row.maxCopyLineBytes);
  return out.toString("utf8", 0, row.writeCopyLine(out, 0));
}

describe("WireRow", () => {
  const awkward: ColumnValue[] = ["42", null, "tab\there", "line\nbreak\r\n", "back\\slash \\N", "naïve ☃ 🚀", "", "\\", "\t\n\r\\"];

  test("decodes the values it was sent, all at once or one by one", () => {
    const row = WireRow.read(tuple(awkward), 3);
    expect(row.count).toBe(awkward.length);
    expect(row.hasUnchangedToast).toBe(false);
    expect(row.textBytes).toBe(awkward.reduce((n, v) => n + (typeof v === "string" ? Buffer.byteLength(v) : 0), 0));
    expect(awkward.map((_, i) => row.value(i))).toEqual(awkward);
    expect(rowValues(row)).toEqual(awkward);
    expect(row.value(5)).toBe("naïve ☃ 🚀"); // after values() too
  });

  test("writes the COPY text line formatCopyLine writes for the same values, and COPY reads it back", () => {
    const row = WireRow.read(tuple(awkward), 3);
    const line = copyLine(row);
    expect(parseCopyLine(line)).toEqual(awkward);
    // formatCopyLine also escapes \b \f \v; neither form needs more than backslash, tab, newline, return.
    expect(`${line}\n`).toBe(formatCopyLine(awkward));
    expect(copyLine(WireRow.read(tuple([null], 0), 0))).toBe("\\N");
    expect(copyLine(WireRow.read(tuple([], 0), 0))).toBe("");
  });

  test("the worst case fits the room it asks for", () => {
    const row = WireRow.read(tuple(["\\".repeat(1000), "\n".repeat(7), null], 0), 0);
    const out = Buffer.alloc(row.maxCopyLineBytes);
    expect(row.writeCopyLine(out, 0)).toBeLessThanOrEqual(out.length);
    expect(parseCopyLine(out.toString("utf8", 0, row.writeCopyLine(out, 0)))).toEqual(["\\".repeat(1000), "\n".repeat(7), null]);
  });

  test("an unchanged TOAST value is flagged and has no COPY line", () => {
    const row = WireRow.read(tuple(["1", UNCHANGED_TOAST, "x"]), 3);
    expect(row.hasUnchangedToast).toBe(true);
    expect(row.values()).toEqual(["1", UNCHANGED_TOAST, "x"]);
    expect(() => copyLine(row)).toThrow(/unchanged TOAST/);
  });

  test("lengths that overrun the message and unknown kinds are refused", () => {
    const whole = tuple(["abc", "defgh"], 0);
    expect(() => WireRow.read(whole.subarray(0, whole.length - 1), 0)).toThrow(/overruns/);
    expect(() => WireRow.read(whole.subarray(0, 4), 0)).toThrow(/truncated value length/);
    expect(() => WireRow.read(whole.subarray(0, 1), 0)).toThrow(/truncated tuple/);
    const negative = tuple(["abc"], 0);
    negative.writeInt32BE(-5, 3);
    expect(() => WireRow.read(negative, 0)).toThrow(/-5 bytes/);
    expect(() => WireRow.read(Buffer.from([0, 1, 0x62]), 0)).toThrow(/kind "b"/);
    expect(() => WireRow.read(Buffer.from([0, 2, 0x6e]), 0)).toThrow(/end of message/);
  });
});
