// The vocabulary every stage of the data path shares: relations as the source
// describes them, rows as PostgreSQL's text output writes them, and changes.
import type { Row } from "./source/wire-row";

export type { Row };

/** A PostgreSQL log sequence number, as an unsigned 64-bit integer. */
export type Lsn = bigint;

/** Marks an unchanged TOASTed value that the stream omitted: never write it. */
export const UNCHANGED_TOAST: unique symbol = Symbol("unchanged-toast");

/**
 * One column value in PostgreSQL's text format (what COPY and pgoutput write),
 * null for SQL NULL, or UNCHANGED_TOAST.
 */
export type ColumnValue = string | null | typeof UNCHANGED_TOAST;

/** A column of a replicated table. */
export interface Column {
  name: string;
  /** The type's OID on the source. */
  typeOid: number;
  /** The type as `format_type` writes it, e.g. "character varying(255)". */
  typeName: string;
  /** Part of the replica identity (the primary key, unless REPLICA IDENTITY FULL or USING INDEX). */
  isKey: boolean;
  notNull: boolean;
}

/** A table as the source describes it (from the catalog or a pgoutput Relation message). */
export interface Relation {
  /** The table's OID on the source. */
  oid: number;
  schema: string;
  table: string;
  columns: Column[];
  /** pg_class.relreplident: d default (primary key), n nothing, f full, i index. */
  replicaIdentity: "d" | "n" | "f" | "i";
}

/** One row change, decoded from the stream. Rows list values in `relation.columns` order. */
export type RowChange =
  | { kind: "insert"; relation: Relation; newRow: Row }
  | {
      kind: "update";
      relation: Relation;
      /** The old key (or whole old row under REPLICA IDENTITY FULL) when the key changed or identity is full. */
      oldRow?: Row;
      newRow: Row;
    }
  | { kind: "delete"; relation: Relation; oldRow: Row }
  | { kind: "truncate"; relations: Relation[]; cascade: boolean; restartIdentity: boolean };

/** A committed source transaction's boundaries. */
export interface TransactionInfo {
  xid: number;
  /** LSN of the commit record. */
  commitLsn: Lsn;
  /** LSN just past the commit record: the position to acknowledge once applied. */
  endLsn: Lsn;
  commitTime: Date;
}

/** Formats an LSN the way PostgreSQL writes it: "16/B374D848". */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Parses "16/B374D848" (or a decimal string) into an LSN. */
export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (match) return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
  if (/^\d+$/.test(text)) return BigInt(text);
  throw new Error(`not an LSN: ${JSON.stringify(text)}`);
}
