// The catch-up before a fence, shared by failover (StopReplication) and
// migration (Cutover): the replication drained to a mark written in the
// source's WAL (the engine's markPosition, applied at once like a fence),
// again until a round is short — while the tenant still writes. The drain
// inside the window, after the fence, is then left only the writes of its
// last moments instead of whatever lag the replication carried (a migration's
// catch-up phase ends at a lag under cdc_lag_threshold_seconds; a failover
// accepts one up to max_lag_seconds).
import { markPosition, type TenantDatabase } from "@heliosdb/replication-engine";
import type { Orchestrator } from "../../orchestrator/orchestrator";
import type { ReplicationRow } from "../../store/replications";

// A round this short leaves the fence's drain little to wait for.
const CAUGHT_UP_MS = 20;
const MAX_ROUNDS = 3;

/** Drains `row` to fresh marks on `source` until a round takes under 20 ms (three rounds at most). */
export async function catchUp(orchestrator: Orchestrator, row: ReplicationRow, source: TenantDatabase, options: { timeoutMs: number; signal: AbortSignal }): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const started = Date.now();
    await orchestrator.drain(row, await markPosition(source), options);
    if (Date.now() - started < CAUGHT_UP_MS) return;
  }
}
