// A batch of changes between the reader and the applier, and its protobuf
// serialization (proto/heliosdb/replication/engine/v1/batch.proto). The
// relations a batch references travel once, in a table that the changes
// refer to by index; rows carry NULLs and unchanged-TOAST markers exactly.
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  RelationSchema,
  ReplicaIdentity,
  RowSchema,
  TruncateSchema,
} from "../gen/heliosdb/replication/engine/v1/batch_pb";
import { WireWriter, lenFieldSize, varint64FieldSize, varintFieldSize } from "./batch-wire";
import { WireRow, rowValues } from "../source/wire-row";
import { UNCHANGED_TOAST, type Relation, type Row, type RowChange, type TransactionInfo } from "../types";

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
const MAX_UINT64 = (1n << 64n) - 1n;

const replicaIdentities: Record<Relation["replicaIdentity"], ReplicaIdentity> = {
  d: ReplicaIdentity.DEFAULT,
  n: ReplicaIdentity.NOTHING,
  f: ReplicaIdentity.FULL,
  i: ReplicaIdentity.INDEX,
};

/** Serializes a batch. Throws TypeError or RangeError for values the format cannot carry. */
export function encodeBatch(batch: ChangeBatch): Uint8Array {
  const sequence = uint64(batch.sequence, "batch sequence");
  const relations = new RelationTable();
  const items = batch.items.map((item, i): Encoded => {
    if (item.kind === "change") return encodeChange(item.change, relations);
    if (item.kind === "commit") return encodeCommit(item.transaction);
    throw new TypeError(`batch item ${i}: unknown kind ${JSON.stringify((item as { kind: unknown }).kind)}`);
  });
  const relationBytes = relations.encoded;
  let size = varint64FieldSize(1, sequence);
  for (const bytes of relationBytes) size += lenFieldSize(2, bytes.length);
  for (const item of items) size += lenFieldSize(3, item.size);
  const w = new WireWriter(size);
  w.varint64Field(1, sequence);
  for (const bytes of relationBytes) w.bytesField(2, bytes);
  for (const item of items) {
    w.lenField(3, item.size);
    item.write(w);
  }
  if (w.pos !== size) throw new Error(`encodeBatch wrote ${w.pos} bytes of ${size}`);
  return w.buf;
}

// --- encoding -------------------------------------------------------------

/**
 * The relations of a batch, each listed once per definition: by oid, unless a
 * relation's definition changed within the batch (an ALTER TABLE between two
 * transactions), in which case each definition gets its own entry.
 */
class RelationTable {
  readonly encoded: Uint8Array[] = [];
  private readonly sources: Relation[] = [];
  private readonly byObject = new Map<Relation, number>();
  private readonly byOid = new Map<number, number[]>();

  /** `change` is named only in an error message. */
  index(relation: Relation, change: RowChange): number {
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
    this.encoded.push(relationBytes(relation, change));
    this.sources.push(relation);
    this.byObject.set(relation, index);
    this.byOid.set(relation.oid, [...candidates, index]);
    return index;
  }
}

// A relation's message, serialized once per relation object (relations are not changed once made; a
// new definition is a new object): every batch of a stream lists the relations its rows use.
const serialized = new WeakMap<Relation, Uint8Array>();

