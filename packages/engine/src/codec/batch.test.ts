import { describe, expect, test } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ChangeBatchSchema } from "../gen/heliosdb/replication/engine/v1/batch_pb";
import { WireRow } from "../source/wire-row";
import { UNCHANGED_TOAST, type Relation, type RowChange } from "../types";
import { BatchFormatError, encodeBatch, type ChangeBatch } from "./batch";
import { decodeBatch } from "./batch-decode";
import { empty, events, everyKind, users } from "./fixtures";

function roundTrip(batch: ChangeBatch): ChangeBatch {
  return decodeBatch(encodeBatch(batch));
}

function change(batch: ChangeBatch, i: number): RowChange {
  const item = batch.items[i];
  if (item?.kind !== "change") throw new Error(`item ${i} is not a change`);
  return item.change;
}

describe("encodeBatch / decodeBatch", () => {
  test("round-trips every item kind exactly", () => {
    const batch = everyKind();
    const decoded = roundTrip(batch);
    expect(decoded).toStrictEqual(batch);
  });

  test("keeps NULL, UNCHANGED_TOAST and the empty string apart", () => {
    const decoded = roundTrip({
      sequence: 1n,
      items: [{ kind: "change", change: { kind: "insert", relation: users, newRow: ["", null, UNCHANGED_TOAST, "null"] } }],
    });
    const insert = change(decoded, 0);
    expect(insert.kind === "insert" && insert.newRow).toStrictEqual(["", null, UNCHANGED_TOAST, "null"]);
  });

  test("an update without an old row decodes without one", () => {
    const decoded = roundTrip({
      sequence: 1n,
      items: [{ kind: "change", change: { kind: "update", relation: users, newRow: ["1", null, null, null] } }],
    });
    expect("oldRow" in change(decoded, 0)).toBe(false);
  });

  test("an update with an empty old row keeps it", () => {
    const decoded = roundTrip({
      sequence: 1n,
      items: [{ kind: "change", change: { kind: "update", relation: empty, oldRow: [], newRow: [] } }],
    });
    expect(change(decoded, 0)).toStrictEqual({ kind: "update", relation: empty, oldRow: [], newRow: [] });
  });

  test("carries LSNs and sequence numbers across the whole uint64 range", () => {
    for (const lsn of [0n, 1n, (1n << 32n) - 1n, 1n << 32n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n]) {
      const decoded = roundTrip({
        sequence: lsn,
        items: [{ kind: "commit", transaction: { xid: 5, commitLsn: lsn, endLsn: lsn, commitTime: new Date(1) } }],
      });
      expect(decoded.sequence).toBe(lsn);
      expect(decoded.items[0]).toStrictEqual({
        kind: "commit",
        transaction: { xid: 5, commitLsn: lsn, endLsn: lsn, commitTime: new Date(1) },
      });
    }
  });

  test("an empty batch round-trips", () => {
    expect(roundTrip({ sequence: 0n, items: [] })).toStrictEqual({ sequence: 0n, items: [] });
  });

  test("lists each relation once, and decoded changes share it", () => {
    const copy: Relation = structuredClone(users);
    const batch: ChangeBatch = {
      sequence: 3n,
      items: [
        { kind: "change", change: { kind: "insert", relation: users, newRow: ["1", null, null, null] } },
        { kind: "change", change: { kind: "insert", relation: copy, newRow: ["2", null, null, null] } },
        { kind: "change", change: { kind: "truncate", relations: [users, events], cascade: false, restartIdentity: true } },
        { kind: "change", change: { kind: "delete", relation: events, oldRow: ["a", "b"] } },
      ],
    };
    const bytes = encodeBatch(batch);
    const message = fromBinary(ChangeBatchSchema, bytes);
    expect(message.relations.map((r) => r.oid)).toEqual([users.oid, events.oid]);

    const decoded = decodeBatch(bytes);
    expect(decoded).toStrictEqual(batch);
    const first = change(decoded, 0);
    const second = change(decoded, 1);
    const truncate = change(decoded, 2);
    if (first.kind !== "insert" || second.kind !== "insert" || truncate.kind !== "truncate") throw new Error("kinds");
    expect(first.relation).toStrictEqual(users);
    expect(second.relation).toBe(first.relation);
    expect(truncate.relations[0]).toBe(first.relation);
  });

  test("keeps both definitions of a relation altered within the batch", () => {
    const altered: Relation = {
      ...users,
      columns: [...users.columns, { name: "email", typeOid: 25, typeName: "text", isKey: false, notNull: true }],
    };
    const batch: ChangeBatch = {
      sequence: 4n,
      items: [
        { kind: "change", change: { kind: "insert", relation: users, newRow: ["1", null, null, null] } },
        { kind: "commit", transaction: { xid: 1, commitLsn: 10n, endLsn: 11n, commitTime: new Date(5) } },
        { kind: "change", change: { kind: "insert", relation: altered, newRow: ["2", null, null, null, "a@b"] } },
      ],
    };
    const bytes = encodeBatch(batch);
    expect(fromBinary(ChangeBatchSchema, bytes).relations).toHaveLength(2);
    expect(decodeBatch(bytes)).toStrictEqual(batch);
  });

  test("refuses values the format cannot carry", () => {
    const commit = (commitLsn: bigint, xid = 1, commitTime = new Date(0)): ChangeBatch => ({
      sequence: 1n,
      items: [{ kind: "commit", transaction: { xid, commitLsn, endLsn: 0n, commitTime } }],
    });
    expect(() => encodeBatch(commit(1n << 64n))).toThrow(RangeError);
    expect(() => encodeBatch(commit(-1n))).toThrow(RangeError);
    expect(() => encodeBatch(commit(0n, -1))).toThrow(RangeError);
    expect(() => encodeBatch(commit(0n, 2 ** 32))).toThrow(RangeError);
    expect(() => encodeBatch(commit(0n, 1, new Date(Number.NaN)))).toThrow(TypeError);
    expect(() => encodeBatch({ sequence: -1n, items: [] })).toThrow(RangeError);
    const badRow = [undefined] as unknown as string[];
    expect(() =>
      encodeBatch({ sequence: 1n, items: [{ kind: "change", change: { kind: "insert", relation: users, newRow: badRow } }] }),
    ).toThrow(TypeError);
  });

  test("refuses malformed bytes with BatchFormatError", () => {
    expect(() => decodeBatch(Uint8Array.of(0xff, 0xff, 0xff))).toThrow(BatchFormatError);
    // An item whose relation index is out of range: item{change{insert{relation: 5, new_row{}}}}.
    const bytes = Uint8Array.of(0x1a, 0x08, 0x0a, 0x06, 0x0a, 0x04, 0x08, 0x05, 0x12, 0x00);
    expect(() => decodeBatch(bytes)).toThrow(/relation index 5 out of range/);
    // A row whose null column index is out of range: relations[0] = {replica_identity: DEFAULT},
    // item{change{insert{relation: 0, new_row{null_columns: [3]}}}}.
    const row = Uint8Array.of(0x12, 0x02, 0x28, 0x01, 0x1a, 0x0a, 0x0a, 0x08, 0x0a, 0x06, 0x08, 0x00, 0x12, 0x02, 0x10, 0x03);
    expect(() => decodeBatch(row)).toThrow(/bad null column index 3/);
    // An empty item.
    expect(() => decodeBatch(Uint8Array.of(0x1a, 0x00))).toThrow(/empty item/);
  });

  test("a nested message is read within its own bounds, not into the item after it", () => {
    // item{change of 5 bytes}, but the item holds only 2: the 5 would fit in the bytes of the next item.
    const overrun = Uint8Array.of(0x1a, 0x02, 0x0a, 0x05, 0x1a, 0x04, 0x0a, 0x02, 0x0a, 0x00);
    expect(() => decodeBatch(overrun)).toThrow(BatchFormatError);
    expect(() => decodeBatch(overrun)).toThrow(/overruns its message/);
    // item{change{insert{relation: <varint cut at the insert's end>}}}, the next item's bytes after it.
    const cut = Uint8Array.of(0x1a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x08, 0x1a, 0x00);
    expect(() => decodeBatch(cut)).toThrow(/truncated varint/);
  });

  test("a COPY row travels as its bytes and comes back as a row of the same bytes", () => {
    // A text line (with an escape and a NULL) inside a larger slab, and a binary tuple.
    const slab = Buffer.from("xx1\ta\\tb\t\\N\tz\nyy");
    const text = new WireRow(slab, 2, slab.length - 2, 4, 5, false);
    const tuple = Buffer.alloc(2 + 4 + 3 + 4);
    tuple.writeInt16BE(2, 0);
    tuple.writeInt32BE(3, 2);
    tuple.write("abc", 6);
    tuple.writeInt32BE(-1, 9);
    const binary = new WireRow(tuple, 0, tuple.length, 2, 3, true);
    const batch: ChangeBatch = {
      sequence: 9n,
      items: [
        { kind: "change", change: { kind: "insert", relation: users, newRow: text } },
        { kind: "change", change: { kind: "update", relation: events, oldRow: binary, newRow: binary } },
        { kind: "change", change: { kind: "delete", relation: users, oldRow: text } },
        { kind: "commit", transaction: { xid: 3, commitLsn: 1n << 40n, endLsn: (1n << 40n) + 8n, commitTime: new Date(1_700_000_000_123) } },
      ],
    };
    const bytes = encodeBatch(batch);
    // What protobuf-es reads in the same bytes: batch.proto's fields.
    const message = fromBinary(ChangeBatchSchema, bytes);
    const insert = message.items[0]?.item;
    if (insert?.case !== "change" || insert.value.change.case !== "insert") throw new Error("not an insert");
    const row = insert.value.change.value.newRow!;
    expect(Buffer.from(row.copyRow).toString()).toBe("1\ta\\tb\t\\N\tz\n");
    expect([row.binary, row.columnCount, row.valueBytes, row.values]).toEqual([false, 4, 5, []]);
    const commit = message.items[3]?.item;
    expect(commit?.case === "commit" && commit.value).toMatchObject({ xid: 3, commitLsn: 1n << 40n, endLsn: (1n << 40n) + 8n });

    const decoded = decodeBatch(bytes);
    const rows = decoded.items.flatMap((item) =>
      item.kind === "change" && item.change.kind !== "truncate"
        ? [item.change.kind === "delete" ? item.change.oldRow : item.change.newRow]
        : [],
    );
    for (const [got, sent] of [[rows[0], text], [rows[1], binary], [rows[2], text]] as const) {
      if (!(got instanceof WireRow)) throw new Error("not a COPY row");
      expect(got.slab.subarray(got.start, got.end)).toEqual(sent.slab.subarray(sent.start, sent.end));
      expect([got.count, got.textBytes, got.binary]).toEqual([sent.count, sent.textBytes, sent.binary]);
    }
    expect((rows[0] as WireRow).values()).toEqual(["1", "a\tb", null, "z"]);
    expect(decoded.items[3]).toStrictEqual(batch.items[3]);
  });

  test("reads a batch of rows of values as protobuf-es writes it (the format before COPY rows)", () => {
    const batch = everyKind();
    // The whole batch through protobuf-es's own encoder, rows as values.
    const relations = [users, events];
    const rowMessage = (row: (string | null | symbol)[]) => ({
      values: row.map((v) => (typeof v === "string" ? v : "")),
      nullColumns: row.flatMap((v, i) => (v === null ? [i] : [])),
      unchangedColumns: row.flatMap((v, i) => (v === UNCHANGED_TOAST ? [i] : [])),
    });
    const bytes = toBinary(
      ChangeBatchSchema,
      create(ChangeBatchSchema, {
        sequence: 7n,
        relations: relations.map((r) => ({
          oid: r.oid,
          schema: r.schema,
          table: r.table,
          replicaIdentity: { d: 1, n: 2, f: 3, i: 4 }[r.replicaIdentity],
          columns: r.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, typeName: c.typeName, isKey: c.isKey, notNull: c.notNull })),
        })),
        items: [
          { item: { case: "change", value: { change: { case: "insert", value: { relation: 0, newRow: rowMessage(["1", "a", null, UNCHANGED_TOAST]) } } } } },
          { item: { case: "commit", value: { xid: 9, commitLsn: 100n, endLsn: 108n, commitTime: timestampFromDate(new Date(12_345)) } } },
        ],
      }),
    );
    expect(decodeBatch(bytes)).toStrictEqual({
      sequence: 7n,
      items: [
        { kind: "change", change: { kind: "insert", relation: users, newRow: ["1", "a", null, UNCHANGED_TOAST] } },
        { kind: "commit", transaction: { xid: 9, commitLsn: 100n, endLsn: 108n, commitTime: new Date(12_345) } },
      ],
    });
    // And every kind, written by this encoder, reads back the same through protobuf-es.
    expect(fromBinary(ChangeBatchSchema, encodeBatch(batch)).items).toHaveLength(batch.items.length);
  });

  test("commit times before 1970 and after 2106 round-trip", () => {
    for (const ms of [-1, -86_400_000 * 365 * 100 - 7, 4_400_000_000_000, 0, 999]) {
      const transaction = { xid: 1, commitLsn: 1n, endLsn: 2n, commitTime: new Date(ms) };
      const decoded = roundTrip({ sequence: 1n, items: [{ kind: "commit", transaction }] });
      expect(decoded.items[0]).toStrictEqual({ kind: "commit", transaction });
    }
  });

  test("refuses a malformed COPY row", () => {
    const line = Buffer.from("1\ta");  // no newline
    const bytes = encodeBatch({ sequence: 1n, items: [{ kind: "change", change: { kind: "insert", relation: users, newRow: new WireRow(line, 0, line.length, 2, 2, false) } }] });
    expect(() => decodeBatch(bytes)).toThrow(/malformed text COPY row/);
  });
});
