// What the source's catalog says about the tables a replication may carry:
// columns and types, the key that identifies a row, and size estimates for
// progress and the initial-sync estimate.
import type pg from "pg";
import type { Column, Relation } from "../types";

/** A source table with its catalog facts. */
export interface CatalogTable extends Relation {
  /** Rows, as the planner estimates them (pg_class.reltuples; 0 when never analyzed). */
  estimatedRows: number;
  /** The heap's size in bytes. */
  sizeBytes: number;
  /** The heap's size in pages, for splitting large tables into ranges. */
  pages: number;
  /** Whether a primary key or replica-identity index identifies rows. */
  hasKey: boolean;
  /** Columns whose type is defined outside pg_catalog (enums, domains, extensions). */
  foreignTypes: string[];
  /** Whether the table filter left some columns out (then the publication lists the columns it keeps). */
  columnsFiltered?: boolean;
}

/** Reads every ordinary or partitioned table of a schema, in name order. */
export async function readCatalog(client: pg.ClientBase, schema: string): Promise<CatalogTable[]> {
  const tables = await client.query<{
    oid: number;
    relname: string;
    relreplident: Relation["replicaIdentity"];
    reltuples: number;
    relpages: number;
    size: string;
  }>(
    `SELECT c.oid, c.relname, c.relreplident, greatest(c.reltuples, 0)::float8 AS reltuples,
            -- relpages is only an estimate, 0 until the first VACUUM or ANALYZE: count the real size.
            (pg_relation_size(c.oid) / current_setting('block_size')::int)::int AS relpages,
            pg_relation_size(c.oid)::text AS size
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY c.relname`,
    [schema],
  );
  if (tables.rowCount === 0) return [];
  const oids = tables.rows.map((t) => t.oid);
  const columns = await client.query<{
    attrelid: number;
    attname: string;
    atttypid: number;
    type_name: string;
    attnotnull: boolean;
    attnum: number;
    type_schema: string;
  }>(
    `SELECT a.attrelid, a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod) AS type_name,
            a.attnotnull, a.attnum,
            tn.nspname AS type_schema
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
       JOIN pg_namespace tn ON tn.oid = coalesce(et.typnamespace, t.typnamespace)
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  // The key that identifies a row on the target: the primary key, else the
  // replica-identity index.
  const keys = await client.query<{ indrelid: number; attnums: number[]; indisprimary: boolean }>(
    `SELECT i.indrelid, i.indkey::int2[] AS attnums, i.indisprimary
       FROM pg_index i
      WHERE i.indrelid = ANY($1) AND (i.indisprimary OR i.indisreplident)
      ORDER BY i.indisprimary DESC`,
    [oids],
  );
  return tables.rows.map((t) => {
    const key = keys.rows.find((k) => k.indrelid === t.oid);
    const keyAttnums = new Set(key?.attnums ?? []);
    const own = columns.rows.filter((c) => c.attrelid === t.oid);
    const tableColumns: Column[] = own.map((c) => ({
      name: c.attname,
      typeOid: c.atttypid,
      typeName: c.type_name,
      isKey: keyAttnums.has(c.attnum),
      notNull: c.attnotnull,
    }));
    return {
      oid: t.oid,
      schema,
      table: t.relname,
      columns: tableColumns,
      replicaIdentity: t.relreplident,
      estimatedRows: Math.round(t.reltuples),
      sizeBytes: Number(t.size),
      pages: t.relpages,
      hasKey: key !== undefined,
      foreignTypes: own.filter((c) => c.type_schema !== "pg_catalog").map((c) => `${c.attname} ${c.type_name}`),
    };
  });
}
