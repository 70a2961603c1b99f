// What a QoS tier changes in the pipeline: how many rows a target
// transaction gathers, how long a change may wait for company, and the
// default priority when workers are scarce.
import { QoSTier } from "@heliosdb/replication-proto";

export interface QosSettings {
  /** Rows after which a batch is applied, even inside a source transaction. */
  batchRows: number;
  /** Milliseconds a committed change may wait before its batch is applied. */
  flushIntervalMs: number;
  /**
   * Milliseconds the source stream pauses after a small read, so small
   * transactions are read many at a time (a tenth of the flush interval or
   * less; none when the source waits for every commit).
   */
  coalesceMs: number;
  /**
   * The least milliseconds between two reports of applied positions to the
   * source (none for Synchronous, whose source commits wait for them).
   * Reporting later delays only when the source may recycle WAL.
   */
  ackIntervalMs: number;
}

const SETTINGS: Record<QoSTier, QosSettings> = {
  // Every commit applied at once: the source waits for it (synchronous replication).
  [QoSTier.SYNCHRONOUS]: { batchRows: 1_000, flushIntervalMs: 0, coalesceMs: 0, ackIntervalMs: 0 },
  [QoSTier.PREMIUM]: { batchRows: 5_000, flushIntervalMs: 10, coalesceMs: 1, ackIntervalMs: 100 },
  [QoSTier.STANDARD]: { batchRows: 10_000, flushIntervalMs: 100, coalesceMs: 2, ackIntervalMs: 200 },
  [QoSTier.BEST_EFFORT]: { batchRows: 20_000, flushIntervalMs: 1_000, coalesceMs: 5, ackIntervalMs: 1_000 },
};

export function qosSettings(tier: QoSTier): QosSettings {
  return SETTINGS[tier] ?? SETTINGS[QoSTier.STANDARD];
}
