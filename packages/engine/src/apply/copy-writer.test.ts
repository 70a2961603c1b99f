import { Writable } from "node:stream";
import { expect, test } from "vitest";
import { formatCopyLine } from "../source/copy-text";
import { LineArena, WireRow, type Row } from "../source/wire-row";
import type { ColumnValue } from "../types";
import { CopyWriter } from "./copy-writer";

function sink() {
  const writes: Buffer[] = [];
  let ended = false;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push(chunk);
      done();
    },
    final(done) {
      ended = true;
      done();
    },
  });
  return { stream, writes, text: () => Buffer.concat(writes).toString("utf8"), ended: () => ended };
}

// pgoutput TupleData for `values` (all sent as text).
function wire(arena: LineArena, values: (string | null)[]): WireRow {
  const parts: Buffer[] = [Buffer.from([0, values.length])];
  for (const v of values) {
    if (v === null) parts.push(Buffer.from("n"));
    else {
      const text = Buffer.from(v);
      const head = Buffer.alloc(5, "t");
      head.writeInt32BE(text.length, 1);
      parts.push(head, text);
    }
  }
  return WireRow.read({ buf: Buffer.concat(parts), offset: 0 }, arena) as WireRow;
}

test("adjacent lines of one slab go out as one piece; the output is every row, in order", async () => {
  const arena = new LineArena();
  const values: ColumnValue[][] = [];
  const rows: Row[] = [];
  for (let i = 0; i < 2000; i++) {
    values.push([String(i), `name\t${i}`, null]);
    rows.push(wire(arena, values[i] as (string | null)[]));
  }
  const out = sink();
  const writer = new CopyWriter(out.stream, false);
  for (const row of rows) writer.row(row);
  writer.end();
  await new Promise((r) => out.stream.on("finish", r));
  expect(out.text()).toBe(values.map(formatCopyLine).join(""));
  expect(out.writes.length).toBe(1);
  expect(out.ended()).toBe(true);
});

test("interleaved tables, extra columns and rows of values keep their order", async () => {
  const arena = new LineArena();
  const a1 = wire(arena, ["1", "a"]);
  wire(arena, ["other table"]);
  const a2 = wire(arena, ["2", "b\\"]);
  const a3 = wire(arena, ["3", null]);
  const out = sink();
  const writer = new CopyWriter(out.stream, false);
  writer.row(a1);
  writer.row(a2);
  writer.row(a3, { op: "u", expect: false });
  writer.row(["4", "ü\n"]);
  writer.row(["5", null], { op: "d", expect: true });
  writer.row(a1);
  writer.end();
  await new Promise((r) => out.stream.on("finish", r));
  expect(out.text()).toBe("1\ta\n2\tb\\\\\n3\t\\N\tu\tf\n4\tü\\n\n5\t\\N\td\tt\n1\ta\n");
});
