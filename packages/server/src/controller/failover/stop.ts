// StopReplication (spec §2.3.1). With the source answering: catch up first
// (cutover/catch-up.ts: drained to a WAL mark while the tenant still
// writes, so the drain after the fence is short), then fence the
// replication's tables there (from then on the tenant's writers fail with
// 25006 and follow routing), mark its routing writes_blocked and, side by
// side with that, drain the replication to the fence's final LSN
// (every write acknowledged before the fence is then on the replica), and
// ask the replication to stop (stored as stopped, its owner told: its
// pipeline halts). Its slot and publication are dropped by UpdateRouting
// after the switch: ending a replication waits for the server running it to
// let it go, time the tenant's writes would wait, and after the drain nothing
// more can reach the replica from the fenced source. Nothing
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
import { connect, formatLsn, readCheckpoint, tenantTables, type TenantDatabase } from "@heliosdb/replication-engine";
import type { JobStep } from "../../orchestrator/job-kind";
import { catchUp } from "../cutover/catch-up";
import { drainCarrier, stopCarrier } from "../cutover/drain";
import { haltCarrier } from "../cutover/halt";
import { sideBySide } from "../cutover/side-by-side";
import { announceNext, blockRouting, contended, fenceSource, liftFence } from "../cutover/fence";
import { timed } from "../cutover/timed";
import { type FailoverContext, type FailoverDeps, type FailoverState, databasesOf, lentDatabasesOf, pause, replicationOf, save, stateOf, unreachable } from "./deps";

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
      if (s.stopped || s.halted) return;
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

      // 1. The fence, on this failover's own session to the source (opened now, before it: see lentDatabasesOf).
      const { source: lent } = await lentDatabasesOf(deps, ctx, row);
      const tables = s.tables ?? (await tenantTables(lent, row.config.tableFilter));
      if (!s.tables) await save(ctx, { tables });
      // Read before the fence: from it on, each round trip is time the tenant's writes wait.
      const failover = s.updateRouting ? await deps.failovers.get(ctx.jobId) : undefined;
      const oldPrimary = failover?.oldPrimary ?? undefined;
      // The clients that follow routing may connect to the new primary from now on (routing's next_primary).
      if (oldPrimary && failover?.newPrimary && !s.fence) await announceNext(ctx, deps.routing, oldPrimary, failover.newPrimary, "failover");
      // Caught up while the tenant still writes (a replication running here or elsewhere), so the drain after the fence is short.
      if (!s.fence && !s.fencing && row.desired === "running") await catchUp(deps.orchestrator(), row, lent, { timeoutMs: deps.drainTimeoutMs ?? 60_000, signal: ctx.signal });
      const took: Record<string, number> = {};
      const fenced = await timed(took, "fence_ms", () => fenceSource(ctx, lent, tables, deps.fenceLockTimeoutMs ?? 5_000));

      // 2. Side by side, since each needs only the fence: clients that follow routing hear that writes are blocked (a new
      // version, until the switch), and the drain: the replica applies everything up to the fence.
      const finalLsn = BigInt(fenced.finalLsn);
      const [drained] = await sideBySide([
        timed(took, "drain_ms", () => drainCarrier(ctx, deps, row, finalLsn, deps.drainTimeoutMs ?? 60_000)),
        (oldPrimary ? timed(took, "block_ms", () => blockRouting(ctx, deps.routing, oldPrimary, "failover")) : Promise.resolve()).then(() => pause(deps, "fenced", ctx)),
      ]);
      await pause(deps, "drained", ctx);

      // 3. The replication asked to stop; its slot and publication go after the switch (UpdateRouting).
      await timed(took, "halt_ms", () => haltCarrier(ctx, deps, row.id, deps.log));
      await pause(deps, "stopped", ctx);
      await ctx.report({
        message:
          `fenced ${fenced.tables.length} tables (${fenced.tables.join(", ")}) at LSN ${formatLsn(finalLsn)}${contended(fenced)}; ` +
          `the replica applied through ${formatLsn(drained)}; the replication asked to stop (its slot and publication are dropped after the switch); ` +
          "the old primary stays fenced",
        final_lsn: formatLsn(finalLsn),
        blocking_since: fenced.blockingSince,
        ...took,
      });
    },

    async rollback(ctx: FailoverContext) {
      const s = stateOf(ctx);
      const row = await replicationOf(deps, s.replicationId);
      const failover = await deps.failovers.get(ctx.jobId);
      if (failover?.oldPrimary) {
        await liftFence(ctx, deps.routing, failover.oldPrimary, "failover", async () => {
          const { source } = await databasesOf(deps, row);
          return { db: source, tables: s.tables ?? (await tenantTables(source, row.config.tableFilter)) };
        });
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
  await stopCarrier(ctx, deps, s.replicationId, false);
  const w = stateOf(ctx).lossWindow!;
  await pause(deps, "stopped", ctx);
  await ctx.report({
    message:
      `the source is unreachable: the replication stopped at the last checkpoint the replica applied, LSN ${formatLsn(BigInt(w.lsn))} (${w.timestamp}); ` +
      `what the source committed after it may be lost (source unreachable since ${w.sourceUnreachableSince}). ` +
      "The old primary was not fenced, and its slot and publication stay: delete the replication once it is back to drop them",
  });
}

// Back as it was before the failover (a start copies everything again when its slot was dropped).
async function restart(deps: FailoverDeps, s: FailoverState, id: string): Promise<void> {
  const desired = s.priorDesired === "paused" ? "paused" : "running";
  if (desired === "running") await deps.replications.setDesired(id, "running", "Initializing", { fromCheckpoint: "auto" }, true);
  else await deps.replications.setDesired(id, "paused", "Paused");
  await deps.orchestrator().signal(id);
}
