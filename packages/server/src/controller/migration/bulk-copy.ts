// BulkCopy (spec §2.4.1): the tenant's tables copied to the target by a
// replication created for the migration (its carrier: the engine's initial
// sync under the slot's exported snapshot, in `bulk_copy_parallelism`
// workers, then the stream — so snapshot and stream meet without a gap).
// The phase is done when the carrier streams: every table copied.
//
// Progress is measured, never invented: the bytes the copy workers copied
// (the engine's own counters, as the carrier's owner last observed them)
// over the catalog's size of the tables copied (their heap, which is what
// COPY reads; indexes are not copied). The copy speed so far gives
// `estimated_completion`. Both are read every `pollMs` and reported on the
// phase and the migration; each tenth of the copy is an event.
//
// Re-runnable: the carrier's id is derived from the migration's, so a run
// after an interruption finds it (a copy interrupted by a crash starts its
// tables afresh: the engine's rule). Rollback (a cancel, a failure later):
// the carrier deleted with its slot and publication, and the tables it
// created on the target dropped; the source is left as it was.
import { setTimeout as sleep } from "node:timers/promises";
import { tenantTables } from "@heliosdb/replication-engine";
import { LeaseLost, type JobStep } from "../../orchestrator/job-kind";
import type { ReplicationRow } from "../../store/replications";
import { type MigrationContext, type MigrationDeps, GB, databaseOf, emit, migrationOf, pause, round, save, stateOf } from "./deps";

export function bulkCopy(deps: MigrationDeps): JobStep {
  return {
    name: "BulkCopy",
    rerunnable: true,
    async run(ctx: MigrationContext) {
      let s = stateOf(ctx);
      const m = await migrationOf(deps, ctx.jobId);
      if (!s.tables) {
        const tables = await tenantTables(await databaseOf(deps, m.source, "source"), []);
        if (tables.length === 0) throw new Error(`the tenant has no tables in schema "${m.source.schema || "public"}" of ${m.source.database} on the source`);
        await save(ctx, { tables, bulkCopyStartedAt: new Date().toISOString() });
        s = stateOf(ctx);
      }
      const created = await deps.carrier.create(m, s.tables!);
      if (m.replicationId !== created.id && !(await deps.migrations.record(ctx.jobId, ctx.lease, { replicationId: created.id }))) throw new LeaseLost(ctx.jobId);
      await pause(deps, "copying", ctx);

      const startedAt = Date.parse(s.bulkCopyStartedAt!);
      let decile = -1;
      // The figures of a copy that ran before this run's (the carrier's owner may have changed meanwhile).
      let seen: Progress | undefined;
      for (;;) {
        ctx.signal.throwIfAborted();
        const row = await deps.replications.get(created.id);
        if (!row) throw new Error(`the migration's replication ${created.id} no longer exists`);
        if (row.desired === "stopped") throw new Error(`the migration's replication ${created.id} was stopped`);
        const observed = progressOf(row, startedAt);
        if (observed.tables > 0) seen = observed;
        const p = seen ?? observed;
        // Streaming comes only after the initial sync committed its last table.
        const done = row.status === "Streaming";
        const percent = done ? 100 : p.percent;
        await ctx.report({
          progress_percent: percent,
          estimated_data_size_gb: round(p.catalogBytes / GB, 6),
          data_size_gb: round(p.copiedBytes / GB, 6),
          ...(row.figures?.retry ? { message: `retrying: ${row.figures.retry.message}` } : {}),
        });
        const completion = done ? new Date() : p.estimatedCompletion;
        const recorded = await deps.migrations.record(ctx.jobId, ctx.lease, {
          estimatedDataSizeBytes: p.catalogBytes,
          dataTransferredBytes: p.copiedBytes,
          ...(completion ? { estimatedCompletion: completion } : {}),
        });
        if (!recorded) throw new LeaseLost(ctx.jobId);
        if (Math.floor(percent / 10) > decile) {
          decile = Math.floor(percent / 10);
          await emit(deps, s, "MigrationProgress", "Info", `migration ${ctx.jobId}: BulkCopy ${percent.toFixed(1)}% (${p.copiedBytes} of ${p.catalogBytes} bytes)`, {
            migration_id: ctx.jobId,
            phase: "BulkCopy",
            progress_percent: percent.toFixed(1),
            data_size_gb: String(round(p.copiedBytes / GB, 6)),
            estimated_data_size_gb: String(round(p.catalogBytes / GB, 6)),
            ...(completion ? { estimated_completion: completion.toISOString() } : {}),
          });
        }
        if (done) {
          await save(ctx, { copiedBytes: p.copiedBytes, catalogBytes: p.catalogBytes });
          const seconds = (Date.now() - startedAt) / 1000;
          await ctx.report({
            message: `copied ${p.tables} tables, ${p.copiedBytes} bytes (${p.rows} rows) in ${seconds.toFixed(1)} s with ${m.config.bulkCopyParallelism || 4} workers; the replication streams`,
          });
          return;
        }
        await sleep(deps.pollMs ?? 250, undefined, { signal: ctx.signal });
      }
    },

    async rollback(ctx: MigrationContext) {
      await deps.carrier.remove(ctx.jobId);
    },
  };
}

export interface Progress {
  tables: number;
  rows: number;
  copiedBytes: number;
  catalogBytes: number;
  percent: number;
  estimatedCompletion?: Date;
}

/** The copy's figures as the carrier's owner last observed them, at `now`. */
export function progressOf(row: Pick<ReplicationRow, "figures" | "estimatedDataSizeGb">, startedAt: number, now = Date.now()): Progress {
  const tables = row.figures?.initialSync ?? [];
  const copiedBytes = tables.reduce((n, t) => n + t.bytesCopied, 0);
  // The catalog's size from the carrier's own estimate until the copy reports its tables.
  const catalogBytes = tables.length > 0 ? tables.reduce((n, t) => n + t.bytesEstimated, 0) : Math.round((row.estimatedDataSizeGb ?? 0) * GB);
  const rows = tables.reduce((n, t) => n + t.rowsCopied, 0);
  // Heap bytes and COPY bytes differ a little: a copy not yet done reads at most 99.9%.
  const percent = catalogBytes > 0 ? Math.min(99.9, (100 * copiedBytes) / catalogBytes) : 0;
  const elapsed = (now - startedAt) / 1000;
  const speed = elapsed > 0 ? copiedBytes / elapsed : 0;
  const left = Math.max(0, catalogBytes - copiedBytes);
  return {
    tables: tables.length,
    rows,
    copiedBytes,
    catalogBytes,
    percent: round(percent, 1),
    ...(speed > 0 ? { estimatedCompletion: new Date(now + (left / speed) * 1000) } : {}),
  };
}
