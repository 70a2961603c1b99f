// A batch of changes between the reader and the applier, and its protobuf
// serialization (proto/heliosdb/replication/engine/v1/batch.proto). The
// relations a batch references travel once, in a table that the changes
// refer to by index; rows carry NULLs and unchanged-TOAST markers exactly.
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  BatchItemSchema,
  ChangeBatchSchema,
  RelationSchema,
  ReplicaIdentity,
  RowChangeSchema,
  RowSchema,
  TransactionCommitSchema,
  type ChangeBatch as ChangeBatchMessage,
  type Relation as RelationMessage,
  type Row as RowMessage,
  type RowChange as RowChangeMessage,
  type TransactionCommit as TransactionCommitMessage,
} from "../gen/heliosdb/replication/engine/v1/batch_pb";
import { WireRow, rowValues } from "../source/wire-row";
import { UNCHANGED_TOAST, type ColumnValue, type Relation, type Row, type RowChange, type TransactionInfo } from "../types";

/** A batch of changes and commits, in source order, numbered within its replication. */
export interface ChangeBatch {
  /** The batch's sequence number (an unsigned 64-bit integer). */
  sequence: bigint;
  items: BatchItem[];
}

/** One item of a batch: a row change (or truncate), or the commit of the transaction before it. */
export type BatchItem = { kind: "change"; change: RowChange } | { kind: "commit"; transaction: TransactionInfo };

/** Thrown by decodeBatch for bytes that are not a well-formed batch. */
export class BatchFormatError extends Error {
  override name = "BatchFormatError";
}

const MAX_UINT32 = 0xffffffff;
const NEWLINE = 0x0a;
const MAX_UINT64 = (1n << 64n) - 1n;

const replicaIdentities: Record<Relation["replicaIdentity"], ReplicaIdentity> = {
  d: ReplicaIdentity.DEFAULT,
  n: ReplicaIdentity.NOTHING,
  f: ReplicaIdentity.FULL,
  i: ReplicaIdentity.INDEX,
};

/** Serializes a batch. Throws TypeError or RangeError for values the format cannot carry. */
export function encodeBatch(batch: ChangeBatch): Uint8Array {
  const relations = new RelationTable();
  const items = batch.items.map((item, i): MessageInitShape<typeof BatchItemSchema> => {
    if (item.kind === "change") return { item: { case: "change", value: encodeChange(item.change, relations) } };
    if (item.kind === "commit") return { item: { case: "commit", value: encodeCommit(item.transaction) } };
    throw new TypeError(`batch item ${i}: unknown kind ${JSON.stringify((item as { kind: unknown }).kind)}`);
  });
  const message = create(ChangeBatchSchema, {
    sequence: uint64(batch.sequence, "batch sequence"),
    relations: relations.messages,
    items,
  });
  return toBinary(ChangeBatchSchema, message);
}

/**
 * Parses a batch that encodeBatch wrote. Changes that reference the same
 * relation share one Relation object. Throws BatchFormatError for malformed
 * bytes.
 */
