// Target tables are created from the source catalog (after transforms, which
// may change a column's type) and grow when the source adds columns. What a
// replication creates is recorded as its own (created-objects.ts): cleanup
// drops that and nothing else.
import pg from "pg";
import type { Column } from "../types";
import { qualified } from "../source/publication";
import { createRecorded } from "./created-objects";

/** A table as it is written on the target. */
export interface TargetTable {
  schema: string;
  table: string;
  columns: Column[];
}

/** Creates the schema and any missing table, as the replication's; adds columns the target lacks. */
export async function ensureTargetTables(client: pg.ClientBase, tables: TargetTable[], replicationId: string): Promise<void> {
  for (const schema of new Set(tables.map((t) => t.schema))) {
    await createRecorded(client, replicationId, { kind: "schema", schema }, () => client.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`));
  }
  for (const t of tables) {
    const keys = t.columns.filter((c) => c.isKey).map((c) => pg.escapeIdentifier(c.name));
    const definitions = t.columns.map(columnDefinition);
    if (keys.length > 0) definitions.push(`PRIMARY KEY (${keys.join(", ")})`);
    await createRecorded(client, replicationId, { kind: "table", schema: t.schema, name: t.table }, () =>
      client.query(`CREATE TABLE ${qualified(t)} (${definitions.join(", ")})`),
    );
    await addMissingColumns(client, t);
  }
}

/** Adds the columns of `t` that the target table lacks (new source columns). Returns their names. */
export async function addMissingColumns(client: pg.ClientBase, t: TargetTable): Promise<string[]> {
  const { rows } = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
    [qualified(t)],
  );
  const present = new Set(rows.map((r) => r.attname));
  const missing = t.columns.filter((c) => !present.has(c.name));
  for (const c of missing) {
    // NOT NULL is not added: rows already on the target have no value for it.
    await client.query(`ALTER TABLE ${qualified(t)} ADD COLUMN IF NOT EXISTS ${columnDefinition({ ...c, notNull: false })}`);
  }
  return missing.map((c) => c.name);
}

export async function truncateTargetTables(client: pg.ClientBase, tables: TargetTable[]): Promise<void> {
  if (tables.length > 0) await client.query(`TRUNCATE ${tables.map(qualified).join(", ")}`);
}

function columnDefinition(c: Column): string {
  return `${pg.escapeIdentifier(c.name)} ${c.typeName}${c.notNull ? " NOT NULL" : ""}`;
}
