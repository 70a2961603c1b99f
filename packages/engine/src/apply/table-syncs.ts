// Tables copied again while the replication's slot lives: a table added to
// the publication, or one whose row filter or column list changed. A table
// is marked (sync LSN unknown) before the publication change commits, so a
// crash anywhere after it still finds the table to copy; once copied under a
// snapshot, its sync LSN is that snapshot's consistent point, and the stream
// skips the table's changes in transactions that committed before it (the
// copy holds them). Kept on the target beside the checkpoint.
import type pg from "pg";
import { formatLsn, parseLsn, type Lsn } from "../types";

/** Tables to copy (sync LSN null) or copied (their sync LSN), by table name. */
export type TableSyncs = Map<string, Lsn | null>;

export async function markTablesToSync(client: pg.ClientBase, replicationId: string, tables: string[]): Promise<void> {
  if (tables.length === 0) return;
  await client.query(
    `INSERT INTO heliosdb_replication.table_syncs (replication_id, table_name, sync_lsn)
     SELECT $1, unnest($2::text[]), NULL
     ON CONFLICT (replication_id, table_name) DO UPDATE SET sync_lsn = NULL`,
    [replicationId, tables],
  );
}

export async function markTablesSynced(client: pg.ClientBase, replicationId: string, tables: string[], lsn: Lsn): Promise<void> {
  await client.query(
    "UPDATE heliosdb_replication.table_syncs SET sync_lsn = $3::pg_lsn WHERE replication_id = $1 AND table_name = ANY($2::text[])",
    [replicationId, tables, formatLsn(lsn)],
  );
}

export async function readTableSyncs(client: pg.ClientBase, replicationId: string): Promise<TableSyncs> {
  const { rows } = await client.query<{ table_name: string; sync_lsn: string | null }>(
    "SELECT table_name, sync_lsn::text AS sync_lsn FROM heliosdb_replication.table_syncs WHERE replication_id = $1",
    [replicationId],
  );
  return new Map(rows.map((r) => [r.table_name, r.sync_lsn === null ? null : parseLsn(r.sync_lsn)]));
}

/**
 * Forgets copied tables whose sync LSN the checkpoint has passed (nothing
 * left to skip), or every mark (`upTo` absent: a full initial sync copies
 * everything anyway).
 */
export async function forgetTableSyncs(client: pg.ClientBase, replicationId: string, upTo?: Lsn): Promise<void> {
  if (upTo === undefined) {
    await client.query("DELETE FROM heliosdb_replication.table_syncs WHERE replication_id = $1", [replicationId]);
    return;
  }
  await client.query("DELETE FROM heliosdb_replication.table_syncs WHERE replication_id = $1 AND sync_lsn <= $2::pg_lsn", [
    replicationId,
    formatLsn(upTo),
  ]);
}
