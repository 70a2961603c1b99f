// What a replica needs to become a primary, beyond the data and the
// sequences (sequences.ts): the tables the replication carries, named from a
// catalog; the column defaults of the source, which the engine's target
// tables were created without (an insert that leaves a column out would get
// NULL, or fail on NOT NULL); and proof that the tenant's clients can write
// there now.
//
// The writable check writes: in a transaction it rolls back, an INSERT, an
// UPDATE and a DELETE that touch no row, on every table. A statement-level
// trigger (a fence left by an earlier cutover), a read-only server or
// session (a standby, default_transaction_read_only) and missing privileges
// all refuse such a statement exactly as they refuse a client's, so the
// check answers the question a client would ask, not a reading of settings.
import pg from "pg";
import { sqlStateOf } from "../failure";
import { readCatalog } from "../source/catalog";
import { qualified } from "../source/publication";
import { applyTableFilter } from "../source/table-filter";
import { open, resolveTables, type ResolvedTable, type TenantDatabase } from "./tables";

/** The tables of `db.schema` a replication's `table_filter` selects (every table when it is empty), in name order. */
export async function tenantTables(db: TenantDatabase, tableFilter: readonly string[]): Promise<string[]> {
  const client = await open(db, "heliosdb_tenant_tables");
  try {
    return applyTableFilter(await readCatalog(client, db.schema), tableFilter).map((t) => t.table);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A column default: the expression as PostgreSQL prints it (pg_get_expr). */
export interface ColumnDefault {
  table: string;
  column: string;
  expression: string;
}

export interface DefaultsCopy {
  /** Set on the target, which had none. */
  set: ColumnDefault[];
  /** The target column had a default already (its own is kept). */
  kept: ColumnDefault[];
  /** Refused by the target (an expression naming something it lacks, a lock not granted in time), with why. */
  failed: (ColumnDefault & { error: string })[];
}

/**
 * Gives the target's columns the defaults their source columns have, where
 * the target column has none. Defaults that draw from a sequence are
 * syncSequences' (it creates the target's sequence and its default), and a
 * column the target lacks is passed over. Each default is set on its own
 * (a savepoint each, `lockTimeoutMs` per lock, default 5000): one the target
 * refuses is reported in `failed`, the others are set.
 */
export async function copyColumnDefaults(
  source: TenantDatabase,
  target: TenantDatabase,
  tables: readonly string[],
  options: { lockTimeoutMs?: number } = {},
): Promise<DefaultsCopy> {
  const from = await open(source, "heliosdb_copy_defaults");
  let wanted: ColumnDefault[];
  try {
    wanted = await defaults(from, await resolveTables(from, source.schema, tables));
  } finally {
    await from.end().catch(() => undefined);
  }
  const to = await open(target, "heliosdb_copy_defaults");
  try {
    const named = (await resolveTables(to, target.schema, tables)).filter((t) => t.named);
    const { rows: columns } = await to.query<{ table: string; column: string; has_default: boolean }>(
      `SELECT c.relname AS table, a.attname AS column, a.atthasdef AS has_default
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped`,
      [named.map((t) => t.oid)],
    );
    const onTarget = new Map(columns.map((c) => [`${c.table}\u0000${c.column}`, c.has_default]));
    const result: DefaultsCopy = { set: [], kept: [], failed: [] };
    const todo = wanted.filter((d) => {
      const hasDefault = onTarget.get(`${d.table}\u0000${d.column}`);
      if (hasDefault === true) result.kept.push(d);
      return hasDefault === false;
    });
    if (todo.length === 0) return result;
    await to.query(`BEGIN; SET LOCAL lock_timeout = ${Math.trunc(options.lockTimeoutMs ?? 5_000)}`);
    try {
      for (const d of todo) {
        await to.query("SAVEPOINT heliosdb_default");
        try {
          await to.query(
            `ALTER TABLE ${qualified({ schema: target.schema, table: d.table })} ALTER COLUMN ${pg.escapeIdentifier(d.column)} SET DEFAULT ${d.expression}`,
          );
          await to.query("RELEASE SAVEPOINT heliosdb_default");
          result.set.push(d);
        } catch (e) {
          await to.query("ROLLBACK TO SAVEPOINT heliosdb_default");
          result.failed.push({ ...d, error: `${(e as Error).message}${sqlStateOf(e) ? ` (SQLSTATE ${sqlStateOf(e)})` : ""}` });
        }
      }
      await to.query("COMMIT");
    } catch (e) {
      await to.query("ROLLBACK").catch(() => undefined);
      throw e;
    }
    return result;
  } finally {
    await to.end().catch(() => undefined);
  }
}

// The named tables' column defaults, but those that draw from a sequence (syncSequences' business).
async function defaults(client: pg.ClientBase, tables: ResolvedTable[]): Promise<ColumnDefault[]> {
  const named = tables.filter((t) => t.named);
  const { rows } = await client.query<ColumnDefault & { sequence: boolean }>(
    `SELECT c.relname AS table, a.attname AS column, pg_get_expr(d.adbin, d.adrelid) AS expression,
            EXISTS (SELECT 1 FROM pg_depend s JOIN pg_class q ON q.oid = s.refobjid AND q.relkind = 'S'
                     WHERE s.classid = 'pg_attrdef'::regclass AND s.objid = d.oid AND s.refclassid = 'pg_class'::regclass) AS sequence
       FROM pg_attrdef d
       JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
       JOIN pg_class c ON c.oid = d.adrelid
      WHERE d.adrelid = ANY($1::oid[]) AND NOT a.attisdropped AND a.attgenerated = '' AND a.attidentity = ''
      ORDER BY c.relname, a.attnum`,
    [named.map((t) => t.oid)],
  );
  return rows.filter((r) => !r.sequence).map(({ table, column, expression }) => ({ table, column, expression }));
}

export interface WritableCheck {
  writable: boolean;
  /** Why a client could not write, table by table (with the SQLSTATE it would get), or for the whole database. */
  problems: string[];
}

/**
 * Whether the tenant's clients can write `tables` (names in `target.schema`)
 * on this database now: an INSERT, UPDATE and DELETE of no row on each, in a
 * transaction that is rolled back (see the file's header), and whether the
 * server is a standby.
 */
export async function checkWritable(target: TenantDatabase, tables: readonly string[]): Promise<WritableCheck> {
  const client = await open(target, "heliosdb_check_writable");
  const problems: string[] = [];
  try {
    const { rows } = await client.query<{ recovery: boolean }>("SELECT pg_is_in_recovery() AS recovery");
    if (rows[0]!.recovery) problems.push("the server is a standby in recovery: it accepts no write");
    const named = (await resolveTables(client, target.schema, tables)).filter((t) => t.named);
    const { rows: firsts } = await client.query<{ oid: number; column: string }>(
      `SELECT DISTINCT ON (attrelid) attrelid AS oid, attname AS column FROM pg_attribute
        WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attrelid, attnum`,
      [named.map((t) => t.oid)],
    );
    // Statements that change no row still fire statement triggers and check privileges and read-only state.
    const checks = named.map((t) => {
      const column = firsts.find((f) => f.oid === t.oid)?.column;
      const name = qualified(t);
      return {
        table: t,
        statements: [
          `INSERT INTO ${name} SELECT * FROM ${name} WHERE false`,
          ...(column ? [`UPDATE ${name} SET ${pg.escapeIdentifier(column)} = ${pg.escapeIdentifier(column)} WHERE false`] : []),
          `DELETE FROM ${name} WHERE false`,
        ],
      };
    });
    const begin = "BEGIN; SET LOCAL lock_timeout = 5000; SET LOCAL statement_timeout = 10000";
    // At once first, in one round trip (a failover makes this check inside its downtime): a writable target passes
    // here. Only when something refuses is each statement run on its own, to name every problem.
    try {
      await client.query(`${begin}; ${checks.flatMap((c) => c.statements).join("; ")}; ROLLBACK`);
      if (problems.length === 0) return { writable: true, problems };
    } catch {
      await client.query("ROLLBACK").catch(() => undefined);
    }
    await client.query(begin);
    try {
      for (const { table: t, statements } of checks) {
        for (const sql of statements) {
          await client.query("SAVEPOINT heliosdb_writable");
          try {
            await client.query(sql);
            await client.query("RELEASE SAVEPOINT heliosdb_writable");
          } catch (e) {
            await client.query("ROLLBACK TO SAVEPOINT heliosdb_writable");
            problems.push(`${sql.split(" ")[0]} on ${t.schema}.${t.table}: ${(e as Error).message} (SQLSTATE ${sqlStateOf(e) ?? "?"})`);
          }
        }
      }
    } finally {
      await client.query("ROLLBACK").catch(() => undefined);
    }
    return { writable: problems.length === 0, problems };
  } finally {
    await client.end().catch(() => undefined);
  }
}
