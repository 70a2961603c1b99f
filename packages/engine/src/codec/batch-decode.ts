// Reading a batch: the hot messages (items, changes, COPY rows, commits) by
// hand, in batch-wire.ts's terms; relations, truncates and rows of values
// through protobuf-es. Rows in COPY form come back as WireRows that point into
// the batch's own bytes.
import { fromBinary } from "@bufbuild/protobuf";
import { RelationSchema, ReplicaIdentity, RowSchema, TruncateSchema, type Relation as RelationMessage, type Row as RowMessage } from "../gen/heliosdb/replication/engine/v1/batch_pb";
import { WireRow } from "../source/wire-row";
import { UNCHANGED_TOAST, type ColumnValue, type Relation, type Row, type RowChange, type TransactionInfo } from "../types";
import { BatchFormatError, type BatchItem, type ChangeBatch } from "./batch";
import { WireReader } from "./batch-wire";

const NEWLINE = 0x0a;

/**
 * The relations a reader has decoded, by their message's bytes: the batches
 * of one stream list the same few relations again and again, and each is
 * parsed once (and the applier sees one object per definition, batch after
 * batch).
 */
export class RelationCache {
  private readonly known = new Map<string, Relation>();

  get(bytes: Buffer, where: string): Relation {
    const key = bytes.toString("latin1");
    let relation = this.known.get(key);
    if (!relation) {
      relation = decodeRelation(fromBinary(RelationSchema, bytes), where);
      // Bounded: a stream whose tables keep changing shape does not grow it without end.
      if (this.known.size >= 1_000) this.known.clear();
      this.known.set(key, relation);
    }
    return relation;
  }
}

/**
 * Parses a batch that encodeBatch wrote. Changes that reference the same
 * relation share one Relation object (and batches read with the same cache,
 * across batches). Throws BatchFormatError for malformed bytes.
 */
