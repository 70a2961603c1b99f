// Metric samples: a replication's observed figures, recorded by its owner at
// a fixed interval (orchestrator/metrics-sampler.ts), for the metrics series
// and aggregates. Rolled up and pruned by store/metric-rollups.ts.
import type pg from "pg";

export interface MetricSample {
  lagSeconds: number;
  lagBytes: number;
  rowsPerSecond: number;
  bytesPerSecond: number;
  transactionsPerSecond?: number;
  compressionRatio: number;
  /** Absent: not measured for this pipeline (never estimated from something else). */
  cpuUsagePercent?: number;
  memoryUsageBytes?: number;
  /** Healthy, Degraded or Unhealthy, as the pipeline reported it with these figures. */
  health?: string;
}

/** A sample as stored, with its time. */
export interface TimedSample extends MetricSample {
  replicationId: string;
  at: Date;
}

const COLUMNS = `replication_id, at, lag_seconds, lag_bytes, rows_per_second, bytes_per_second, transactions_per_second,
                 compression_ratio, cpu_usage_percent, memory_usage_bytes, health`;

// The arrays of one multi-row INSERT (unnest), in COLUMNS' order after `at`.
function arrays(samples: MetricSample[]): unknown[] {
  return [
    samples.map((s) => s.lagSeconds),
    samples.map((s) => Math.round(s.lagBytes)),
    samples.map((s) => s.rowsPerSecond),
    samples.map((s) => s.bytesPerSecond),
    samples.map((s) => s.transactionsPerSecond ?? null),
    samples.map((s) => s.compressionRatio),
    samples.map((s) => s.cpuUsagePercent ?? null),
    samples.map((s) => (s.memoryUsageBytes === undefined ? null : Math.round(s.memoryUsageBytes))),
    samples.map((s) => s.health ?? null),
  ];
}

const TYPES = "$3::float8[], $4::int8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::int8[], $11::text[]";

export class MetricSampleStore {
  constructor(private readonly db: pg.Pool) {}

  /**
   * Records one sample per replication, stamped with the control plane's
   * clock, for those `owner` holds a live lease on only: a node that lost a
   * replication records nothing for it, so one replication has one sampler.
   */
  async record(owner: string, samples: (MetricSample & { replicationId: string })[]): Promise<number> {
    if (samples.length === 0) return 0;
    const { rowCount } = await this.db.query(
      `INSERT INTO metric_samples (${COLUMNS})
       SELECT s.id, now(), s.lag_seconds, s.lag_bytes, s.rows_per_second, s.bytes_per_second, s.transactions_per_second,
              s.compression_ratio, s.cpu_usage_percent, s.memory_usage_bytes, s.health
         FROM unnest($1::uuid[], ${TYPES}) AS s(id, lag_seconds, lag_bytes, rows_per_second, bytes_per_second, transactions_per_second,
                                                 compression_ratio, cpu_usage_percent, memory_usage_bytes, health)
        WHERE EXISTS (SELECT 1 FROM leases l WHERE l.replication_id = s.id AND l.owner = $2 AND l.expires_at > now())
       ON CONFLICT DO NOTHING`,
      [samples.map((s) => s.replicationId), owner, ...arrays(samples)],
    );
    return rowCount ?? 0;
  }

  /** Stores samples with the times they carry (imports, tests with known values). */
  async insert(samples: TimedSample[]): Promise<void> {
    if (samples.length === 0) return;
    await this.db.query(
      `INSERT INTO metric_samples (${COLUMNS})
       SELECT * FROM unnest($1::uuid[], $2::timestamptz[], ${TYPES}) ON CONFLICT DO NOTHING`,
      [samples.map((s) => s.replicationId), samples.map((s) => s.at), ...arrays(samples)],
    );
  }
}
