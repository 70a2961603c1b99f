// Decoder for the pgoutput logical decoding plugin's messages, protocol
// version 1 with text-format tuples ("Logical Replication Message Formats" in
// the PostgreSQL documentation). Version 1 has no streamed or two-phase
// transactions, so those tags are rejected rather than half-understood. Rows
// stay as their bytes (WireRow) until something needs their values.
import type { Column, Lsn, Relation, Row, RowChange } from "../types";
import { LineArena, WireRow } from "./wire-row";

/** One decoded pgoutput message. */
export type PgOutputMessage =
  | { tag: "begin"; finalLsn: Lsn; commitTime: Date; xid: number }
  | { tag: "commit"; commitLsn: Lsn; endLsn: Lsn; commitTime: Date }
  | { tag: "relation"; relation: Relation }
  | { tag: "change"; change: RowChange }
  | { tag: "message"; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer }
  | { tag: "origin" }
  | { tag: "type" };

/** Raised for bytes that are not a well-formed pgoutput v1 message. */
export class PgOutputError extends Error {
  override name = "PgOutputError";
}

// PostgreSQL timestamps count from 2000-01-01 00:00:00 UTC, not the Unix epoch.
const POSTGRES_EPOCH_MS = 946_684_800_000n;

/** Converts microseconds since 2000-01-01 UTC to a Date (flooring to the millisecond Date can hold). */
export function pgTimestampToDate(micros: bigint): Date {
  // BigInt division truncates toward zero; floor keeps pre-2000 instants on the right millisecond.
  let ms = micros / 1000n;
  if (micros < 0n && ms * 1000n !== micros) ms -= 1n;
  return new Date(Number(ms + POSTGRES_EPOCH_MS));
}

/** Converts a Date to microseconds since 2000-01-01 UTC, as standby status updates carry it. */
export function dateToPgTimestamp(date: Date): bigint {
  return (BigInt(date.getTime()) - POSTGRES_EPOCH_MS) * 1000n;
}

// A cursor that turns every overrun into a clear error instead of a RangeError deep in Buffer.
class Reader {
  buf: Buffer = Buffer.alloc(0);
  offset = 0;

  /** Starts on another message: one Reader serves every message of a stream. */
  reset(buf: Buffer, offset: number): this {
    this.buf = buf;
    this.offset = offset;
    return this;
  }

  private need(n: number): void {
    if (this.offset + n > this.buf.length) {
      throw new PgOutputError(`truncated message: need ${n} bytes at offset ${this.offset} of ${this.buf.length}`);
    }
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.offset++);
  }
  i16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) throw new PgOutputError(`unterminated string at offset ${this.offset}`);
    const s = this.buf.toString("utf8", this.offset, end);
    this.offset = end + 1;
    return s;
  }
  /** n bytes of UTF-8 text. */
  text(n: number): string {
    if (n < 0) throw new PgOutputError(`negative length ${n} at offset ${this.offset}`);
    this.need(n);
    const s = this.buf.toString("utf8", this.offset, this.offset + n);
    this.offset += n;
    return s;
  }
  bytes(n: number): Buffer {
    if (n < 0) throw new PgOutputError(`negative length ${n} at offset ${this.offset}`);
    this.need(n);
    // Copy so a caller keeping `content` does not pin the whole replication buffer.
    const out = Buffer.from(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n;
    return out;
  }
}

const REPLICA_IDENTITIES = new Set(["d", "n", "f", "i"]);

/**
 * Decodes pgoutput messages one at a time, in stream order, because row
 * messages name their table only by OID and rely on the Relation message
 * sent before them.
 */
export class PgOutputDecoder {
  private readonly relations = new Map<number, Relation>();
  private readonly arena = new LineArena();
  private readonly reader = new Reader();

  /** `binary`: the stream was started with pgoutput's binary option, so values come in binary format. */
  constructor(private readonly options: { binary?: boolean } = {}) {}

  /** The cached relation for an OID, if a Relation message described it. */
  relation(oid: number): Relation | undefined {
    return this.relations.get(oid);
  }

