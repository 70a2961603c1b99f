// UpdateRouting (spec §2.3.1): with `update_routing`, the tenant's routing
// names the new primary — one statement, one transaction, the version moved
// by one, writes unblocked, the failover named — and every watcher hears it
// at commit. The failover's downtime is measured here: from the fence's
// blockingSince (the first write that waited) to the switch's commit, both
// on the clock of the server that ran them. Without `update_routing` nothing
// is switched and no downtime is measured (the tenant's clients still point
// at the old primary, whose writes stay fenced, until someone moves them):
// the step is Skipped, though what follows the switch is still done.
//
// Right before the switch the new primary's state is held (an exported
// snapshot); after it, outside the downtime:
// - the verification: row counts and checksums of every table the
//   replication carries whole (a table whose values a transform rewrites by
//   count only; a filtered one is not compared), the source at its fence
//   against the new primary as the switch found it. A difference is
//   reported loudly (the step's message, and an event of severity Error) and
//   undoes nothing — clients already write on the new primary; the reverse
//   replication is then not started, so the old primary stays fenced as it
//   was, for repair. A snapshot held by a server that died is gone: the
//   verification is then said not to have been made.
// - the forward replication ended, its slot and publication dropped (retried
//   until done: after the switch nothing fails the failover);
// - then, with `reverse_replication` and the old primary reachable, the
//   replication from the new primary back to the old one, created and
//   started only now that the forward one has ended (both running would
//   loop writes back). Its failure to start is said in the step's message.
//
// Re-runnable: a switch already made by this failover is found in the
// routing row, the verification in the job's state, a reverse replication by
// its id (derived from the failover's). Rollback (only before the switch:
// nothing after it throws): the reverse replication deleted, the routing
// switched back to the old primary if this failover switched it.
import { holdSnapshot, type HeldSnapshot, type TenantDatabase } from "@heliosdb/replication-engine";
import { LeaseLost, type JobStep } from "../../orchestrator/job-kind";
import type { FailoverRow } from "../../store/failovers";
import { samePrimary } from "../../store/routing";
import { stopCarrier } from "../cutover/drain";
import { switchBack, switchRouting as switchTo } from "../cutover/switch";
import { timed } from "../cutover/timed";
import { untilDone } from "../cutover/until-done";
import { verifyAtSwitch } from "../cutover/verify-at-switch";
import { type FailoverContext, type FailoverDeps, databasesOf, lentDatabasesOf, pause, replicationOf, save, stateOf, unreachable } from "./deps";
import { replicaData } from "./replica-data";

export function updateRouting(deps: FailoverDeps): JobStep {
  return {
    name: "UpdateRouting",
    rerunnable: true,
    cancellable: false,
    async run(ctx: FailoverContext) {
      const s = stateOf(ctx);
      // Verified only with the source at its fence to compare with (not when it was unreachable).
      const verifies = s.sourceReachable !== false;
      // Read at once: until the switch, each round trip is time the tenant's writes wait.
      const [failover, row] = await Promise.all([failoverOf(deps, ctx.jobId), replicationOf(deps, s.replicationId)]);
      // The snapshot is held on the failover's session to the target (opened before the fence); the verification reads
      // on sessions of its own, after the switch.
      const lent = verifies ? await lentDatabasesOf(deps, ctx, row) : await databasesOf(deps, row);
      const plain = (db: TenantDatabase): TenantDatabase => ({ connection: db.connection, schema: db.schema });
      const [source, target] = [plain(lent.source), plain(lent.target)];
      const lines: string[] = [];
      const took: Record<string, number> = {};
      let held: HeldSnapshot | undefined;
      try {
        // Held by this run only while nothing was switched: a later run finds the switch made, and the snapshot gone.
        if (verifies && !s.verification && !(await switched(deps, ctx, failover))) held = await timed(took, "hold_ms", () => holdSnapshot(lent.target));
        if (s.updateRouting) lines.push(await timed(took, "switch_ms", () => switchRouting(deps, ctx, failover)));
        await pause(deps, "switched", ctx);
        if (verifies && !stateOf(ctx).verification) {
          const data = replicaData(row.config);
          const tables = s.tables ?? [];
          const compared = data.filteredTables.has("*") ? [] : tables.filter((t) => !data.filteredTables.has(t));
          const transformed = data.rewrittenTables.has("*") ? compared : compared.filter((t) => data.rewrittenTables.has(t));
          const verification = await timed(took, "verify_ms", () => verifyAtSwitch(ctx, source, target, { tables: compared, transformed }, held));
          await save(ctx, { verification });
        }
      } finally {
        await held?.release();
        // The failover is done with its sessions (nothing after the switch runs inside the window).
        await deps.sessions?.release(ctx.jobId);
      }
      const verification = stateOf(ctx).verification;
      if (verification) lines.push(verification.message);
      // A comparison that found a difference (not one that could not be made): the old primary is kept for repair.
      const differs = verification !== undefined && !verification.ok && verification.tables !== undefined;

      // The forward replication ended for good (its pipeline halted in StopReplication); nothing here may fail now.
      if (!stateOf(ctx).stopped) {
        await timed(took, "end_ms", () => untilDone(ctx, deps.log, "end the replication", () => stopCarrier(ctx, deps, row.id, true)));
        lines.push("the replication ended, its slot and publication dropped");
      }
      if (s.reverseReplication) {
        lines.push(differs ? "no reverse replication: the new primary differs from the old one, which stays fenced as it was, for repair" : await reverse(deps, ctx));
      }
      const report = { ...took, ...(verification ? { verified: verification.ok, ...(verification.tables ? { verification: verification.tables } : {}) } : {}) };
      if (!s.updateRouting) {
        return { skipped: ["update_routing was not asked for: the tenant's routing is unchanged (it names the old primary, whose writes stay fenced)", ...lines].join("; ") };
      }
      await ctx.report({ message: lines.join("; "), ...report });
    },

    async rollback(ctx: FailoverContext) {
      const s = stateOf(ctx);
      if (s.reverseReplicationId) await deps.reverse.remove(s.reverseReplicationId);
      const failover = await failoverOf(deps, ctx.jobId);
      await switchBack(ctx, deps.routing, failover.oldPrimary, failover.newPrimary, "failover");
    },
  };
}

