// After a migration has switched the tenant's routing to its new primary:
// the tenant's tables dropped on the old one (`cleanup_source`). Only ever
// called after the switch — before it, these are the tenant's only data.
// Named tables only (their partitions go with them), one transaction, and a
// table already gone is not an error: a run interrupted after the commit
// may run again.
import pg from "pg";
import { open, resolveTables, type TenantDatabase } from "./tables";

/** Drops `tables` of `db.schema` (with CASCADE: views and foreign keys on them go too); the tables dropped, schema-qualified. */
export async function dropTenantTables(db: TenantDatabase, tables: readonly string[], options: { lockTimeoutMs?: number } = {}): Promise<string[]> {
  const client = await open(db, "heliosdb cleanup");
  try {
    await client.query("BEGIN");
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(options.lockTimeoutMs ?? 5_000))}`);
    const named = (await resolveTables(client, db.schema, tables, true)).filter((t) => t.named);
    const names = named.map((t) => `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.table)}`);
    if (names.length > 0) await client.query(`DROP TABLE IF EXISTS ${names.join(", ")} CASCADE`);
    await client.query("COMMIT");
    return named.map((t) => `${t.schema}.${t.table}`);
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw e;
  } finally {
    await client.end().catch(() => undefined);
  }
}
