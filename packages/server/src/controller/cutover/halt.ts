// The replication asked to stop without waiting for it — shared by failover
// (StopReplication) and, once it points here, migration. Once it drained to
// the fence's final LSN nothing more can reach the target from the fenced
// source, so the new primary can be promoted while the pipeline halts; the
// slot and publication are dropped after the switch (stopCarrier with
// `drop`), since ending a replication waits for the server running it to let
// it go, which is time the tenant's writes would wait.
import type { CarrierDeps } from "./drain";
import { cutoverState, saveCutover, type CutoverContext } from "./state";

/** Stored as stopped (a server that takes it over does not start it again) and its owner told to halt the pipeline. */
export async function haltCarrier(ctx: CutoverContext, deps: CarrierDeps, id: string, log?: (message: string) => void): Promise<void> {
  const s = cutoverState(ctx);
  if (s.halted || s.stopped) return;
  if (!s.stopRequested) await saveCutover(ctx, { stopRequested: true });
  const row = await deps.replications.setDesired(id, "stopped", "Stopped");
  if (!row) throw new Error(`replication ${id} no longer exists`);
  await saveCutover(ctx, { halted: true });
  // Told, not waited for: signal() also halts the pipeline here when this server runs it, time the tenant's writes
  // would wait. The stored desired state is what counts (its owner halts it at its next pass if the signal is lost),
  // and nothing more can reach the target once the drain passed the fence.
  deps.orchestrator().signal(id).catch((e) => log?.(`replication ${id}: could not signal its stop (its owner stops it at its next pass): ${(e as Error).message}`));
}
