// PromoteReplica (spec §2.3.1): the replica becomes a database the tenant's
// clients can use as their primary. It runs inside the downtime (the source
// is fenced, writes wait for the switch), so it holds only what must wait
// for the fence; ValidateReplicaHealth did the rest before it
// (cutover/prepare.ts).
//
// - A fence on it is lifted: a database failed back to is an old primary,
//   left fenced by the failover that demoted it. Only then is it checked to
//   take writes here (else ValidateReplicaHealth checked it). Nothing else
//   is restored: the engine disables no trigger or constraint on its target.
// - From the source, fenced and drained: every sequence's position (logical
//   decoding carries none), and the column defaults the target did not take
//   before the fence (the replication's applier held the table).
// - What the replication's transforms did to the data is noted.
//
// The verification (counts and checksums of every table) is not made here:
// UpdateRouting makes it after the switch, against the target as the switch
// found it, so that it adds nothing to the downtime.
//
// With the source unreachable, sequences and defaults cannot be read: the
// promoted tables keep what they have, and the step says so. Re-runnable
// (each part finds what an earlier run did); rollback puts back a fence it
// lifted.
import { tenantTables, unfence, type TenantDatabase } from "@heliosdb/replication-engine";
import type { JobStep } from "../../orchestrator/job-kind";
import { atFence, checkTargetWritable } from "../cutover/prepare";
import { liftedLine, refenceTarget } from "../cutover/promote";
import { timed } from "../cutover/timed";
import { type FailoverContext, type FailoverDeps, databasesOf, lentDatabasesOf, pause, replicationOf, save, stateOf } from "./deps";
import { replicaData } from "./replica-data";

export function promoteReplica(deps: FailoverDeps): JobStep {
  return {
    name: "PromoteReplica",
    rerunnable: true,
    cancellable: false,
    async run(ctx: FailoverContext) {
      const s = stateOf(ctx);
      const row = await replicationOf(deps, s.replicationId);
      // With the source answering, on the failover's sessions, opened before the fence (StopReplication's).
      const { source, target } = s.sourceReachable !== false ? await lentDatabasesOf(deps, ctx, row) : await databasesOf(deps, row);
      const tables = s.tables ?? (await tenantTables(target, row.config.tableFilter));
      if (!s.tables) await save(ctx, { tables });
      const data = replicaData(row.config);
      const took: Record<string, number> = {};
      // First the fence lifted (its DROP TRIGGER and the defaults' ALTER both want the tables alone).
      const lines = await timed(took, "unfence_ms", () => liftTargetFence(ctx, target, tables));
      const writable = () =>
        stateOf(ctx).targetReady ? Promise.resolve(["the new primary takes writes (checked before the fence)"]) : timed(took, "check_ms", () => checkTargetWritable(target, tables));
      let details = {};
      if (s.sourceReachable !== false) {
        // One after the other: they share the sessions, which take one primitive at a time (the check runs a query
        // only on a target it unfenced; ValidateReplicaHealth checked the others before the fence).
        const checked = await writable();
        const at = await atFence(source, target, tables, { lockTimeoutMs: deps.fenceLockTimeoutMs ?? 5_000, defaults: s.defaultsLeft !== 0, sequences: s.sequencePlan }, took);
        lines.push(...checked, ...at.lines);
        details = at.details;
      } else {
        lines.push(...(await writable()));
        lines.push(
          "the source is unreachable: no sequence position nor column default could be read from it, so the new primary's tables keep what they have " +
            "(an insert must name every column that has no default there)",
        );
      }

      for (const l of [...data.rewritten, ...data.partial]) lines.push(`note — ${l}`);
      lines.push(...data.notes);
      await pause(deps, "promoted", ctx);
      await ctx.report({ message: lines.join("; "), ...details, ...took });
    },

    async rollback(ctx: FailoverContext) {
      const s = stateOf(ctx);
      // Still an old primary the routing does not name: fenced again, as it was.
      await refenceTarget(ctx, async () => (await databasesOf(deps, await replicationOf(deps, s.replicationId))).target, deps.fenceLockTimeoutMs ?? 5_000);
    },
  };
}

// A fence on the target lifted (saved, for the rollback): the check that it then takes writes follows (in run).
async function liftTargetFence(ctx: FailoverContext, target: TenantDatabase, tables: string[]): Promise<string[]> {
  // ValidateReplicaHealth found no fence on it and checked it: nothing to lift (only a cutover fences, one at a time).
  if (stateOf(ctx).targetReady) return [];
  const lifted = await unfence(target, tables);
  const unfenced = [...lifted.dropped, ...lifted.disabled];
  if (unfenced.length === 0) return [];
  // The tables as named (fence() takes names in the schema; it finds their partitions itself).
  await save(ctx, { targetUnfenced: tables });
  return [liftedLine(lifted)];
}