function relationBytes(relation: Relation, change: RowChange): Uint8Array {
  let bytes = serialized.get(relation);
  if (!bytes) serialized.set(relation, (bytes = toBinary(RelationSchema, create(RelationSchema, encodeRelation(relation, nameOf(change))))));
  return bytes;
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

/** A message encoded by hand: its size, and a writer of exactly that many bytes. */
interface Encoded {
  size: number;
  write(w: WireWriter): void;
}

/** Bytes protobuf-es encoded, embedded as they are. */
function opaque(bytes: Uint8Array): Encoded {
  return { size: bytes.length, write: (w) => ((w.buf.set(bytes, w.pos), (w.pos += bytes.length))) };
}

/** A message holding one length-delimited field. */
function wrap(field: number, inner: Encoded): Encoded {
  return {
    size: lenFieldSize(field, inner.size),
    write(w) {
      w.lenField(field, inner.size);
      inner.write(w);
    },
  };
}

// BatchItem.change: a RowChange whose field 1, 2 or 3 is an Insert, Update or
// Delete (relation = 1, then its rows), or whose field 4 is a Truncate.
const CHANGE_FIELD = { insert: 1, update: 2, delete: 3 } as const;

// This runs once per row: the change is named (nameOf) only for an error
// message, and nothing is allocated for it otherwise.
function encodeChange(change: RowChange, relations: RelationTable): Encoded {
  if (change.kind === "truncate") {
    const truncate = create(TruncateSchema, {
      relations: change.relations.map((relation) => relations.index(relation, change)),
      cascade: flag(change.cascade, `${nameOf(change)}: cascade`),
      restartIdentity: flag(change.restartIdentity, `${nameOf(change)}: restartIdentity`),
    });
    return wrap(1, wrap(4, opaque(toBinary(TruncateSchema, truncate))));
  }
  const field = CHANGE_FIELD[change.kind];
  if (field === undefined) throw new TypeError(`unknown change kind ${JSON.stringify((change as { kind: unknown }).kind)}`);
  const relation = relations.index(change.relation, change);
  // Row fields: Insert new_row = 2; Update old_row = 2, new_row = 3; Delete old_row = 2.
  if (change.kind === "insert") return new RowChangeItem(field, relation, encodeRow(change.newRow, change, "new row"), undefined);
  if (change.kind === "delete") return new RowChangeItem(field, relation, encodeRow(change.oldRow, change, "old row"), undefined);
  const oldRow = change.oldRow === undefined ? undefined : encodeRow(change.oldRow, change, "old row");
  return new RowChangeItem(field, relation, oldRow, encodeRow(change.newRow, change, "new row"));
}

/** BatchItem { change = 1: RowChange { insert|update|delete = field: { relation = 1, row = 2, row = 3 } } }. */
class RowChangeItem implements Encoded {
  readonly size: number;
  private readonly bodySize: number;
  private readonly changeSize: number;

  constructor(
    private readonly field: number,
    private readonly relation: number,
    private readonly row2: Encoded | undefined,
    private readonly row3: Encoded | undefined,
  ) {
    let body = varintFieldSize(1, relation);
    if (row2) body += lenFieldSize(2, row2.size);
    if (row3) body += lenFieldSize(3, row3.size);
    this.bodySize = body;
    this.changeSize = lenFieldSize(field, body);
    this.size = lenFieldSize(1, this.changeSize);
  }

  write(w: WireWriter): void {
    w.lenField(1, this.changeSize);
    w.lenField(this.field, this.bodySize);
    w.varintField(1, this.relation);
    if (this.row2) {
      w.lenField(2, this.row2.size);
      this.row2.write(w);
    }
    if (this.row3) {
      w.lenField(3, this.row3.size);
      this.row3.write(w);
    }
  }
}

/** A COPY row travels as its bytes (Row fields 4 to 7), copied once from the reader's slab into the batch. */
class CopyRow implements Encoded {
  readonly size: number;

  constructor(private readonly row: WireRow) {
    const length = row.end - row.start;
    this.size = lenFieldSize(4, length) + (row.binary ? 2 : 0) + varintFieldSize(6, row.count) + varintFieldSize(7, row.textBytes);
  }

  write(w: WireWriter): void {
    const { slab, start, end, binary, count, textBytes } = this.row;
    w.lenField(4, end - start);
    slab.copy(w.buf, w.pos, start, end);
    w.pos += end - start;
    if (binary) w.varintField(5, 1);
    w.varintField(6, count);
    w.varintField(7, textBytes);
  }
}

function nameOf(change: RowChange): string {
  return `${change.kind} of ${describe(change)}`;
}

function describe(change: RowChange): string {
  if (change.kind === "truncate") return change.relations.map((r) => `${r.schema}.${r.table}`).join(", ") || "no tables";
  return `${change.relation.schema}.${change.relation.table}`;
}

function encodeRow(wire: Row, change: RowChange, which: string): Encoded {
  if (wire instanceof WireRow && wire.textBytes <= MAX_UINT32) return new CopyRow(wire);
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
      throw new TypeError(`${nameOf(change)}: ${which}: column ${i} is neither text, null nor UNCHANGED_TOAST`);
    }
  }
  return opaque(toBinary(RowSchema, create(RowSchema, { values, nullColumns, unchangedColumns })));
}

// BatchItem.commit = 2: TransactionCommit (xid = 1, commit_lsn = 2, end_lsn = 3,
// commit_time = 4 as google.protobuf.Timestamp: seconds = 1, nanos = 2).
function encodeCommit(transaction: TransactionInfo): Encoded {
  const where = `commit of transaction ${String(transaction.xid)}`;
  const time = transaction.commitTime;
  if (!(time instanceof Date) || Number.isNaN(time.getTime())) throw new TypeError(`${where}: commitTime is not a valid Date`);
  const xid = uint32(transaction.xid, `${where}: xid`);
  const commitLsn = uint64(transaction.commitLsn, `${where}: commit LSN`);
  const endLsn = uint64(transaction.endLsn, `${where}: end LSN`);
  const ms = time.getTime();
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  // Seconds beyond uint32 (before 1970, negative; after 2106) are left to protobuf-es.
  const timestamp =
    seconds < 0 || seconds > MAX_UINT32 ? opaque(toBinary(TimestampSchema, timestampFromDate(time))) : uint32s([[1, seconds], [2, nanos]]);
  const body = {
    size: varintFieldSize(1, xid) + varint64FieldSize(2, commitLsn) + varint64FieldSize(3, endLsn) + lenFieldSize(4, timestamp.size),
    write(w: WireWriter) {
      w.varintField(1, xid);
      w.varint64Field(2, commitLsn);
      w.varint64Field(3, endLsn);
      w.lenField(4, timestamp.size);
      timestamp.write(w);
    },
  };
  return wrap(2, body);
}

/** A message of unsigned 32-bit integer fields. */
function uint32s(fields: [number, number][]): Encoded {
  let size = 0;
  for (const [field, n] of fields) size += varintFieldSize(field, n);
  return { size, write: (w) => fields.forEach(([field, n]) => w.varintField(field, n)) };
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
