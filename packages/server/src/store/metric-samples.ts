// Metric samples: a replication's figures, at most one per second, for the
// metrics series. A second sample in the same second is dropped.
import type pg from "pg";

export interface MetricSample {
  lagSeconds: number;
  lagBytes: number;
  rowsPerSecond: number;
  bytesPerSecond: number;
  compressionRatio: number;
}

export class MetricSampleStore {
  constructor(private readonly db: pg.Pool) {}

  async record(replicationId: string, s: MetricSample): Promise<void> {
    await this.db.query(
      `INSERT INTO metric_samples (replication_id, at, lag_seconds, lag_bytes, rows_per_second, bytes_per_second, compression_ratio)
       VALUES ($1, date_trunc('second', now()), $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [replicationId, s.lagSeconds, s.lagBytes, s.rowsPerSecond, s.bytesPerSecond, s.compressionRatio],
    );
  }
}