  /**
   * Decodes the message at `offset` of `data` (which ends with it). Nothing
   * of `data` is kept: the caller may reuse its bytes once this returns.
   */
  decode(data: Buffer, offset = 0): PgOutputMessage {
    const r = this.reader.reset(data, offset);
    // Dispatch on the byte: every message of the stream passes here.
    const code = r.u8();
    switch (code) {
      case 0x42 /* B */: {
        const finalLsn = r.u64();
        const commitTime = pgTimestampToDate(r.i64());
        return { tag: "begin", finalLsn, commitTime, xid: r.u32() };
      }
      case 0x43 /* C */: {
        r.u8(); // flags: unused in protocol v1
        const commitLsn = r.u64();
        const endLsn = r.u64();
        return { tag: "commit", commitLsn, endLsn, commitTime: pgTimestampToDate(r.i64()) };
      }
      case 0x4f /* O */:
        r.u64();
        r.cstring();
        return { tag: "origin" };
      case 0x59 /* Y */:
        r.u32();
        r.cstring();
        r.cstring();
        return { tag: "type" };
      case 0x52 /* R */:
        return { tag: "relation", relation: this.decodeRelation(r) };
      case 0x49 /* I */: {
        const relation = this.cached(r.u32());
        this.expectMarker(r, "N", "insert");
        return { tag: "change", change: { kind: "insert", relation, newRow: this.tuple(r, relation) } };
      }
      case 0x55 /* U */: {
        const relation = this.cached(r.u32());
        let marker = String.fromCharCode(r.u8());
        let oldRow: Row | undefined;
        if (marker === "K" || marker === "O") {
          oldRow = this.tuple(r, relation);
          marker = String.fromCharCode(r.u8());
        }
        if (marker !== "N") throw new PgOutputError(`update: expected new tuple 'N', got ${JSON.stringify(marker)}`);
        const newRow = this.tuple(r, relation);
        const change: RowChange = oldRow
          ? { kind: "update", relation, oldRow, newRow }
          : { kind: "update", relation, newRow };
        return { tag: "change", change };
      }
      case 0x44 /* D */: {
        const relation = this.cached(r.u32());
        const marker = String.fromCharCode(r.u8());
        if (marker !== "K" && marker !== "O") {
          throw new PgOutputError(`delete: expected old tuple 'K' or 'O', got ${JSON.stringify(marker)}`);
        }
        return { tag: "change", change: { kind: "delete", relation, oldRow: this.tuple(r, relation) } };
      }
      case 0x54 /* T */: {
        const count = r.i32();
        const options = r.u8();
        const relations: Relation[] = [];
        for (let i = 0; i < count; i++) relations.push(this.cached(r.u32()));
        return {
          tag: "change",
          change: { kind: "truncate", relations, cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0 },
        };
      }
      case 0x4d /* M */: {
        const flags = r.u8();
        const lsn = r.u64();
        const prefix = r.cstring();
        const content = r.bytes(r.i32());
        return { tag: "message", transactional: (flags & 1) !== 0, lsn, prefix, content };
      }
      default:
        throw new PgOutputError(`unsupported pgoutput message tag ${JSON.stringify(String.fromCharCode(code))} (protocol version 1 expected)`);
    }
  }

  private decodeRelation(r: Reader): Relation {
    const oid = r.u32();
    // pgoutput writes pg_catalog as the empty string to save bytes.
    const schema = r.cstring() || "pg_catalog";
    const table = r.cstring();
    const identity = String.fromCharCode(r.u8());
    if (!REPLICA_IDENTITIES.has(identity)) {
      throw new PgOutputError(`relation ${schema}.${table}: unknown replica identity ${JSON.stringify(identity)}`);
    }
    const count = r.i16();
    const columns: Column[] = [];
    for (let i = 0; i < count; i++) {
      const flags = r.u8();
      const name = r.cstring();
      const typeOid = r.u32();
      r.i32(); // atttypmod: typeName is not sent either, so the catalog is the place for exact types
      columns.push({ name, typeOid, typeName: "", isKey: (flags & 1) !== 0, notNull: false });
    }
    const relation: Relation = { oid, schema, table, columns, replicaIdentity: identity as Relation["replicaIdentity"] };
    // Replace rather than mutate: changes already decoded keep the shape they were written with.
    this.relations.set(oid, relation);
    return relation;
  }

  private cached(oid: number): Relation {
    const relation = this.relations.get(oid);
    if (!relation) throw new PgOutputError(`row message for relation OID ${oid} before its Relation message`);
    return relation;
  }

  private expectMarker(r: Reader, want: string, what: string): void {
    const byte = r.u8();
    if (byte === want.charCodeAt(0)) return;
    const got = String.fromCharCode(byte);
    throw new PgOutputError(`${what}: expected tuple marker '${want}', got ${JSON.stringify(got)}`);
  }

  private tuple(r: Reader, relation: Relation): Row {
    let row: Row;
    try {
      row = WireRow.read(r, this.arena, this.options.binary);
    } catch (e) {
      throw new PgOutputError((e as Error).message);
    }
    // Rows are positional against relation.columns, so a mismatch would silently shift values.
    const count = row instanceof WireRow ? row.count : row.length;
    if (count !== relation.columns.length) {
      throw new PgOutputError(
        `tuple for ${relation.schema}.${relation.table} has ${count} columns, relation has ${relation.columns.length}`,
      );
    }
    return row;
  }
}
