// The copies of the data path. The initial sync copies every table under the
// replication's new slot; a table sync copies the tables added to (or
// changed in) the publication while the slot lives, under a temporary slot
// of its own. Both copy under the snapshot CREATE_REPLICATION_SLOT exports,
// which PostgreSQL takes only once every transaction running when the slot
// was asked for has ended: it holds exactly the transactions that committed
// before the slot's consistent point, and the stream carries the rest.
import type pg from "pg";
import { forgetTableSyncs, markTablesSynced, readTableSyncs } from "../apply/table-syncs";
import { writeCheckpoint, writeTotals } from "../apply/checkpoint";
import { truncateTargetTables, type TargetTable } from "../apply/target-schema";
import { onSide } from "../failure";
import type { PublishedTable } from "../source/publication";
import { ReplicationConnection } from "../source/replication-connection";
import { copySnapshot, type TableCopyProgress } from "../source/snapshot";
import type { Lsn } from "../types";
import type { Figures } from "./figures";
import type { Setup } from "./setup";

export interface CopyContext {
  replicationId: string;
  source: pg.ClientConfig;
  targetConfig: pg.ClientConfig;
  /** The run's target session. */
  target: pg.Client;
  targetSchema: string;
  setup: Setup;
  figures: Figures;
  parallelism: number;
  signal: AbortSignal;
  rangePages?: number;
  /** Reports the copy of each table: InitialSyncStarted, InitialSyncProgress (each quarter), InitialSyncCompleted. */
  emit?: (type: string, message: string, details: Record<string, string>) => void;
}

/** Copies every table under a fresh slot's snapshot; returns where the stream starts. */
export async function initialSync(ctx: CopyContext, stream: ReplicationConnection, slot: string, tables: TargetTable[]): Promise<Lsn> {
  const { target, replicationId } = ctx;
  // A copy interrupted earlier left partial tables: start them afresh.
  await onSide("target", async () => {
    await truncateTargetTables(target, tables);
    await writeCheckpoint(target, replicationId, { phase: "snapshot", lsn: 0n, commitTime: null, xid: null, totals: ctx.figures.base });
  });
  const created = await onSide("source", stream.createSlot(slot));
  await copy(ctx, ctx.setup.published, created.snapshotName);
  const totals = ctx.figures.totals();
  await onSide("target", async () => {
    await writeCheckpoint(target, replicationId, { phase: "streaming", lsn: created.consistentPoint, commitTime: null, xid: null, totals });
    // Everything was copied: no table waits for a sync of its own.
    await forgetTableSyncs(target, replicationId);
  });
  ctx.figures.committedAt(created.consistentPoint, totals);
  return created.consistentPoint;
}

/**
 * Copies `tables` again (emptied first) under a temporary slot's snapshot,
 * and records its consistent point as their sync LSN: the stream then skips
 * their changes in transactions that committed before it.
 */
export async function syncTables(ctx: CopyContext, tables: PublishedTable[]): Promise<Lsn> {
  const { target, replicationId } = ctx;
  const names = tables.map((t) => t.table.table);
  const connection = await onSide("source", ReplicationConnection.connect(ctx.source));
  // The slot waits for every transaction in flight on the source: a pause or stop must not wait with it.
  const abandon = () => void connection.close();
  ctx.signal.addEventListener("abort", abandon, { once: true });
  try {
    ctx.signal.throwIfAborted();
    // A name of its own: a slot left by a session the server has not yet ended must not collide.
    const name = `${replicationId.replace(/[^a-zA-Z0-9]/g, "").toLowerCase().slice(0, 40)}_sync_${Date.now().toString(36)}`;
    const created = await onSide("source", connection.createSlot(`heliosdb_${name}`.slice(0, 63), { temporary: true }));
    const targetTables = tables.map((p) => ({ schema: ctx.targetSchema, table: p.table.table, columns: p.table.columns }));
    await onSide("target", truncateTargetTables(target, targetTables));
    await copy(ctx, tables, created.snapshotName);
    const totals = ctx.figures.totals();
    await onSide("target", async () => {
      await target.query("BEGIN");
      await markTablesSynced(target, replicationId, names, created.consistentPoint);
      await writeTotals(target, replicationId, totals);
      await target.query("COMMIT");
    });
    ctx.figures.committed = totals;
    return created.consistentPoint;
  } finally {
    ctx.signal.removeEventListener("abort", abandon);
    await connection.close();
  }
}