export function decodeBatch(bytes: Uint8Array, relations = new RelationCache()): ChangeBatch {
  // A Buffer, so the COPY rows read as views of it can be read as rows.
  const payload = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return readBatch(payload, relations);
  } catch (error) {
    if (error instanceof BatchFormatError) throw error;
    throw new BatchFormatError(`malformed batch: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function readBatch(payload: Buffer, cache: RelationCache): ChangeBatch {
  const r = new WireReader(payload, 0, payload.length);
  let sequence = 0n;
  const relations: Relation[] = [];
  // Each item's start and end, in pairs: items are read once the relations they refer to are.
  const itemBounds: number[] = [];
  while (!r.done) {
    r.next();
    const { field, wire } = r;
    if (field === 1) {
      r.expect(wire, "varint", field);
      sequence = r.varint64();
    } else if (field === 2) {
      r.expect(wire, "len", field);
      const start = r.len();
      relations.push(cache.get(payload.subarray(start, r.pos), `relation ${relations.length}`));
    } else if (field === 3) {
      r.expect(wire, "len", field);
      itemBounds.push(r.len(), r.pos);
    } else {
      r.skip(wire);
    }
  }
  const relationAt = (index: number, item: number): Relation => {
    const relation = relations[index];
    if (!relation) throw new BatchFormatError(`item ${item}: relation index ${index} out of range (${relations.length} relations)`);
    return relation;
  };
  const items: BatchItem[] = new Array(itemBounds.length / 2);
  for (let i = 0; i < items.length; i++) {
    const outer = r.narrow(itemBounds[2 * i]!, itemBounds[2 * i + 1]!);
    items[i] = readItem(r, relationAt, i);
    r.leave(outer);
  }
  return { sequence, items };
}

function decodeRelation(relation: RelationMessage, where: string): Relation {
  let replicaIdentity: Relation["replicaIdentity"];
  switch (relation.replicaIdentity) {
    case ReplicaIdentity.DEFAULT:
      replicaIdentity = "d";
      break;
    case ReplicaIdentity.NOTHING:
      replicaIdentity = "n";
      break;
    case ReplicaIdentity.FULL:
      replicaIdentity = "f";
      break;
    case ReplicaIdentity.INDEX:
      replicaIdentity = "i";
      break;
    default:
      throw new BatchFormatError(`${where}: unknown replica identity ${relation.replicaIdentity}`);
  }
  return {
    oid: relation.oid,
    schema: relation.schema,
    table: relation.table,
    columns: relation.columns.map((column) => ({
      name: column.name,
      typeOid: column.typeOid,
      typeName: column.typeName,
      isKey: column.isKey,
      notNull: column.notNull,
    })),
    replicaIdentity,
  };
}

// The item's index, not a message naming it, goes down to the readers below:
// they build one only to throw it.
type RelationAt = (index: number, item: number) => Relation;

function readItem(r: WireReader, relationAt: RelationAt, item: number): BatchItem {
  let read: BatchItem | undefined;
  while (!r.done) {
    r.next();
    const { field, wire } = r;
    if (field !== 1 && field !== 2) {
      r.skip(wire);
      continue;
    }
    r.expect(wire, "len", field);
    const outer = r.enter();
    // A oneof: the last member on the wire wins, as protobuf reads it.
    read = field === 1 ? { kind: "change", change: readChange(r, relationAt, item) } : { kind: "commit", transaction: readCommit(r, item) };
    r.leave(outer);
  }
  if (!read) throw new BatchFormatError(`item ${item}: empty item`);
  return read;
}

function readChange(r: WireReader, relationAt: RelationAt, item: number): RowChange {
  let change: RowChange | undefined;
  while (!r.done) {
    r.next();
    const { field, wire } = r;
    if (field < 1 || field > 4) {
      r.skip(wire);
      continue;
    }
    r.expect(wire, "len", field);
    if (field === 4) {
      const start = r.len();
      const truncate = fromBinary(TruncateSchema, r.buf.subarray(start, r.pos));
      change = {
        kind: "truncate",
        relations: truncate.relations.map((index) => relationAt(index, item)),
        cascade: truncate.cascade,
        restartIdentity: truncate.restartIdentity,
      };
      continue;
    }
    // Insert, Update, Delete: relation = 1; rows at 2 (Update's old row) and 3 (its new one), or 2.
    const outer = r.enter();
    let relation = 0;
    let second: Row | undefined;
    let third: Row | undefined;
    while (!r.done) {
      r.next();
      const inner = r.field;
      if (inner === 1) {
        r.expect(r.wire, "varint", 1);
        relation = r.varint();
      } else if (inner === 2 || inner === 3) {
        r.expect(r.wire, "len", inner);
        const rowOuter = r.enter();
        const row = readRow(r, item, inner === 3 || field === 1 ? "new" : "old");
        r.leave(rowOuter);
        if (inner === 2) second = row;
        else third = row;
      } else {
        r.skip(r.wire);
      }
    }
    r.leave(outer);
    const rel = relationAt(relation, item);
    if (field === 1) change = { kind: "insert", relation: rel, newRow: present(second, item, "new") };
    else if (field === 3) change = { kind: "delete", relation: rel, oldRow: present(second, item, "old") };
    else {
      const update: RowChange = { kind: "update", relation: rel, newRow: present(third, item, "new") };
      if (second) update.oldRow = second;
      change = update;
    }
  }
  if (!change) throw new BatchFormatError(`item ${item}: empty change`);
  return change;
}

function present(row: Row | undefined, item: number, which: "new" | "old"): Row {
  if (!row) throw new BatchFormatError(`item ${item}: ${which} row: missing`);
  return row;
}

// A Row in COPY form (fields 4 to 7) is read here, and points into the
// batch's own bytes: no value is decoded until the applier needs one. A row
// of values (fields 1 to 3) is left to protobuf-es.
function readRow(r: WireReader, item: number, which: "new" | "old"): Row {
  const rowStart = r.pos;
  let copyStart = -1;
  let copyEnd = -1;
  let binary = false;
  let count = 0;
  let valueBytes = 0;
  while (!r.done) {
    r.next();
    const { field, wire } = r;
    if (field >= 1 && field <= 3) return decodeValuesRow(fromBinary(RowSchema, r.buf.subarray(rowStart, r.end)), `item ${item}: ${which} row`);
    if (field === 4) {
      r.expect(wire, "len", field);
      copyStart = r.len();
      copyEnd = r.pos;
    } else if (field === 5) {
      r.expect(wire, "varint", field);
      binary = r.varint() !== 0;
    } else if (field === 6) {
      r.expect(wire, "varint", field);
      count = r.varint();
    } else if (field === 7) {
      r.expect(wire, "varint", field);
      valueBytes = r.varint();
    } else {
      r.skip(wire);
    }
  }
  // An empty Row is a row of no values (a table without columns).
  if (copyEnd === copyStart) return [];
  const slab = r.buf;
  const wellFormed = binary ? copyEnd - copyStart >= 2 && slab.readInt16BE(copyStart) === count : slab[copyEnd - 1] === NEWLINE;
  if (!wellFormed) throw new BatchFormatError(`item ${item}: ${which} row: malformed ${binary ? "binary" : "text"} COPY row`);
  return new WireRow(slab, copyStart, copyEnd, count, valueBytes, binary);
}

function decodeValuesRow(row: RowMessage, where: string): ColumnValue[] {
  if (row.copyRow.length > 0) throw new BatchFormatError(`${where}: a COPY row that also lists values`);
  const values: ColumnValue[] = [...row.values];
  const mark = (indexes: number[], marker: null | typeof UNCHANGED_TOAST, what: string) => {
    for (const index of indexes) {
      // The encoder leaves a marked column's text empty and marks it once.
      if (index >= values.length || values[index] !== "") {
        throw new BatchFormatError(`${where}: bad ${what} column index ${index} (${values.length} columns)`);
      }
      values[index] = marker;
    }
  };
  mark(row.nullColumns, null, "null");
  mark(row.unchangedColumns, UNCHANGED_TOAST, "unchanged");
  return values;
}

function readCommit(r: WireReader, item: number): TransactionInfo {
  let xid = 0;
  let commitLsn = 0n;
  let endLsn = 0n;
  let commitTime: Date | undefined;
  while (!r.done) {
    r.next();
    const { field, wire } = r;
    if (field === 1) {
      r.expect(wire, "varint", field);
      xid = r.varint();
    } else if (field === 2 || field === 3) {
      r.expect(wire, "varint", field);
      if (field === 2) commitLsn = r.varint64();
      else endLsn = r.varint64();
    } else if (field === 4) {
      r.expect(wire, "len", field);
      const outer = r.enter();
      commitTime = readTimestamp(r);
      r.leave(outer);
    } else {
      r.skip(wire);
    }
  }
  if (!commitTime) throw new BatchFormatError(`item ${item}: commit without a commit time`);
  if (Number.isNaN(commitTime.getTime())) throw new BatchFormatError(`item ${item}: commit time out of range`);
  return { xid, commitLsn, endLsn, commitTime };
}

// google.protobuf.Timestamp: seconds = 1 (int64), nanos = 2 (int32); negative
// values are 10-byte two's complement varints. As protobuf-es's timestampDate.
function readTimestamp(r: WireReader): Date {
  let seconds = 0n;
  let nanos = 0n;
  while (!r.done) {
    r.next();
    const { field, wire } = r;
    if (field === 1 || field === 2) {
      r.expect(wire, "varint", field);
      if (field === 1) seconds = BigInt.asIntN(64, r.varint64());
      else nanos = BigInt.asIntN(32, r.varint64());
    } else {
      r.skip(wire);
    }
  }
  return new Date(Number(seconds) * 1000 + Math.round(Number(nanos) / 1_000_000));
}
