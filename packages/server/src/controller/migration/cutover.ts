// Cutover (spec §2.4.1), on the same shared parts as a failover
// (controller/cutover/): the tenant's tables fenced on the source (its
// writers fail with 25006 and follow routing) and its routing marked
// writes_blocked; the carrier drained to the fence's final LSN (every
// acknowledged write is then on the target) and stopped, its slot and
// publication dropped; the target made a primary (checked writable, every
// sequence's position and the column defaults carried over, verified against
// the source at the fence: counts and checksums of every table, a difference
// fails the phase); the routing switched in one transaction that moves its
// version; then the carrier stopped (outside the downtime: with the source
// fenced and drained it has nothing left to apply). The source stays fenced: lifting it would reopen it to clients
// that have not followed routing. With `cleanup_source` the tenant's tables
// are then dropped from the source — only after the switch.
//
// downtime_ms is measured from the fence's blockingSince (the first write
// that waited) to the switch's commit; the phase's duration_ms is the
// control plane's clock from the phase's start to its end.
//
// Not cancellable (once the fence may be up, the migration goes on or rolls
// back). Re-runnable: each part saves what it did (cutover/state.ts), so a
// server that resumes it goes on from there. Rollback: the routing switched
// back if this migration switched it, the source's fence lifted, its routing
// unblocked (BulkCopy's rollback then removes the carrier and its tables).
// After the switch nothing fails the phase (what remains is retried): a
// rollback then would move the tenant's clients off writes they made.
import { setTimeout as sleep } from "node:timers/promises";
import { dropTenantTables, formatLsn } from "@heliosdb/replication-engine";
import { LeaseLost, type JobStep } from "../../orchestrator/job-kind";
import { drainCarrier, stopCarrier } from "../cutover/drain";
import { blockRouting, fenceSource, liftFence } from "../cutover/fence";
import { carryOver, readyTarget, refenceTarget } from "../cutover/promote";
import { switchBack, switchRouting } from "../cutover/switch";
import { type MigrationContext, type MigrationDeps, databaseOf, migrationOf, pause, save, stateOf } from "./deps";

export function cutover(deps: MigrationDeps): JobStep {
  return {
    name: "Cutover",
    rerunnable: true,
    cancellable: false,
    async run(ctx: MigrationContext) {
      const s = stateOf(ctx);
      const m = await migrationOf(deps, ctx.jobId);
      const row = await deps.replications.get(s.replicationId);
      if (!row) throw new Error(`the migration's replication ${s.replicationId} no longer exists`);
      const [source, target] = await Promise.all([databaseOf(deps, m.source, "source"), databaseOf(deps, m.target, "target")]);
      const tables = s.tables!;
      const lines: string[] = [];

      // What each part took on this run (the downtime is measured apart, from the fence's first ask).
      const took: Record<string, number> = {};
      const timed = async <T>(part: string, f: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        try {
          return await f();
        } finally {
          took[part] = Date.now() - t0;
        }
      };

      // 1. Writes stop on the source; clients that follow routing hear that they are blocked.
      const fenced = await timed("fence_ms", () => fenceSource(ctx, source, tables, deps.fenceLockTimeoutMs ?? 5_000));
      await blockRouting(ctx, deps.routing, m.source, "migration");
      await pause(deps, "fenced", ctx);

      // 2. Every acknowledged write reaches the target.
      const finalLsn = BigInt(fenced.finalLsn);
      const applied = await timed("drain_ms", () => drainCarrier(ctx, deps, row, finalLsn, deps.drainTimeoutMs ?? 60_000));
      await pause(deps, "drained", ctx);
      lines.push(`fenced ${fenced.tables.length} tables (${fenced.tables.join(", ")}) at LSN ${formatLsn(finalLsn)}; the target applied through ${formatLsn(applied)}`);

      // 3. The target becomes a primary, checked against the source at the fence.
      if (!stateOf(ctx).routingSwitchedAt) {
        lines.push(...(await timed("ready_ms", () => readyTarget(ctx, target, tables))));
        const carried = await timed("verify_ms", () => carryOver(source, target, tables, { tables, transformed: [] }));
        if (carried.mismatch) throw new Error(carried.mismatch);
        lines.push(...carried.lines);
        await ctx.report(carried.details);
      }

      // 4. The switch; the downtime ends here. The carrier is stopped after it, outside the downtime: with the
      // source fenced and drained it has nothing left to apply.
      const measured = stateOf(ctx).routingSwitchedAt !== undefined;
      const switched = await timed("switch_ms", () => switchRouting(ctx, deps.routing, m.target, "migration"));
      if (!measured && switched.downtimeMs !== undefined && !(await deps.migrations.record(ctx.jobId, ctx.lease, { downtimeMs: switched.downtimeMs }))) {
        throw new LeaseLost(ctx.jobId);
      }
      lines.push(
        `the routing of tenant ${s.tenantId} names ${m.target.region || m.target.connectionId} (${m.target.database})${switched.version !== undefined ? ` (version ${switched.version})` : ""}; ` +
          `downtime ${switched.downtimeMs ?? 0} ms, from the first blocked write to the switch`,
      );
      await pause(deps, "switched", ctx);

      // 5. After the switch nothing may undo it (clients write on the target now): what follows is retried, never failed.
      await timed("stop_ms", () => untilDone(ctx, deps, "stop the replication", () => stopCarrier(ctx, deps, row.id, true)));
      lines.push("the replication stopped, its slot and publication dropped");
      if (m.config.cleanupSource) {
        // Only now, with the routing on the target: the source's copy of the tenant dropped.
        if (!stateOf(ctx).sourceCleaned) {
          const dropped = await untilDone(ctx, deps, "drop the source's tables", () => dropTenantTables(source, tables, { lockTimeoutMs: deps.fenceLockTimeoutMs ?? 5_000 }));
          await save(ctx, { sourceCleaned: dropped });
        }
        const cleaned = stateOf(ctx).sourceCleaned!;
        lines.push(`cleanup_source: dropped ${cleaned.length} tables from the source${cleaned.length ? ` (${cleaned.join(", ")})` : ""}`);
      } else {
        lines.push("the source keeps the tenant's tables, fenced");
      }
      await ctx.report({ message: lines.join("; "), final_lsn: formatLsn(finalLsn), blocking_since: fenced.blockingSince, downtime_ms: switched.downtimeMs ?? 0, ...took });
    },

    async rollback(ctx: MigrationContext) {
      const s = stateOf(ctx);
      const m = await migrationOf(deps, ctx.jobId);
      await switchBack(ctx, deps.routing, m.source, m.target, "migration");
      await refenceTarget(ctx, () => databaseOf(deps, m.target, "target"), deps.fenceLockTimeoutMs ?? 5_000);
      await liftFence(ctx, deps.routing, m.source, "migration", async () => ({ db: await databaseOf(deps, m.source, "source"), tables: s.tables ?? [] }));
    },
  };
}

// Tries `f` again (every second, then up to every 10 s) until it succeeds or the step is aborted; each failure logged.
async function untilDone<T>(ctx: MigrationContext, deps: MigrationDeps, what: string, f: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      ctx.signal.throwIfAborted();
      if (e instanceof LeaseLost) throw e;
      deps.log?.(`migration ${ctx.jobId}: could not ${what} (attempt ${attempt + 1}), trying again: ${(e as Error).message}`);
      await sleep(Math.min(10_000, 1_000 * 2 ** attempt), undefined, { signal: ctx.signal });
    }
  }
}
