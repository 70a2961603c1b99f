// The middle of a cutover, shared by failover and migration: the replication
// drained to the fence's final LSN (every write acknowledged before the fence
// is then on the new primary), then stopped with its slot and publication
// dropped on the old primary (or, its source away, only halted). Each part
// saves what it did, so a run after an interruption goes on from there.
import type { Orchestrator } from "../../orchestrator/orchestrator";
import type { ReplicationRow, ReplicationStore } from "../../store/replications";
import { cutoverState, saveCutover, type CutoverContext } from "./state";

export interface CarrierDeps {
  replications: ReplicationStore;
  orchestrator: () => Orchestrator;
}

/** Waits until the replication's target applied `finalLsn` (once); the applied position. */
export async function drainCarrier(ctx: CutoverContext, deps: CarrierDeps, row: ReplicationRow, finalLsn: bigint, timeoutMs: number): Promise<bigint> {
  const s = cutoverState(ctx);
  if (s.drained) return BigInt(s.drained);
  // A replication paused meanwhile runs again to drain.
  if (row.desired !== "running") {
    await deps.replications.setDesired(row.id, "running", "Initializing", { fromCheckpoint: "auto" }, true);
    await deps.orchestrator().signal(row.id);
  }
  const applied = await deps.orchestrator().drain(row, finalLsn, { timeoutMs, signal: ctx.signal });
  await saveCutover(ctx, { drained: applied.toString() });
  return applied;
}

/** Stored as stopped, then its slot and publication dropped wherever it ran (`drop`), or only its pipeline halted. */
export async function stopCarrier(ctx: CutoverContext, deps: CarrierDeps, id: string, drop: boolean): Promise<void> {
  if (cutoverState(ctx).stopped) return;
  if (!cutoverState(ctx).stopRequested) await saveCutover(ctx, { stopRequested: true });
  const row = await deps.replications.setDesired(id, "stopped", "Stopped");
  if (!row) throw new Error(`replication ${id} no longer exists`);
  if (drop) {
    const outcome = await deps.orchestrator().end(row);
    if (outcome !== "ended") throw new Error(`the replication could not be stopped: ${outcome === "busy" ? "the server running it did not let it go in time" : outcome}`);
  } else {
    await deps.orchestrator().signal(id);
  }
  await saveCutover(ctx, { stopped: true });
}
