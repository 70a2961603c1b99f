import { create } from "@bufbuild/protobuf";
import { AnonymizePIITransform_AnonymizationMethod as Method, TransformSchema } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { formatCopyLine, parseCopyLine } from "../source/copy-text";
import { LineArena, WireRow } from "../source/wire-row";
import type { Column, ColumnValue, Relation } from "../types";
import { hashValue } from "./anonymize";
import { MasterKeyProvider } from "./keys";
import { planRowTransforms } from "./plan";

const keys = new MasterKeyProvider(Buffer.alloc(32, 9));
const col = (name: string, typeName: string, typeOid: number, isKey = false): Column => ({ name, typeName, typeOid, isKey, notNull: isKey });
const people: Relation = {
  oid: 1, schema: "public", table: "people", replicaIdentity: "d",
  columns: [col("id", "bigint", 20, true), col("email", "text", 25), col("zip", "text", 25), col("note", "text", 25), col("bio", "text", 25), col("born", "date", 1082)],
};

async function plan() {
  const transforms = [
    create(TransformSchema, { transformType: { case: "anonymizePii", value: { method: Method.HASH, columns: ["email", "note"] } } }),
    create(TransformSchema, { transformType: { case: "anonymizePii", value: { method: Method.GENERALIZE, columns: ["zip", "born"] } } }),
    create(TransformSchema, { transformType: { case: "compressColumns", value: { columns: ["bio"] } } }),
  ];
  return (await planRowTransforms("tenant", transforms, [people], { keys })).forRelation(people);
}

/** A row as the decoder writes it: a COPY text line inside a larger slab. */
function wire(values: ColumnValue[]): WireRow {
  const line = Buffer.from(formatCopyLine(values));
  const slab = Buffer.concat([Buffer.from("\tjunk\\"), line, Buffer.from("more\tjunk\n")]);
  const textBytes = values.reduce((n, v) => n + (typeof v === "string" ? Buffer.byteLength(v) : 0), 0);
  return new WireRow(slab, 6, 6 + line.length, values.length, textBytes, false);
}

const rows: ColumnValue[][] = [
  ["1", "a@b.c", "94105", "plain", "short bio", "1990-07-14"],
  // Escapes in transformed and untouched columns; tabs, newlines and backslashes in values.
  ["2", "tab\there", "back\\slash", "new\nline", "x\ty\\z\r", "2001-02-03"],
  // NULLs stay NULL; empty strings are values.
  ["3", null, "", null, null, null],
  ["4", "", "ü€😀 unicode", "é".repeat(100), "long ".repeat(500), "1999-12-31"],
  // A value longer than one SHA-256 block, and exactly at the padding edges.
  ["5", "x".repeat(55), "y".repeat(56), "z".repeat(64), "b", "2020-01-01"],
  // Untouched bytes before the first transformed column long enough to be copied in one call, not byte by byte.
  ["6".repeat(40), "e@x", "zip", "n", "b", "2020-01-01"],
];

test("a COPY line transforms to the line of the transformed values, decoding only the transformed columns", async () => {
  const p = await plan();
  const arena = new LineArena();
  for (const values of rows) {
    const before = wire(values);
    const after = p.transformLine(before, arena);
    const expected = formatCopyLine(p.transform(values));
    expect(after.slab.toString("utf8", after.start, after.end)).toBe(expected);
    expect(after.values()).toEqual(p.transform(values));
    expect([after.count, after.binary]).toEqual([values.length, false]);
    // The value bytes the applier counts: the transformed row's, as if it had been sent so.
    const out = p.transform(values);
    expect(after.textBytes).toBe(out.reduce<number>((n, v) => n + (typeof v === "string" ? Buffer.byteLength(v) : 0), 0));
    // The input row is left as it was.
    expect(before.values()).toEqual(values);
  }
});

test("hashes on the line equal HMAC-SHA-256 by node:crypto, escaped or not", async () => {
  const p = await plan();
  const key = await keys.key("tenant", "hash");
  const arena = new LineArena();
  for (const email of ["a@b.c", "tab\there", "", "ü€😀", "x".repeat(300)]) {
    const out = p.transformLine(wire(["1", email, null, null, null, null]), arena).values();
    expect(out[1]).toBe(hashValue(key, email));
  }
});

test("rows keep coming after the arena's slab fills, and earlier rows are not overwritten", async () => {
  const p = await plan();
  const arena = new LineArena();
  const written: { row: WireRow; text: string }[] = [];
  for (let i = 0; i < 3000; i++) {
    const values = [String(i), `user${i}@example.com`, `${i} `.repeat(100), `note ${i}`, null, "2000-01-01"];
    const row = p.transformLine(wire(values), arena);
    written.push({ row, text: formatCopyLine(p.transform(values)) });
  }
  expect(new Set(written.map((w) => w.row.slab)).size).toBeGreaterThan(1);
  for (const { row, text } of written) expect(row.slab.toString("utf8", row.start, row.end)).toBe(text);
});

test("a failing transform names its column and not its value; a short line is refused", async () => {
  const p = await plan();
  const arena = new LineArena();
  expect(() => p.transformLine(wire(["1", "a", "b", "c", "d", "not a date"]), arena)).toThrow(/transforming public\.people\.born failed/);
  expect(() => p.transformLine(wire(["1", "a", "b", "c", "d", "not a date"]), arena)).not.toThrow(/not a date/);
  const short = Buffer.from("1\ta\n");
  expect(() => p.transformLine(new WireRow(short, 0, short.length, 2, 2, false), arena)).toThrow(/a line of 2 columns/);
  // parseCopyLine agrees with what the line transform leaves untouched.
  expect(parseCopyLine("1\t\\N\tx")).toEqual(["1", null, "x"]);
});

test("more Hash columns than the lanes hold are hashed in several passes, each equal to node:crypto's", async () => {
  const names = ["a", "b", "c", "d", "e", "f"];
  const wide: Relation = {
    oid: 2, schema: "public", table: "wide", replicaIdentity: "d",
    columns: [col("id", "bigint", 20, true), ...names.map((n) => col(n, "text", 25))],
  };
  const transforms = [create(TransformSchema, { transformType: { case: "anonymizePii", value: { method: Method.HASH, columns: names.slice(0, 5) } } })];
  const p = (await planRowTransforms("tenant", transforms, [wide], { keys })).forRelation(wide);
  const key = await keys.key("tenant", "hash");
  const arena = new LineArena();
  const values: ColumnValue[] = ["7", "short", null, "x".repeat(200), "", "esc\\aped", "kept"];
  const after = p.transformLine(wire(values), arena).values();
  expect(after).toEqual(["7", hashValue(key, "short"), null, hashValue(key, "x".repeat(200)), hashValue(key, ""), hashValue(key, "esc\\aped"), "kept"]);
});
