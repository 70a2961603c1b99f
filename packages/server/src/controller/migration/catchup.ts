// CDCCatchup (spec §2.4.1): the carrier streams the changes the tenant made
// since the copy's snapshot until its lag stays under
// `cdc_lag_threshold_seconds` — read from live figures (an owner observed
// them lately), at least twice, for `holdMs` in a row. Then an Automatic
// migration goes on to the cutover at once; a Manual one waits here, still
// watching the lag, until CutoverMigration asks for it (the request is kept
// in the migration's row) and the lag holds. `final_lag_seconds` is the lag
// last observed when the phase ended.
//
// Re-runnable: it changes nothing, it only watches. Nothing to roll back.
import { setTimeout as sleep } from "node:timers/promises";
import { LeaseLost, type JobStep } from "../../orchestrator/job-kind";
import type { ReplicationRow } from "../../store/replications";
import { type MigrationContext, type MigrationDeps, emit, migrationOf, pause, round, save, stateOf } from "./deps";

export function cdcCatchup(deps: MigrationDeps, staleAfterMs: () => number): JobStep {
  return {
    name: "CDCCatchup",
    rerunnable: true,
    async run(ctx: MigrationContext) {
      const s = stateOf(ctx);
      const first = await migrationOf(deps, ctx.jobId);
      const threshold = first.config.cdcLagThresholdSeconds || 1;
      const manual = first.config.cutoverStrategy === "Manual";
      const holdMs = deps.holdMs ?? 2_000;
      let holding: { since: number; observations: Set<string> } | undefined;
      let lastLag: number | undefined;
      let announced = false;
      let reportedAt = 0;
      for (;;) {
        ctx.signal.throwIfAborted();
        const [m, row] = await Promise.all([migrationOf(deps, ctx.jobId), deps.replications.get(s.replicationId)]);
        if (!row) throw new Error(`the migration's replication ${s.replicationId} no longer exists`);
        if (row.desired === "stopped") throw new Error(`the migration's replication ${s.replicationId} was stopped`);
        const lag = liveLag(row, staleAfterMs());
        if (lag !== undefined) lastLag = lag;
        if (lag !== undefined && lag <= threshold) {
          holding ??= { since: Date.now(), observations: new Set() };
          holding.observations.add(row.figures!.observedAt!);
        } else {
          holding = undefined;
        }
        const holds = holding !== undefined && holding.observations.size >= 2 && Date.now() - holding.since >= holdMs;
        if (holds && !announced) {
          announced = true;
          if (!s.caughtUpAt) await save(ctx, { caughtUpAt: new Date().toISOString() });
          await emit(deps, s, "MigrationProgress", "Info", `migration ${ctx.jobId}: CDCCatchup: the lag holds at ${lag!.toFixed(1)} s (threshold ${threshold} s)${manual && !m.cutoverRequestedAt ? "; waiting for CutoverMigration" : ""}`, {
            migration_id: ctx.jobId,
            phase: "CDCCatchup",
            lag_seconds: lag!.toFixed(3),
            cdc_lag_threshold_seconds: String(threshold),
            ...(manual && !m.cutoverRequestedAt ? { waiting_for: "CutoverMigration" } : {}),
          });
          await pause(deps, "caught-up", ctx);
        }
        if (holds && (!manual || m.cutoverRequestedAt)) {
          await save(ctx, { finalLagSeconds: lag! });
          const moved = Math.max(s.copiedBytes ?? 0, row.figures?.totalBytes ?? 0);
          if (moved > 0 && !(await deps.migrations.record(ctx.jobId, ctx.lease, { dataTransferredBytes: moved }))) throw new LeaseLost(ctx.jobId);
          await ctx.report({
            final_lag_seconds: round(lag!, 3),
            message: `the lag held under ${threshold} s (${lag!.toFixed(1)} s)${manual ? `; cutover asked for at ${m.cutoverRequestedAt!.toISOString()}` : ""}`,
          });
          return;
        }
        if (Date.now() - reportedAt >= 1_000) {
          reportedAt = Date.now();
          // Data moved: the copy and the stream, as the carrier's counters say.
          const moved = Math.max(s.copiedBytes ?? 0, row.figures?.totalBytes ?? 0);
          if (moved > 0 && !(await deps.migrations.record(ctx.jobId, ctx.lease, { dataTransferredBytes: moved }))) throw new LeaseLost(ctx.jobId);
          const waiting = holds ? "the lag holds under the threshold; waiting for CutoverMigration" : lastLag === undefined ? "waiting for live figures of the replication" : `lag ${lastLag.toFixed(1)} s (threshold ${threshold} s)`;
          await ctx.report({ ...(lastLag !== undefined ? { lag_seconds: round(lastLag, 3) } : {}), message: waiting });
        }
        await sleep(deps.pollMs ?? 250, undefined, { signal: ctx.signal });
      }
    },
  };
}

// The lag of a replication that streams with figures observed lately; undefined otherwise.
function liveLag(row: ReplicationRow, staleAfterMs: number): number | undefined {
  const f = row.figures;
  if (row.status !== "Streaming" || !f?.observedAt) return undefined;
  if (Date.now() - Date.parse(f.observedAt) > staleAfterMs) return undefined;
  return f.lagSeconds;
}
