// The checkpoint: the source position whose changes the target has
// committed, stored on the target and written in the same transaction as the
// data it covers. It is what makes apply exactly-once: after a crash the
// stream resumes from it, and the slot is acknowledged only up to it.
import type pg from "pg";
import { formatLsn, parseLsn, type Lsn } from "../types";

export type CheckpointPhase = "snapshot" | "streaming";

export interface Checkpoint {
  /** "snapshot" until the initial sync has committed, then "streaming". */
  phase: CheckpointPhase;
  /** The end LSN of the last applied source transaction (or the snapshot's consistent point). */
  lsn: Lsn;
  commitTime: Date | null;
  xid: number | null;
  updatedAt: Date;
}

export async function ensureCheckpointTable(client: pg.ClientBase): Promise<void> {
  await client.query("CREATE SCHEMA IF NOT EXISTS heliosdb_replication");
  await client.query(`CREATE TABLE IF NOT EXISTS heliosdb_replication.checkpoints (
    replication_id text PRIMARY KEY,
    phase text NOT NULL,
    lsn pg_lsn NOT NULL,
    commit_time timestamptz,
    xid bigint,
    updated_at timestamptz NOT NULL DEFAULT now())`);
}

export async function readCheckpoint(client: pg.ClientBase, replicationId: string): Promise<Checkpoint | undefined> {
  const { rows } = await client.query<{ phase: CheckpointPhase; lsn: string; commit_time: Date | null; xid: string | null; updated_at: Date }>(
    `SELECT phase, lsn::text AS lsn, commit_time, xid::text AS xid, updated_at
       FROM heliosdb_replication.checkpoints WHERE replication_id = $1`,
    [replicationId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    phase: row.phase,
    lsn: parseLsn(row.lsn),
    commitTime: row.commit_time,
    xid: row.xid === null ? null : Number(row.xid),
    updatedAt: row.updated_at,
  };
}

/** Writes the checkpoint; call it inside the transaction that applies the data. */
export async function writeCheckpoint(
  client: pg.ClientBase,
  replicationId: string,
  checkpoint: Omit<Checkpoint, "updatedAt">,
): Promise<void> {
  await client.query(
    `INSERT INTO heliosdb_replication.checkpoints (replication_id, phase, lsn, commit_time, xid, updated_at)
     VALUES ($1, $2, $3::pg_lsn, $4, $5, now())
     ON CONFLICT (replication_id) DO UPDATE
       SET phase = EXCLUDED.phase, lsn = EXCLUDED.lsn, commit_time = EXCLUDED.commit_time,
           xid = EXCLUDED.xid, updated_at = EXCLUDED.updated_at`,
    [replicationId, checkpoint.phase, formatLsn(checkpoint.lsn), checkpoint.commitTime, checkpoint.xid],
  );
}

export async function deleteCheckpoint(client: pg.ClientBase, replicationId: string): Promise<void> {
  await client.query("DELETE FROM heliosdb_replication.checkpoints WHERE replication_id = $1", [replicationId]);
}
