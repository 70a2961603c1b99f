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
import { checkWritable, copyColumnDefaults, fence, syncSequences, tenantTables, unfence, verify } from "@heliosdb/replication-engine";
import type { JobStep } from "../../orchestrator/job-kind";
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
      const lines: string[] = [];
      const details: JsonObject = {};

      const lifted = await unfence(target, tables);
      const unfenced = [...lifted.dropped, ...lifted.disabled];
      if (unfenced.length > 0) {
        // The tables as named (fence() takes names in the schema; it finds their partitions itself).
        await save(ctx, { targetUnfenced: tables });
        lines.push(`lifted the fence an earlier failover left on ${unfenced.join(", ")}`);
      } else if ((s.targetUnfenced ?? []).length === 0) {
        lines.push("nothing to restore: the replication disables no trigger or constraint on its target, and no fence was on it");
      }

      // Before anything is written there: a database the tenant's clients could not write is not promoted.
      const writable = await checkWritable(target, tables);
      if (!writable.writable) throw new Error(`the new primary refuses writes: ${writable.problems.join("; ")}`);
      lines.push("the new primary takes writes (an INSERT, UPDATE and DELETE of no row on every table, rolled back)");

      if (s.sourceReachable !== false) {
        const sequences = await syncSequences(source, target, tables);
        details.sequences = sequences.map((q) => ({ source: q.source, target: q.target, last_value: q.lastValue.toString(), action: q.action }));
        lines.push(`${sequences.length} sequence(s) synced from the source${sequences.length ? ` (${sequences.map((q) => `${q.target} at ${q.lastValue}${q.action === "set" ? "" : `, ${q.action}`}`).join(", ")})` : ""}`);
        const defaults = await copyColumnDefaults(source, target, tables);
        details.defaults = defaults.set.map((d) => `${d.table}.${d.column} DEFAULT ${d.expression}`);
        lines.push(`${defaults.set.length} column default(s) copied from the source`);
        if (defaults.failed.length > 0) {
          lines.push(`column defaults the new primary did not take: ${defaults.failed.map((d) => `${d.table}.${d.column} DEFAULT ${d.expression} (${d.error})`).join("; ")}`);
        }
        const compared = data.filteredTables.has("*") ? [] : tables.filter((t) => !data.filteredTables.has(t));
        if (compared.length > 0) {
          const transformed = data.rewrittenTables.has("*") ? compared : compared.filter((t) => data.rewrittenTables.has(t));
          const v = await verify(source, target, compared, { checksum: true, transformed });
          details.verification = v.tables.map((t) => ({ table: t.table, source_rows: t.sourceRows, target_rows: t.targetRows, checksum: t.checksum }));
          const summary = v.tables.map((t) => `${t.table} ${t.targetRows}/${t.sourceRows} rows, ${t.checksum === "match" ? "checksums equal" : t.checksum}`).join("; ");
          if (!v.ok) {
            const why = `the replica differs from the source at the fence in ${v.mismatched.join(", ")} (${summary})`;
            if (!s.force) throw new Error(why);
            lines.push(`force: ${why}`);
          } else {
            lines.push(`the replica equals the source at the fence: ${summary}`);
          }
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
      if (!s.targetUnfenced?.length) return;
      const { target } = await databasesOf(deps, await replicationOf(deps, s.replicationId));
      // Still an old primary the routing does not name: fenced again, as it was.
      await fence(target, s.targetUnfenced, { fenceId: ctx.jobId, lockTimeoutMs: deps.fenceLockTimeoutMs ?? 5_000 });
    },
  };
}
