// PromoteReplica (spec §2.3.1): the replica becomes a database the tenant's
// clients can use as their primary.
//
// - A fence on it is lifted: a database failed back to is an old primary,
//   left fenced by the failover that demoted it. Nothing else is restored:
//   the engine disables no trigger or constraint on its target.
// - The check that clients can write there now (the engine's checkWritable),
//   before anything is written there.
// - From the source, fenced and drained: every sequence's position (logical
//   decoding carries none), the column defaults the engine's target tables
//   lack, and a verification — row counts and checksums of every table the
//   replication carries whole, source at the fence against the replica (a
//   table whose values a transform rewrites by count only; a filtered one is
//   not compared). A difference fails the step unless `force`.
// - What the replication's transforms did to the data is noted.
//
// With the source unreachable, sequences and defaults cannot be read: the
// promoted tables keep what they have, and the step says so. Re-runnable
// (each part finds what an earlier run did); rollback puts back a fence it
// lifted.
import type { JsonObject } from "@bufbuild/protobuf";
import { tenantTables } from "@heliosdb/replication-engine";
import type { JobStep } from "../../orchestrator/job-kind";
import { carryOver, readyTarget, refenceTarget } from "../cutover/promote";
import { type FailoverContext, type FailoverDeps, databasesOf, pause, replicationOf, save, stateOf } from "./deps";
import { replicaData } from "./replica-data";

export function promoteReplica(deps: FailoverDeps): JobStep {
  return {
    name: "PromoteReplica",
    rerunnable: true,
    cancellable: false,
    async run(ctx: FailoverContext) {
      const s = stateOf(ctx);
      const row = await replicationOf(deps, s.replicationId);
      const { source, target } = await databasesOf(deps, row);
      const tables = s.tables ?? (await tenantTables(target, row.config.tableFilter));
      if (!s.tables) await save(ctx, { tables });
      const data = replicaData(row.config);
      const details: JsonObject = {};
      // A fence lifted, then the check that clients can write there, before anything is written there.
      const lines = await readyTarget(ctx, target, tables);

      if (s.sourceReachable !== false) {
        const compared = data.filteredTables.has("*") ? [] : tables.filter((t) => !data.filteredTables.has(t));
        const transformed = data.rewrittenTables.has("*") ? compared : compared.filter((t) => data.rewrittenTables.has(t));
        const carried = await carryOver(source, target, tables, { tables: compared, transformed });
        lines.push(...carried.lines);
        Object.assign(details, carried.details);
        if (carried.mismatch) {
          if (!s.force) throw new Error(carried.mismatch);
          lines.push(`force: ${carried.mismatch}`);
        }
      } else {
        lines.push(
          "the source is unreachable: no sequence position nor column default could be read from it, so the new primary's tables keep what they have " +
            "(an insert must name every column that has no default there)",
        );
      }

      for (const l of [...data.rewritten, ...data.partial]) lines.push(`note — ${l}`);
      lines.push(...data.notes);
      await pause(deps, "promoted", ctx);
      await ctx.report({ message: lines.join("; "), ...details });
    },

    async rollback(ctx: FailoverContext) {
      const s = stateOf(ctx);
      // Still an old primary the routing does not name: fenced again, as it was.
      await refenceTarget(ctx, async () => (await databasesOf(deps, await replicationOf(deps, s.replicationId))).target, deps.fenceLockTimeoutMs ?? 5_000);
    },
  };
}
