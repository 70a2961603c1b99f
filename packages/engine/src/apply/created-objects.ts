// What a replication created on its target — schemas, tables, roll-up
// functions and triggers — recorded in the same transaction as the creation,
// beside the checkpoint. DELETE with cleanup_target drops exactly these, in
// reverse order of creation, and never an object that was there before the
// replication (a table it only wrote into stays, with its data).
import pg from "pg";

export type TargetObject =
  | { kind: "schema"; schema: string }
  | { kind: "table" | "function"; schema: string; name: string }
  | { kind: "trigger"; schema: string; name: string; table: string };

export async function ensureCreatedObjectsTable(client: pg.ClientBase): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS heliosdb_replication.created_objects (
    seq bigserial PRIMARY KEY,
    replication_id text NOT NULL,
    kind text NOT NULL,
    schema_name text NOT NULL,
    object_name text NOT NULL DEFAULT '',
    table_name text NOT NULL DEFAULT '',
    UNIQUE (replication_id, kind, schema_name, object_name, table_name))`);
}

/**
 * Runs `create` when `object` does not exist yet, and records it as the
 * replication's, in one transaction; returns whether it created it. An
 * object another session created meanwhile is left to that session.
 */
export async function createRecorded(client: pg.ClientBase, replicationId: string, object: TargetObject, create: () => Promise<unknown>): Promise<boolean> {
  await client.query("BEGIN");
  try {
    if (await exists(client, object)) {
      await client.query("COMMIT");
      return false;
    }
    await create();
    await client.query(
      `INSERT INTO heliosdb_replication.created_objects (replication_id, kind, schema_name, object_name, table_name)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [replicationId, object.kind, object.schema, "name" in object ? object.name : "", object.kind === "trigger" ? object.table : ""],
    );
    await client.query("COMMIT");
    return true;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    // duplicate_table, duplicate_object, duplicate_schema, duplicate_function: created by another session.
    if (["42P07", "42710", "42P06", "42723"].includes((e as { code?: string }).code ?? "")) return false;
    throw e;
  }
}

/**
 * Drops what the replication created, newest first, and forgets it. An
 * object something else now depends on (a view of the operator's, a table
 * in a schema it created) is left where it is.
 */
export async function dropCreatedObjects(client: pg.ClientBase, replicationId: string): Promise<void> {
  const { rows } = await client.query<{ seq: string; kind: TargetObject["kind"]; schema_name: string; object_name: string; table_name: string }>(
    "SELECT seq, kind, schema_name, object_name, table_name FROM heliosdb_replication.created_objects WHERE replication_id = $1 ORDER BY seq DESC",
    [replicationId],
  );
  for (const r of rows) {
    const schema = pg.escapeIdentifier(r.schema_name);
    const name = `${schema}.${pg.escapeIdentifier(r.object_name)}`;
    const sql = {
      trigger: `DROP TRIGGER IF EXISTS ${pg.escapeIdentifier(r.object_name)} ON ${schema}.${pg.escapeIdentifier(r.table_name)}`,
      function: `DROP FUNCTION IF EXISTS ${name}()`,
      table: `DROP TABLE IF EXISTS ${name}`,
      schema: `DROP SCHEMA IF EXISTS ${schema}`,
    }[r.kind];
    try {
      await client.query(sql);
    } catch (e) {
      // dependent_objects_still_exist, undefined_table (a trigger's table dropped by someone else)
      if (!["2BP01", "42P01"].includes((e as { code?: string }).code ?? "")) throw e;
    }
    await client.query("DELETE FROM heliosdb_replication.created_objects WHERE seq = $1", [r.seq]);
  }
}

async function exists(client: pg.ClientBase, o: TargetObject): Promise<boolean> {
  const qualified = (name: string) => `${pg.escapeIdentifier(o.schema)}.${pg.escapeIdentifier(name)}`;
  const found = (sql: string, params: unknown[]) => client.query(sql, params).then((r) => r.rows.length > 0);
  switch (o.kind) {
    case "schema":
      return found("SELECT 1 FROM pg_namespace WHERE nspname = $1", [o.schema]);
    case "table":
      return found("SELECT 1 WHERE to_regclass($1) IS NOT NULL", [qualified(o.name)]);
    case "function":
      return found("SELECT 1 WHERE to_regprocedure($1) IS NOT NULL", [`${qualified(o.name)}()`]);
    case "trigger":
      return found("SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2", [qualified(o.table), o.name]);
  }
}
