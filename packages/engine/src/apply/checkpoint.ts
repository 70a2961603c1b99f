// The checkpoint: the source position whose changes the target has
// committed, stored on the target and written in the same transaction as the
// data it covers. It is what makes apply exactly-once: after a crash the
// stream resumes from it, and the slot is acknowledged only up to it. The
// replication's lifetime totals travel with it, so that they count exactly
// what was committed, across restarts and crashes.
import pg from "pg";
import { ensureCreatedObjectsTable } from "./created-objects";
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
  totals: Totals;
}

/** What a replication has committed on the target since it was created. */
export interface Totals {
  rows: number;
  bytes: number;
  transactions: number;
  conflictsDetected: number;
  conflictsResolved: number;
  /** Change-batch bytes before and after compression and encryption (the compression ratio). */
  rawBatchBytes: number;
  shippedBatchBytes: number;
}

export const NO_TOTALS: Totals = Object.freeze({
  rows: 0,
  bytes: 0,
  transactions: 0,
  conflictsDetected: 0,
  conflictsResolved: 0,
  rawBatchBytes: 0,
  shippedBatchBytes: 0,
});

// Totals as columns: the name in the table for each field.
const TOTAL_COLUMNS: [keyof Totals, string][] = [
  ["rows", "total_rows"],
  ["bytes", "total_bytes"],
  ["transactions", "total_transactions"],
  ["conflictsDetected", "conflicts_detected"],
  ["conflictsResolved", "conflicts_resolved"],
  ["rawBatchBytes", "raw_batch_bytes"],
  ["shippedBatchBytes", "shipped_batch_bytes"],
];

export async function ensureCheckpointTable(client: pg.ClientBase): Promise<void> {
  await client.query("CREATE SCHEMA IF NOT EXISTS heliosdb_replication");
  await client.query(`CREATE TABLE IF NOT EXISTS heliosdb_replication.checkpoints (
    replication_id text PRIMARY KEY,
    phase text NOT NULL,
    lsn pg_lsn NOT NULL,
    commit_time timestamptz,
    xid bigint,
    updated_at timestamptz NOT NULL DEFAULT now())`);
  // Added after the first release: targets written by it gain them here.
  await client.query(
    `ALTER TABLE heliosdb_replication.checkpoints ${TOTAL_COLUMNS.map(([, c]) => `ADD COLUMN IF NOT EXISTS ${c} bigint NOT NULL DEFAULT 0`).join(", ")}`,
  );
  await client.query(`CREATE TABLE IF NOT EXISTS heliosdb_replication.table_syncs (
    replication_id text NOT NULL,
    table_name text NOT NULL,
    sync_lsn pg_lsn,
    PRIMARY KEY (replication_id, table_name))`);
  await ensureCreatedObjectsTable(client);
}

export async function readCheckpoint(client: pg.ClientBase, replicationId: string): Promise<Checkpoint | undefined> {
  const { rows } = await client.query<Record<string, string | Date | null>>(
    `SELECT phase, lsn::text AS lsn, commit_time, xid::text AS xid, updated_at, ${TOTAL_COLUMNS.map(([, c]) => `${c}::text`).join(", ")}
       FROM heliosdb_replication.checkpoints WHERE replication_id = $1`,
    [replicationId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const totals = { ...NO_TOTALS };
  for (const [field, column] of TOTAL_COLUMNS) totals[field] = Number(row[column]);
  return {
    phase: row.phase as CheckpointPhase,
    lsn: parseLsn(row.lsn as string),
    commitTime: row.commit_time as Date | null,
    xid: row.xid === null ? null : Number(row.xid),
    updatedAt: row.updated_at as Date,
    totals,
  };
}

/** Writes the checkpoint; call it inside the transaction that applies the data. */
export async function writeCheckpoint(
  client: pg.ClientBase,
  replicationId: string,
  checkpoint: Omit<Checkpoint, "updatedAt">,
): Promise<void> {
  await client.query(checkpointStatement(replicationId, checkpoint));
}

/**
 * The statement that writes the checkpoint, its values as literals: it needs
 * no parameters, so the applier sends it with COMMIT (and whatever it held
 * back) in one round trip (deferred.ts).
 */
export function checkpointStatement(replicationId: string, checkpoint: Omit<Checkpoint, "updatedAt">): string {
  const columns = TOTAL_COLUMNS.map(([, c]) => c);
  const values = [
    pg.escapeLiteral(replicationId),
    pg.escapeLiteral(checkpoint.phase),
    `'${formatLsn(checkpoint.lsn)}'::pg_lsn`,
    checkpoint.commitTime === null ? "NULL" : `'${checkpoint.commitTime.toISOString()}'::timestamptz`,
    checkpoint.xid === null ? "NULL" : integer(checkpoint.xid),
    "now()",
    ...TOTAL_COLUMNS.map(([field]) => integer(checkpoint.totals[field])),
  ];
  return `INSERT INTO heliosdb_replication.checkpoints (replication_id, phase, lsn, commit_time, xid, updated_at, ${columns.join(", ")})
     VALUES (${values.join(", ")})
     ON CONFLICT (replication_id) DO UPDATE
       SET phase = EXCLUDED.phase, lsn = EXCLUDED.lsn, commit_time = EXCLUDED.commit_time,
           xid = EXCLUDED.xid, updated_at = EXCLUDED.updated_at, ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(", ")}`;
}

// A count as an SQL integer literal: digits only, whatever the number (no exponent, no NaN).
function integer(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`checkpoint: not a finite number: ${n}`);
  return BigInt(Math.round(n)).toString();
}

/** Updates only the totals (after a table sync, whose rows no stream transaction carries). */
export async function writeTotals(client: pg.ClientBase, replicationId: string, totals: Totals): Promise<void> {
  await client.query(
    `UPDATE heliosdb_replication.checkpoints SET ${TOTAL_COLUMNS.map(([, c], i) => `${c} = $${i + 2}`).join(", ")} WHERE replication_id = $1`,
    [replicationId, ...TOTAL_COLUMNS.map(([field]) => Math.round(totals[field]))],
  );
}

export async function deleteCheckpoint(client: pg.ClientBase, replicationId: string): Promise<void> {
  await client.query("DELETE FROM heliosdb_replication.checkpoints WHERE replication_id = $1", [replicationId]);
  await client.query("DELETE FROM heliosdb_replication.table_syncs WHERE replication_id = $1", [replicationId]);
}
