// What a QoS tier changes in the pipeline: how many rows a target
// transaction gathers, how long a change may wait for company, and the
// default priority when workers are scarce.
import { QoSTier } from "@heliosdb/replication-proto";

export interface QosSettings {
  /** Rows after which a batch is applied, even inside a source transaction. */
  batchRows: number;
  /** Milliseconds a committed change may wait before its batch is applied. */
  flushIntervalMs: number;
}

const SETTINGS: Record<QoSTier, QosSettings> = {
  // Every commit applied at once: the source waits for it (synchronous replication).
  [QoSTier.SYNCHRONOUS]: { batchRows: 1_000, flushIntervalMs: 0 },
  [QoSTier.PREMIUM]: { batchRows: 5_000, flushIntervalMs: 10 },
  [QoSTier.STANDARD]: { batchRows: 10_000, flushIntervalMs: 100 },
  [QoSTier.BEST_EFFORT]: { batchRows: 20_000, flushIntervalMs: 1_000 },
};

export function qosSettings(tier: QoSTier): QosSettings {
  return SETTINGS[tier] ?? SETTINGS[QoSTier.STANDARD];
}
