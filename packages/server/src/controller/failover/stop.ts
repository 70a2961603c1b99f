// StopReplication (spec §2.3.1). With the source answering: fence the
// replication's tables there (from then on the tenant's writers fail with
// 25006 and follow routing), drain the replication to the fence's final LSN
// (every write acknowledged before the fence is then on the replica), and
// stop the replication (its slot and publication dropped). Nothing
// acknowledged is lost, and nothing commits on the old primary after the
// fence, which stays up: lifting it would reopen the old primary to clients
// that have not followed routing.
//
// With the source unreachable (and `force`), nothing can be fenced or
// drained: the replication stops at the last checkpoint the replica applied,
// and the failover records that position and since when the source has been
// away — what the source committed after it may be lost.
//
// Re-runnable: each part saves what it did before the next begins, so a run
// after an interruption goes on from there (a fence already up is drained,
// not fenced again: a new fence would move the final LSN past a slot that
// may already be gone). Rollback: the fence lifted, the routing unblocked,
// the replication started again as it was.
import { connect, fence, formatLsn, readCheckpoint, tenantTables, unfence, type TenantDatabase } from "@heliosdb/replication-engine";
import type { JobStep } from "../../orchestrator/job-kind";
import { samePrimary } from "../../store/routing";
import { type FailoverContext, type FailoverDeps, type FailoverState, databasesOf, pause, replicationOf, save, stateOf, unreachable } from "./deps";

export function stopReplication(deps: FailoverDeps): JobStep {
  return {
    name: "StopReplication",
    rerunnable: true,
    // Once the fence may be up, the failover goes on or rolls back; it is not cancelled half way.
    cancellable: false,
    async run(ctx: FailoverContext) {
      let s = stateOf(ctx);
      const row = await replicationOf(deps, s.replicationId);
      const { source, target } = await databasesOf(deps, row);
      if (s.stopped) return;
      if (!s.fence && !s.lossWindow && s.sourceReachable === undefined) {
        const why = await unreachable(deps, source);
        if (why && !s.force) {
          throw new Error(
            `the source is unreachable (${why}): its writes can be neither fenced nor drained. ` +
              "Trigger with force to fail over at the last checkpoint the replica applied, accepting that what the source committed after it may be lost",
          );
        }
        await save(ctx, { sourceReachable: !why });
        s = stateOf(ctx);
      }
      if (s.sourceReachable === false) return stopAtCheckpoint(deps, ctx, row.figures?.retry?.side === "source" ? row.figures.statusSince : undefined, target);

      // 1. The fence.
      const tables = s.tables ?? (await tenantTables(source, row.config.tableFilter));
      if (!s.tables) await save(ctx, { tables });
      if (!s.fence) {
        // An earlier run may have fenced without saving it: the first ask is when writes may have stopped.
        const earlier = s.fencing;
        if (!earlier) await save(ctx, { fencing: new Date().toISOString() });
        const f = await fence(source, tables, { fenceId: ctx.jobId, lockTimeoutMs: deps.fenceLockTimeoutMs ?? 5_000 });
        const blockingSince = earlier && Date.parse(earlier) < f.blockingSince.getTime() ? earlier : f.blockingSince.toISOString();
        await save(ctx, { fence: { finalLsn: f.finalLsn.toString(), blockingSince, fencedAt: f.fencedAt.toISOString(), tables: f.tables } });
        s = stateOf(ctx);
      }
      // Clients that follow routing hear that writes are blocked (a new version), until the switch.
      if (s.updateRouting && !s.routingBlocked) {
        const [routing, failover] = await Promise.all([deps.routing.get(s.tenantId), deps.failovers.get(ctx.jobId)]);
        if (routing && failover?.oldPrimary && samePrimary(routing.primary, failover.oldPrimary) && !routing.writesBlocked) {
          if (await deps.routing.setWritesBlocked(s.tenantId, routing.version, true, ctx.jobId, { jobId: ctx.jobId, ...ctx.lease })) await save(ctx, { routingBlocked: true });
        }
      }
      await pause(deps, "fenced", ctx);

      // 2. The drain: the replica applies everything up to the fence.
      const finalLsn = BigInt(s.fence!.finalLsn);
      if (!s.drained) {
        // A replication paused before a forced failover runs again to drain.
        if (row.desired !== "running") {
          await deps.replications.setDesired(row.id, "running", "Initializing", { fromCheckpoint: "auto" }, true);
          await deps.orchestrator().signal(row.id);
        }
        const applied = await deps.orchestrator().drain(row, finalLsn, { timeoutMs: deps.drainTimeoutMs ?? 60_000, signal: ctx.signal });
        await save(ctx, { drained: applied.toString() });
        s = stateOf(ctx);
      }
      await pause(deps, "drained", ctx);

      // 3. The replication stops; its slot and publication go.
      await stop(deps, ctx, row.id, true);
      await pause(deps, "stopped", ctx);
      await ctx.report({
        message:
          `fenced ${s.fence!.tables.length} tables (${s.fence!.tables.join(", ")}) at LSN ${formatLsn(finalLsn)}; ` +
          `the replica applied through ${formatLsn(BigInt(s.drained!))}; the replication stopped, its slot and publication dropped; ` +
          "the old primary stays fenced",
        final_lsn: formatLsn(finalLsn),
        blocking_since: s.fence!.blockingSince,
      });
    },

    async rollback(ctx: FailoverContext) {
      const s = stateOf(ctx);
      const row = await replicationOf(deps, s.replicationId);
      if (s.fence || s.fencing) {
        const { source } = await databasesOf(deps, row);
        // The tables as named in the schema (the fence's own list is schema-qualified).
        await unfence(source, s.tables ?? (await tenantTables(source, row.config.tableFilter)));
      }
      if (s.routingBlocked) {
        const [routing, failover] = await Promise.all([deps.routing.get(s.tenantId), deps.failovers.get(ctx.jobId)]);
        if (routing?.writesBlocked && failover?.oldPrimary && samePrimary(routing.primary, failover.oldPrimary)) {
          await deps.routing.setWritesBlocked(s.tenantId, routing.version, false, ctx.jobId, { jobId: ctx.jobId, ...ctx.lease });
        }
      }
      if (s.stopRequested) await restart(deps, s, row.id);
    },
  };
}