async function copy(ctx: CopyContext, tables: PublishedTable[], snapshotName: string): Promise<void> {
  const plan = ctx.setup.plan;
  const quarters = new Map<string, number>();
  const progress = await copySnapshot({
    source: ctx.source,
    target: ctx.targetConfig,
    targetSchema: ctx.targetSchema,
    snapshotName,
    tables,
    parallelism: ctx.parallelism,
    signal: ctx.signal,
    ...(ctx.rangePages ? { rangePages: ctx.rangePages } : {}),
    transformRow: (name) => {
      const table = tables.find((p) => p.table.table === name)!.table;
      const relationPlan = plan.forRelation(table);
      return relationPlan.transformed ? relationPlan : undefined;
    },
    onTable: (phase, t) => {
      if (phase === "started") {
        ctx.emit?.("InitialSyncStarted", `copying ${t.table} (about ${t.rowsEstimated} rows)`, tableDetails(t));
      } else {
        ctx.emit?.("InitialSyncCompleted", `copied ${t.table}: ${t.rowsCopied} rows`, tableDetails(t));
      }
    },
    onProgress: (p) => {
      // Each quarter of a table's estimated rows (bytes when the catalog has no row estimate), once.
      for (const t of p) {
        const quarter = Math.min(3, Math.floor(fractionOf(t) * 4));
        if (t.completed || quarter <= (quarters.get(t.table) ?? 0)) continue;
        quarters.set(t.table, quarter);
        ctx.emit?.("InitialSyncProgress", `${t.table}: ${quarter * 25}% copied`, { ...tableDetails(t), progress_percent: String(quarter * 25) });
      }
      ctx.figures.initialSync = p;
      ctx.figures.snapshotRows = p.reduce((n, t) => n + t.rowsCopied, 0);
      ctx.figures.snapshotBytes = p.reduce((n, t) => n + t.bytesCopied, 0);
    },
  });
  await plan.flush();
  ctx.figures.initialSync = progress;
}

/**
 * Copies the tables the publication gained or changed since the slot was
 * made (marked on the target before the change committed), and returns from
 * which commit the stream carries each table copied that way: its sync LSN,
 * until the checkpoint has passed it.
 */
export async function syncChangedTables(
  ctx: CopyContext,
  checkpointLsn: Lsn,
  hooks: { copying: () => void; run: (copy: () => Promise<Lsn>) => Promise<Lsn>; synced: (tables: string[], lsn: Lsn) => void },
): Promise<Map<string, Lsn>> {
  const { target, replicationId } = ctx;
  await onSide("target", forgetTableSyncs(target, replicationId, checkpointLsn));
  const syncs = await onSide("target", readTableSyncs(target, replicationId));
  const waiting = ctx.setup.published.filter((p) => syncs.has(p.table.table) && syncs.get(p.table.table) === null);
  if (waiting.length > 0) {
    hooks.copying();
    const lsn = await hooks.run(() => syncTables(ctx, waiting));
    for (const p of waiting) syncs.set(p.table.table, lsn);
    hooks.synced(waiting.map((p) => p.table.table), lsn);
  }
  return new Map([...syncs].filter((entry): entry is [string, Lsn] => entry[1] !== null));
}

function fractionOf(t: TableCopyProgress): number {
  if (t.rowsEstimated > 0) return t.rowsCopied / t.rowsEstimated;
  return t.bytesEstimated > 0 ? t.bytesCopied / t.bytesEstimated : 0;
}

function tableDetails(t: TableCopyProgress): Record<string, string> {
  return {
    table: t.table,
    rows_copied: String(t.rowsCopied),
    rows_estimated: String(t.rowsEstimated),
    bytes_copied: String(t.bytesCopied),
    bytes_estimated: String(t.bytesEstimated),
  };
}
