// UpdateRouting (spec §2.3.1): with `update_routing`, the tenant's routing
// names the new primary — one statement, one transaction, the version moved
// by one, writes unblocked, the failover named — and every watcher hears it
// at commit. The failover's downtime is measured here: from the fence's
// blockingSince (the first write that waited) to the switch's commit, both
// on the clock of the server that ran them. Without `update_routing` nothing
// is switched and no downtime is measured (the tenant's clients still point
// at the old primary, whose writes stay fenced, until someone moves them).
//
// Then, with `reverse_replication` and the old primary reachable, the
// replication from the new primary back to the old one is created and
// started (after the switch, so that it adds nothing to the downtime). Its
// failure to start is said in the step's message, and does not undo a
// failover that has switched.
//
// Re-runnable: a switch already made by this failover is found in the
// routing row, a reverse replication by its id (derived from the
// failover's). Rollback: the reverse replication deleted, the routing
// switched back to the old primary if this failover switched it.
import { LeaseLost, type JobStep } from "../../orchestrator/job-kind";
import type { FailoverRow } from "../../store/failovers";
import { switchBack, switchRouting as switchTo } from "../cutover/switch";
import { type FailoverContext, type FailoverDeps, databasesOf, pause, replicationOf, save, stateOf, unreachable } from "./deps";

export function updateRouting(deps: FailoverDeps): JobStep {
  return {
    name: "UpdateRouting",
    rerunnable: true,
    cancellable: false,
    async run(ctx: FailoverContext) {
      const s = stateOf(ctx);
      const failover = await failoverOf(deps, ctx.jobId);
      const lines: string[] = [];
      if (s.updateRouting) lines.push(await switchRouting(deps, ctx, failover));
      await pause(deps, "switched", ctx);
      if (s.reverseReplication) lines.push(await reverse(deps, ctx));
      if (lines.length === 0) {
        return { skipped: "update_routing was not asked for: the tenant's routing is unchanged (it names the old primary, whose writes stay fenced)" };
      }
      await ctx.report({ message: lines.join("; ") });
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
