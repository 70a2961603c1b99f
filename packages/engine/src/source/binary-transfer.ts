// Binary transfer: pgoutput sends values in their types' binary format and
// the applier writes them with COPY (FORMAT binary). Both ends then skip the
// text output and input functions (timestamps and numerics are costly to
// print and parse), and the engine copies bytes without escaping them. It is
// only safe where the binary formats agree: built-in types (the same OID on
// every PostgreSQL, arrays of them carrying the same element OIDs) that have
// binary I/O, and the same type in the target's column. Anything else (an
// enum, a domain, an extension's type, a target column of another type)
// streams as text, as does a replication whose rows pass through transforms
// or the batch codec, both of which read text values.
import type pg from "pg";
import type { Relation } from "../types";
import { qualified } from "./publication";

// Types created after initdb (user types, extensions) have OIDs from here on.
const FIRST_NORMAL_OBJECT_ID = 16384;

/** The columns of `tables` that cannot travel in binary format, as "table.column" (empty: binary transfer is safe). */
export async function binaryIneligibleColumns(
  source: pg.ClientBase,
  target: pg.ClientBase,
  targetSchema: string,
  tables: Pick<Relation, "table" | "columns">[],
): Promise<string[]> {
  const oids = [...new Set(tables.flatMap((t) => t.columns.map((c) => c.typeOid)))];
  const { rows } = await source.query<{ oid: number }>(
    "SELECT oid::int AS oid FROM pg_type WHERE oid = ANY($1::oid[]) AND oid < $2 AND typsend <> 0 AND typreceive <> 0",
    [oids, FIRST_NORMAL_OBJECT_ID],
  );
  const binaryTypes = new Set(rows.map((r) => r.oid));
  const ineligible: string[] = [];
  for (const t of tables) {
    const { rows: targetColumns } = await target.query<{ name: string; oid: number }>(
      `SELECT attname AS name, atttypid::int AS oid FROM pg_attribute
        WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
      [qualified({ schema: targetSchema, table: t.table })],
    );
    const targetType = new Map(targetColumns.map((c) => [c.name, c.oid]));
    for (const c of t.columns) {
      const onTarget = targetType.get(c.name);
      // A column the target lacks yet is added with the source's type.
      if (!binaryTypes.has(c.typeOid) || (onTarget !== undefined && onTarget !== c.typeOid)) ineligible.push(`${t.table}.${c.name}`);
    }
  }
  return ineligible;
}
