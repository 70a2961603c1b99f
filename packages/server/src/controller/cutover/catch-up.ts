// The catch-up before a fence, shared by failover (StopReplication) and
// migration (Cutover): the replication drained to a mark written in the
// source's WAL (the engine's markPosition, applied at once like a fence),
// again while the rounds get shorter, until one is short — while the tenant
// still writes. The drain
// inside the window, after the fence, is then left only the writes of its
// last moments instead of whatever lag the replication carried (a migration's
// catch-up phase ends at a lag under cdc_lag_threshold_seconds; a failover
// accepts one up to max_lag_seconds).
import { markPosition, type TenantDatabase } from "@heliosdb/replication-engine";
import type { Orchestrator } from "../../orchestrator/orchestrator";
import type { ReplicationRow } from "../../store/replications";

// A round this short leaves the fence's drain little to wait for.
const CAUGHT_UP_MS = 20;
// A bound on rounds that still get shorter (each is bounded by the timeout too).
const MAX_ROUNDS = 10;

/**
 * Drains `row` to fresh marks on `source` while each round is shorter than
 * the one before, until one takes under 20 ms. A replication that streams a
 * backlog (one that has just copied, while the tenant wrote) takes a few
 * rounds, each catching up with the writes made during the last; a round no
 * shorter than the one before means the replication applies as fast as the
 * tenant writes, and more rounds would not shorten the drain after the fence.
 */
export async function catchUp(orchestrator: Orchestrator, row: ReplicationRow, source: TenantDatabase, options: { timeoutMs: number; signal: AbortSignal }): Promise<void> {
  let previous = Infinity;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const started = Date.now();
    await orchestrator.drain(row, await markPosition(source), options);
    const took = Date.now() - started;
    if (took < CAUGHT_UP_MS || took >= previous) return;
    previous = took;
  }
}