export function decodeBatch(bytes: Uint8Array): ChangeBatch {
  // A Buffer, so the COPY rows the parser hands out as views of it can be read as rows.
  const payload = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let message: ChangeBatchMessage;
  try {
    message = fromBinary(ChangeBatchSchema, payload);
  } catch (error) {
    throw new BatchFormatError(`malformed batch: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const relations = message.relations.map((relation, i) => decodeRelation(relation, `relation ${i}`));
  const relationAt = (index: number, where: string): Relation => {
    const relation = relations[index];
    if (!relation) throw new BatchFormatError(`${where}: relation index ${index} out of range (${relations.length} relations)`);
    return relation;
  };
  const items = message.items.map((item, i): BatchItem => {
    const where = `item ${i}`;
    switch (item.item.case) {
      case "change":
        return { kind: "change", change: decodeChange(item.item.value, relationAt, where, payload) };
      case "commit":
        return { kind: "commit", transaction: decodeCommit(item.item.value, where) };
      default:
        throw new BatchFormatError(`${where}: empty item`);
    }
  });
  return { sequence: message.sequence, items };
}

// --- encoding -------------------------------------------------------------

/**
 * The relations of a batch, each listed once per definition: by oid, unless a
 * relation's definition changed within the batch (an ALTER TABLE between two
 * transactions), in which case each definition gets its own entry.
 */
class RelationTable {
  readonly messages: MessageInitShape<typeof RelationSchema>[] = [];
  private readonly sources: Relation[] = [];
  private readonly byObject = new Map<Relation, number>();
  private readonly byOid = new Map<number, number[]>();

  index(relation: Relation, where: string): number {
    const known = this.byObject.get(relation);
    if (known !== undefined) return known;
    const candidates = this.byOid.get(relation.oid) ?? [];
    for (const candidate of candidates) {
      const source = this.sources[candidate];
      if (source && sameRelation(source, relation)) {
        this.byObject.set(relation, candidate);
        return candidate;
      }
    }
    const index = this.sources.length;
    this.messages.push(encodeRelation(relation, where));
    this.sources.push(relation);
    this.byObject.set(relation, index);
    this.byOid.set(relation.oid, [...candidates, index]);
    return index;
  }
}

function sameRelation(a: Relation, b: Relation): boolean {
  return (
    a.oid === b.oid &&
    a.schema === b.schema &&
    a.table === b.table &&
    a.replicaIdentity === b.replicaIdentity &&
    a.columns.length === b.columns.length &&
    a.columns.every((column, i) => {
      const other = b.columns[i];
      return (
        other !== undefined &&
        column.name === other.name &&
        column.typeOid === other.typeOid &&
        column.typeName === other.typeName &&
        column.isKey === other.isKey &&
        column.notNull === other.notNull
      );
    })
  );
}

function encodeRelation(relation: Relation, where: string): MessageInitShape<typeof RelationSchema> {
  const replicaIdentity = replicaIdentities[relation.replicaIdentity];
  if (replicaIdentity === undefined) {
    throw new TypeError(`${where}: unknown replica identity ${JSON.stringify(relation.replicaIdentity)}`);
  }
  return {
    oid: uint32(relation.oid, `${where}: relation oid`),
    schema: text(relation.schema, `${where}: relation schema`),
    table: text(relation.table, `${where}: relation table`),
    columns: relation.columns.map((column, i) => ({
      name: text(column.name, `${where}: column ${i} name`),
      typeOid: uint32(column.typeOid, `${where}: column ${i} type oid`),
      typeName: text(column.typeName, `${where}: column ${i} type name`),
      isKey: flag(column.isKey, `${where}: column ${i} isKey`),
      notNull: flag(column.notNull, `${where}: column ${i} notNull`),
    })),
    replicaIdentity,
  };
}

function encodeChange(change: RowChange, relations: RelationTable): MessageInitShape<typeof RowChangeSchema> {
  const where = `${change.kind} of ${describe(change)}`;
  switch (change.kind) {
    case "insert":
      return {
        change: {
          case: "insert",
          value: { relation: relations.index(change.relation, where), newRow: encodeRow(change.newRow, `${where}: new row`) },
        },
      };
    case "update":
      return {
        change: {
          case: "update",
          value: {
            relation: relations.index(change.relation, where),
            oldRow: change.oldRow === undefined ? undefined : encodeRow(change.oldRow, `${where}: old row`),
            newRow: encodeRow(change.newRow, `${where}: new row`),
          },
        },
      };
    case "delete":
      return {
        change: {
          case: "delete",
          value: { relation: relations.index(change.relation, where), oldRow: encodeRow(change.oldRow, `${where}: old row`) },
        },
      };
    case "truncate":
      return {
        change: {
          case: "truncate",
          value: {
            relations: change.relations.map((relation) => relations.index(relation, where)),
            cascade: flag(change.cascade, `${where}: cascade`),
            restartIdentity: flag(change.restartIdentity, `${where}: restartIdentity`),
          },
        },
      };
    default:
      throw new TypeError(`unknown change kind ${JSON.stringify((change as { kind: unknown }).kind)}`);
  }
}

function describe(change: RowChange): string {
  if (change.kind === "truncate") return change.relations.map((r) => `${r.schema}.${r.table}`).join(", ") || "no tables";
  return `${change.relation.schema}.${change.relation.table}`;
}

function encodeRow(wire: Row, where: string): MessageInitShape<typeof RowSchema> {
  // A COPY row travels as its bytes: a view of the reader's slab, copied once into the batch.
  if (wire instanceof WireRow && wire.textBytes <= MAX_UINT32) {
    return { copyRow: wire.slab.subarray(wire.start, wire.end), binary: wire.binary, columnCount: wire.count, valueBytes: wire.textBytes };
  }
  const row = rowValues(wire);
  const values: string[] = [];
  const nullColumns: number[] = [];
  const unchangedColumns: number[] = [];
  for (let i = 0; i < row.length; i++) {
    const value = row[i];
    if (typeof value === "string") {
      values.push(value);
    } else if (value === null) {
      values.push("");
      nullColumns.push(i);
    } else if (value === UNCHANGED_TOAST) {
      values.push("");
      unchangedColumns.push(i);
    } else {
      throw new TypeError(`${where}: column ${i} is neither text, null nor UNCHANGED_TOAST`);
    }
  }
  return { values, nullColumns, unchangedColumns };
}

function encodeCommit(transaction: TransactionInfo): MessageInitShape<typeof TransactionCommitSchema> {
  const where = `commit of transaction ${String(transaction.xid)}`;
  const time = transaction.commitTime;
  if (!(time instanceof Date) || Number.isNaN(time.getTime())) throw new TypeError(`${where}: commitTime is not a valid Date`);
  return {
    xid: uint32(transaction.xid, `${where}: xid`),
    commitLsn: uint64(transaction.commitLsn, `${where}: commit LSN`),
    endLsn: uint64(transaction.endLsn, `${where}: end LSN`),
    commitTime: timestampFromDate(time),
  };
}

function uint32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_UINT32) {
    throw new RangeError(`${what} is not an unsigned 32-bit integer: ${String(value)}`);
  }
  return value;
}

function uint64(value: bigint, what: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > MAX_UINT64) {
    throw new RangeError(`${what} is not an unsigned 64-bit integer: ${String(value)}`);
  }
  return value;
}

function text(value: string, what: string): string {
  if (typeof value !== "string") throw new TypeError(`${what} is not a string`);
  return value;
}

function flag(value: boolean, what: string): boolean {
  if (typeof value !== "boolean") throw new TypeError(`${what} is not a boolean`);
  return value;
}

// --- decoding -------------------------------------------------------------

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

function decodeChange(
  message: RowChangeMessage,
  relationAt: (index: number, where: string) => Relation,
  where: string,
  payload: Buffer,
): RowChange {
  const change = message.change;
  switch (change.case) {
    case "insert":
      return {
        kind: "insert",
        relation: relationAt(change.value.relation, where),
        newRow: decodeRow(change.value.newRow, `${where}: new row`, payload),
      };
    case "update": {
      const decoded: RowChange = {
        kind: "update",
        relation: relationAt(change.value.relation, where),
        newRow: decodeRow(change.value.newRow, `${where}: new row`, payload),
      };
      if (change.value.oldRow) decoded.oldRow = decodeRow(change.value.oldRow, `${where}: old row`, payload);
      return decoded;
    }
    case "delete":
      return {
        kind: "delete",
        relation: relationAt(change.value.relation, where),
        oldRow: decodeRow(change.value.oldRow, `${where}: old row`, payload),
      };
    case "truncate":
      return {
        kind: "truncate",
        relations: change.value.relations.map((index) => relationAt(index, where)),
        cascade: change.value.cascade,
        restartIdentity: change.value.restartIdentity,
      };
    default:
      throw new BatchFormatError(`${where}: empty change`);
  }
}

function decodeRow(row: RowMessage | undefined, where: string, payload: Buffer): Row {
  if (!row) throw new BatchFormatError(`${where}: missing`);
  if (row.copyRow.length > 0) return decodeCopyRow(row, where, payload);
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

// A COPY row points into the batch's own bytes (the parser hands out views of
// them, not copies): no value is decoded until the applier needs one.
function decodeCopyRow(row: RowMessage, where: string, payload: Buffer): WireRow {
  const bytes = row.copyRow;
  if (row.values.length > 0 || row.nullColumns.length > 0 || row.unchangedColumns.length > 0) {
    throw new BatchFormatError(`${where}: a COPY row that also lists values`);
  }
  if (bytes.buffer !== payload.buffer) throw new BatchFormatError(`${where}: COPY row outside the batch`);
  const from = bytes.byteOffset - payload.byteOffset;
  const wellFormed = row.binary ? bytes.length >= 2 && payload.readInt16BE(from) === row.columnCount : bytes[bytes.length - 1] === NEWLINE;
  if (!wellFormed) throw new BatchFormatError(`${where}: malformed ${row.binary ? "binary" : "text"} COPY row`);
  return new WireRow(payload, from, from + bytes.length, row.columnCount, row.valueBytes, row.binary);
}

function decodeCommit(commit: TransactionCommitMessage, where: string): TransactionInfo {
  if (!commit.commitTime) throw new BatchFormatError(`${where}: commit without a commit time`);
  const commitTime = timestampDate(commit.commitTime);
  if (Number.isNaN(commitTime.getTime())) throw new BatchFormatError(`${where}: commit time out of range`);
  return { xid: commit.xid, commitLsn: commit.commitLsn, endLsn: commit.endLsn, commitTime };
}