async function failoverOf(deps: FailoverDeps, id: string): Promise<FailoverRow & { oldPrimary: NonNullable<FailoverRow["oldPrimary"]>; newPrimary: NonNullable<FailoverRow["newPrimary"]> }> {
  const f = await deps.failovers.get(id);
  if (!f?.oldPrimary || !f.newPrimary) throw new Error(`failover ${id} does not name its primaries`);
  return f as never;
}

// Whether this failover's switch is made (saved, or found in the routing row when a run was interrupted before saving it).
async function switched(deps: FailoverDeps, ctx: FailoverContext, failover: Awaited<ReturnType<typeof failoverOf>>): Promise<boolean> {
  const s = stateOf(ctx);
  if (s.routingSwitchedAt) return true;
  if (!s.updateRouting) return false;
  const now = await deps.routing.get(s.tenantId);
  return now?.failoverId === ctx.jobId && samePrimary(now.primary, failover.newPrimary);
}

async function switchRouting(deps: FailoverDeps, ctx: FailoverContext, failover: Awaited<ReturnType<typeof failoverOf>>): Promise<string> {
  const s = stateOf(ctx);
  const where = `${failover.newPrimary.region || failover.newPrimary.connectionId} (${failover.newPrimary.database})`;
  const measured = s.routingSwitchedAt !== undefined;
  const { version, downtimeMs } = await switchTo(ctx, deps.routing, failover.newPrimary, "failover");
  if (!measured && downtimeMs !== undefined && !(await deps.failovers.record(ctx.jobId, ctx.lease, { downtimeMs }))) throw new LeaseLost(ctx.jobId);
  return (
    `the routing of tenant ${s.tenantId} names the new primary, ${where}${version !== undefined ? ` (version ${version})` : ""}` +
    (downtimeMs !== undefined ? `; downtime ${downtimeMs} ms, from the first blocked write to the switch` : "; no write was blocked by this failover (the source was unreachable): no downtime measured")
  );
}

async function reverse(deps: FailoverDeps, ctx: FailoverContext): Promise<string> {
  const s = stateOf(ctx);
  const forward = await replicationOf(deps, s.replicationId);
  if (!s.reverseReplicationId) {
    if (s.sourceReachable === false) {
      return "no reverse replication: the old primary was unreachable, and one would overwrite what it committed after the replica's checkpoint";
    }
    const why = await unreachable(deps, (await databasesOf(deps, forward)).source);
    if (why) return `no reverse replication: the old primary is unreachable (${why})`;
  }
  let created: { id: string };
  try {
    created = await deps.reverse.create(forward, ctx.jobId, s.tables ?? []);
  } catch (e) {
    ctx.signal.throwIfAborted();
    return `the reverse replication could not be created: ${(e as Error).message}`;
  }
  if (!s.reverseReplicationId) await save(ctx, { reverseReplicationId: created.id });
  return `reverse replication ${created.id} started from the new primary back to the old one (it copies the tables into the old primary, whose clients stay fenced)`;
}
