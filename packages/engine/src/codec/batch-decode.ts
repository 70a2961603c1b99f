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
  const itemBounds: { start: number; end: number }[] = [];
  while (!r.done) {
    const { field, wire } = r.key();
    if (field === 1) {
      r.expect(wire, "varint", field);
      sequence = r.varint64();
    } else if (field === 2) {
      r.expect(wire, "len", field);
      const { start, end } = r.len();
      relations.push(cache.get(payload.subarray(start, end), `relation ${relations.length}`));
    } else if (field === 3) {
      r.expect(wire, "len", field);
      itemBounds.push(r.len());
    } else {
      r.skip(wire);
    }
  }
  const relationAt = (index: number, where: string): Relation => {
    const relation = relations[index];
    if (!relation) throw new BatchFormatError(`${where}: relation index ${index} out of range (${relations.length} relations)`);
    return relation;
  };
  const items = itemBounds.map(({ start, end }, i) => readItem(new WireReader(payload, start, end), relationAt, `item ${i}`));
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

type RelationAt = (index: number, where: string) => Relation;

function readItem(r: WireReader, relationAt: RelationAt, where: string): BatchItem {
  let item: BatchItem | undefined;
  while (!r.done) {
    const { field, wire } = r.key();
    if (field !== 1 && field !== 2) {
      r.skip(wire);
      continue;
    }
    r.expect(wire, "len", field);
    const { start, end } = r.len();
    const inner = new WireReader(r.buf, start, end);
    // A oneof: the last member on the wire wins, as protobuf reads it.
    item = field === 1 ? { kind: "change", change: readChange(inner, relationAt, where) } : { kind: "commit", transaction: readCommit(inner, where) };
  }
  if (!item) throw new BatchFormatError(`${where}: empty item`);
  return item;
}

function readChange(r: WireReader, relationAt: RelationAt, where: string): RowChange {
  let change: RowChange | undefined;
  while (!r.done) {
    const { field, wire } = r.key();
    if (field < 1 || field > 4) {
      r.skip(wire);
      continue;
    }
    r.expect(wire, "len", field);
    const { start, end } = r.len();
    if (field === 4) {
      const truncate = fromBinary(TruncateSchema, r.buf.subarray(start, end));
      change = {
        kind: "truncate",
        relations: truncate.relations.map((index) => relationAt(index, where)),
        cascade: truncate.cascade,
        restartIdentity: truncate.restartIdentity,
      };
      continue;
    }
    // Insert, Update, Delete: relation = 1; rows at 2 (Update's old row) and 3 (its new one), or 2.
    const body = new WireReader(r.buf, start, end);
    let relation = 0;
    let second: Row | undefined;
    let third: Row | undefined;
    while (!body.done) {
      const key = body.key();
      if (key.field === 1) {
        body.expect(key.wire, "varint", 1);
        relation = body.varint();
      } else if (key.field === 2 || key.field === 3) {
        body.expect(key.wire, "len", key.field);
        const bounds = body.len();
        const row = readRow(new WireReader(r.buf, bounds.start, bounds.end), `${where}: ${key.field === 3 || field === 1 ? "new" : "old"} row`);
        if (key.field === 2) second = row;
        else third = row;
      } else {
        body.skip(key.wire);
      }
    }
    const rel = relationAt(relation, where);
    if (field === 1) change = { kind: "insert", relation: rel, newRow: present(second, `${where}: new row`) };
    else if (field === 3) change = { kind: "delete", relation: rel, oldRow: present(second, `${where}: old row`) };
    else {
      const update: RowChange = { kind: "update", relation: rel, newRow: present(third, `${where}: new row`) };
      if (second) update.oldRow = second;
      change = update;
    }
  }
  if (!change) throw new BatchFormatError(`${where}: empty change`);
  return change;
}

function present(row: Row | undefined, where: string): Row {
  if (!row) throw new BatchFormatError(`${where}: missing`);
  return row;
}

// A Row in COPY form (fields 4 to 7) is read here, and points into the
// batch's own bytes: no value is decoded until the applier needs one. A row
// of values (fields 1 to 3) is left to protobuf-es.
function readRow(r: WireReader, where: string): Row {
  const rowStart = r.pos;
  let copy: { start: number; end: number } | undefined;
  let binary = false;
  let count = 0;
  let valueBytes = 0;
  while (!r.done) {
    const { field, wire } = r.key();
    if (field >= 1 && field <= 3) return decodeValuesRow(fromBinary(RowSchema, r.buf.subarray(rowStart, r.end)), where);
    if (field === 4) {
      r.expect(wire, "len", field);
      copy = r.len();
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
  if (!copy || copy.end === copy.start) return [];
  const slab = r.buf;
  const wellFormed = binary ? copy.end - copy.start >= 2 && slab.readInt16BE(copy.start) === count : slab[copy.end - 1] === NEWLINE;
  if (!wellFormed) throw new BatchFormatError(`${where}: malformed ${binary ? "binary" : "text"} COPY row`);
  return new WireRow(slab, copy.start, copy.end, count, valueBytes, binary);
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

function readCommit(r: WireReader, where: string): TransactionInfo {
  let xid = 0;
  let commitLsn = 0n;
  let endLsn = 0n;
  let time: { start: number; end: number } | undefined;
  while (!r.done) {
    const { field, wire } = r.key();
    if (field === 1) {
      r.expect(wire, "varint", field);
      xid = r.varint();
    } else if (field === 2 || field === 3) {
      r.expect(wire, "varint", field);
      if (field === 2) commitLsn = r.varint64();
      else endLsn = r.varint64();
    } else if (field === 4) {
      r.expect(wire, "len", field);
      time = r.len();
    } else {
      r.skip(wire);
    }
  }
  if (!time) throw new BatchFormatError(`${where}: commit without a commit time`);
  const commitTime = readTimestamp(new WireReader(r.buf, time.start, time.end));
  if (Number.isNaN(commitTime.getTime())) throw new BatchFormatError(`${where}: commit time out of range`);
  return { xid, commitLsn, endLsn, commitTime };
}

// google.protobuf.Timestamp: seconds = 1 (int64), nanos = 2 (int32); negative
// values are 10-byte two's complement varints. As protobuf-es's timestampDate.
function readTimestamp(r: WireReader): Date {
  let seconds = 0n;
  let nanos = 0n;
  while (!r.done) {
    const { field, wire } = r.key();
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
