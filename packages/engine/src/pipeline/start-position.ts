// Where a run's stream starts, and what it copies first: every table under
// a fresh slot (a first start, a resync, or a checkpoint it cannot resume
// from), or, resuming from the checkpoint, the tables the publication gained
// or changed meanwhile, which a publication change marks on the target
// before it commits. The copies themselves are initial-sync.ts.
import type { TargetTable } from "../apply/target-schema";
import { ensureCheckpointTable, type Checkpoint } from "../apply/checkpoint";
import { markTablesToSync } from "../apply/table-syncs";
import { connect } from "../connect";
import { onSide } from "../failure";
import type { PublicationChange } from "../source/publication";
import { formatLsn, parseLsn, type Lsn } from "../types";
import type { PipelineContext } from "./context";
import { initialSync, syncChangedTables, type CopyContext } from "./initial-sync";
import type { StartOptions } from "./spec";

/** Copies what the run must copy first; returns the position its stream starts from. */
export async function startPosition(ctx: PipelineContext, options: StartOptions, checkpoint: Checkpoint | undefined, tables: TargetTable[]): Promise<Lsn> {
  const { stages } = ctx;
  const from = options.fromCheckpoint ?? "auto";
  const resumable = checkpoint?.phase === "streaming" && (await slotExists(ctx));
  let startLsn: Lsn;
  if (from === "resync" || (from === "auto" && !resumable)) {
    ctx.setStatus("Syncing");
    if (await slotExists(ctx)) await onSide("source", stages.stream!.dropSlot(ctx.slotName));
    const sync = () => initialSync(copyContext(ctx, options), stages.stream!, ctx.slotName, tables);
    startLsn = ctx.deps.pool ? await ctx.deps.pool.run(ctx.spec().config.priority, sync) : await sync();
    stages.skipBefore = new Map();
  } else {
    startLsn = from === "auto" ? checkpoint!.lsn : parseLsn(from);
    if (checkpoint) {
      ctx.figures.committedAt(checkpoint.lsn, checkpoint.totals, checkpoint.xid ?? 0);
      ctx.figures.lastCheckpoint = { lsn: checkpoint.lsn, timestamp: checkpoint.updatedAt, transactionId: checkpoint.xid ?? 0 };
    }
    stages.skipBefore = await syncChangedTables(copyContext(ctx, options), checkpoint?.lsn ?? startLsn, {
      copying: () => ctx.setStatus("Syncing"),
      run: (copy) => (ctx.deps.pool ? ctx.deps.pool.run(ctx.spec().config.priority, copy) : copy()),
      synced: (tables, lsn) =>
        ctx.emit("TablesSynced", "Info", `copied ${tables.join(", ")} under a snapshot at ${formatLsn(lsn)}`, { tables: tables.join(","), sync_lsn: formatLsn(lsn) }),
    });
  }
  return startLsn;
}

// Before a publication change commits: the tables it adds or changes are
// marked on the target, so that they are copied again even if the process
// dies right after the change.
export async function recordTablesToSync(ctx: PipelineContext, change: PublicationChange): Promise<void> {
  if (change.resync.length === 0) return;
  const target = await onSide("target", connect(ctx.spec().target.connection));
  try {
    await onSide("target", async () => {
      await ensureCheckpointTable(target);
      await markTablesToSync(target, ctx.spec().replicationId, change.resync.map((t) => t.table));
    });
  } finally {
    await target.end().catch(() => undefined);
  }
}

function copyContext(ctx: PipelineContext, options: StartOptions): CopyContext {
  const spec = ctx.spec();
  return {
    replicationId: spec.replicationId,
    source: spec.source.connection,
    targetConfig: spec.target.connection,
    target: ctx.stages.target!,
    targetSchema: spec.target.schema,
    setup: ctx.stages.setup!,
    figures: ctx.figures,
    parallelism: options.initialSyncParallelism ?? 4,
    signal: ctx.signal(),
    emit: (type, message, details) => ctx.emit(type, "Info", message, details),
    ...(ctx.deps.snapshotRangePages ? { rangePages: ctx.deps.snapshotRangePages } : {}),
  };
}

async function slotExists(ctx: PipelineContext): Promise<boolean> {
  const client = await onSide("source", connect(ctx.spec().source.connection));
  try {
    const { rowCount } = await onSide("source", client.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [ctx.slotName]));
    return rowCount === 1;
  } finally {
    await client.end();
  }
}