// The source is away: the replication stops where the replica is, and the failover says what may be lost.
async function stopAtCheckpoint(deps: FailoverDeps, ctx: FailoverContext, erroredSince: string | undefined, target: TenantDatabase): Promise<void> {
  const s = stateOf(ctx);
  if (!s.lossWindow) {
    const client = await connect(target.connection);
    let checkpoint: Awaited<ReturnType<typeof readCheckpoint>>;
    try {
      checkpoint = await readCheckpoint(client, s.replicationId);
    } finally {
      await client.end().catch(() => undefined);
    }
    if (!checkpoint || checkpoint.phase !== "streaming") throw new Error("the replica has not finished its initial sync: there is nothing whole to promote");
    await save(ctx, {
      lossWindow: {
        lsn: checkpoint.lsn.toString(),
        timestamp: checkpoint.updatedAt.toISOString(),
        transactionId: checkpoint.xid ?? 0,
        // Since its replication failed on the source, or else since this failover found it away.
        sourceUnreachableSince: erroredSince ?? new Date().toISOString(),
      },
    });
  }
  // Its owner halts the pipeline; the slot cannot be dropped on a source that does not answer.
  await stop(deps, ctx, s.replicationId, false);
  const w = stateOf(ctx).lossWindow!;
  await pause(deps, "stopped", ctx);
  await ctx.report({
    message:
      `the source is unreachable: the replication stopped at the last checkpoint the replica applied, LSN ${formatLsn(BigInt(w.lsn))} (${w.timestamp}); ` +
      `what the source committed after it may be lost (source unreachable since ${w.sourceUnreachableSince}). ` +
      "The old primary was not fenced, and its slot and publication stay: delete the replication once it is back to drop them",
  });
}

// Stored as stopped, then its slot and publication dropped wherever it ran (`drop`), or only its pipeline halted.
async function stop(deps: FailoverDeps, ctx: FailoverContext, id: string, drop: boolean): Promise<void> {
  if (!stateOf(ctx).stopRequested) await save(ctx, { stopRequested: true });
  const row = await deps.replications.setDesired(id, "stopped", "Stopped");
  if (!row) throw new Error(`replication ${id} no longer exists`);
  if (drop) {
    const outcome = await deps.orchestrator().end(row);
    if (outcome !== "ended") throw new Error(`the replication could not be stopped: ${outcome === "busy" ? "the server running it did not let it go in time" : outcome}`);
  } else {
    await deps.orchestrator().signal(id);
  }
  await save(ctx, { stopped: true });
}

// Back as it was before the failover (a start copies everything again when its slot was dropped).
async function restart(deps: FailoverDeps, s: FailoverState, id: string): Promise<void> {
  const desired = s.priorDesired === "paused" ? "paused" : "running";
  if (desired === "running") await deps.replications.setDesired(id, "running", "Initializing", { fromCheckpoint: "auto" }, true);
  else await deps.replications.setDesired(id, "paused", "Paused");
  await deps.orchestrator().signal(id);
}
