// What the cutover primitives act on: a tenant's tables in one schema of one
// database, named as the replication names them (ReplicationSpec's source
// and target have the same shape). Names are resolved against the catalog
// once, so that a missing table fails before anything changes, and a
// partitioned or inherited table brings its children: a statement aimed at a
// partition directly is a write to the tenant too.
import pg from "pg";
import { connect } from "../connect";

/** One side of a cutover: a database and the schema that holds the tenant's tables. */
export interface TenantDatabase {
  connection: pg.ClientConfig;
  schema: string;
  /**
   * A session the primitives use instead of opening one of their own (and
   * leave open): a cutover opens it before its fence, so that the window in
   * which the tenant's writes wait holds no connection set-up (a TLS and
   * SCRAM exchange each, tens of ms on a busy host). One primitive at a time
   * may use it; the caller ends it.
   */
  session?: pg.Client;
}

/** A table of the tenant as the catalog knows it. */
export interface ResolvedTable {
  oid: number;
  schema: string;
  table: string;
  /** Whether it was named by the caller (false: a partition or child reached through one). */
  named: boolean;
}

/** A table the caller named that the database does not have. */
export class TableNotFoundError extends Error {
  override readonly name = "TableNotFoundError";
}

/** Opens a session for one primitive (or lends the database's own, whose end() then does nothing); the caller ends it. */
export async function open(database: TenantDatabase, applicationName: string): Promise<pg.Client> {
  if (database.session) return lent(database.session);
  return connect({ application_name: applicationName, ...database.connection });
}

// The session as a primitive may use it, but not end it.
function lent(session: pg.Client): pg.Client {
  return new Proxy(session, {
    get(target, property) {
      if (property === "end") return () => Promise.resolve();
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The named tables (in the order given, without repeats) followed by every
 * partition and inheritance child below them. Ordinary and partitioned tables
 * only: a view or foreign table is not the tenant's data. A name the database
 * lacks is a TableNotFoundError, unless `skipMissing` (a table already gone).
 */
export async function resolveTables(client: pg.ClientBase, schema: string, tables: readonly string[], skipMissing = false): Promise<ResolvedTable[]> {
  const names = [...new Set(tables)];
  if (names.length === 0 && !skipMissing) throw new TableNotFoundError("no tables named");
  const { rows } = await client.query<{ oid: number; schema: string; table: string; position: number | null }>(
    `WITH RECURSIVE named AS (
       SELECT c.oid, n.position
         FROM unnest($2::text[]) WITH ORDINALITY AS n(name, position)
         JOIN pg_class c ON c.relname = n.name AND c.relkind IN ('r', 'p')
         JOIN pg_namespace s ON s.oid = c.relnamespace AND s.nspname = $1),
     tree AS (
       SELECT oid, position FROM named
       UNION
       SELECT i.inhrelid, NULL::bigint FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
     SELECT c.oid, s.nspname AS schema, c.relname AS table, min(tree.position)::int AS position
       FROM tree JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace s ON s.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p')
      GROUP BY c.oid, s.nspname, c.relname
      ORDER BY min(tree.position) NULLS LAST, s.nspname, c.relname`,
    [schema, names],
  );
  const found = new Set(rows.filter((r) => r.position !== null && r.schema === schema).map((r) => r.table));
  const missing = names.filter((n) => !found.has(n));
  if (missing.length > 0 && !skipMissing) throw new TableNotFoundError(`no table ${missing.map((m) => `"${schema}"."${m}"`).join(", ")} in the database`);
  return rows.map((r) => ({ oid: r.oid, schema: r.schema, table: r.table, named: r.position !== null }));
}
