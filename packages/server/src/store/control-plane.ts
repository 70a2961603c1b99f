// The control plane's own database, as its cluster's identity and its name:
// the controller refuses a replication that would read from or write into it.
import type pg from "pg";

export interface DatabaseIdentity {
  /** pg_control_system().system_identifier: one per initdb. */
  systemIdentifier: string;
  database: string;
}

export async function controlPlaneDatabase(db: pg.Pool): Promise<DatabaseIdentity> {
  const { rows } = await db.query<{ id: string; database: string }>(
    "SELECT system_identifier::text AS id, current_database() AS database FROM pg_control_system()",
  );
  return { systemIdentifier: rows[0]!.id, database: rows[0]!.database };
}
