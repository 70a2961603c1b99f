// Metric series and aggregates from the samples: samples are rolled up into
// 1m, 5m, 1h and 1d buckets (mean and largest sample of each figure, the
// 99th percentile of lag) once a bucket is complete, and each kind is kept
// for its retention. A series reads the rolled buckets and, for the buckets
// not rolled yet, the samples themselves, by the same SQL: every point is the
// same function of the samples in its bucket, whichever table held them.
import type pg from "pg";

/** Bucket widths in seconds, by the resolution names of spec §2.5.1. */
export const RESOLUTIONS = { "1m": 60, "5m": 300, "1h": 3600, "1d": 86_400 } as const;
export type Resolution = keyof typeof RESOLUTIONS;

/** Seconds each kind of row is kept: raw samples and each bucket width. */
export type MetricRetention = Record<"raw" | Resolution, number>;

const DAY = 86_400;
export const DEFAULT_RETENTION: MetricRetention = { raw: 2 * DAY, "1m": 14 * DAY, "5m": 35 * DAY, "1h": 400 * DAY, "1d": 1830 * DAY };

/** One bucket of a replication's series: mean and largest sample, and the 99th percentile of lag. */
export interface Bucket {
  bucket: Date;
  samples: number;
  lagSecondsAvg: number;
  lagSecondsMax: number;
  lagSecondsP99: number;
  lagBytesAvg: number;
  lagBytesMax: number;
  lagBytesP99: number;
  rowsPerSecondAvg: number;
  rowsPerSecondMax: number;
  bytesPerSecondAvg: number;
  bytesPerSecondMax: number;
  compressionRatioAvg: number;
  compressionRatioMax: number;
  transactionsPerSecondAvg: number | null;
  transactionsPerSecondMax: number | null;
  cpuUsagePercentAvg: number | null;
  cpuUsagePercentMax: number | null;
  memoryUsageBytesAvg: number | null;
  memoryUsageBytesMax: number | null;
}

/** The aggregates of one group over a time range, from its samples. */
export interface GroupAggregate {
  /** The group's value of the dimension ('' without one): a tenant id, a QoS tier as stored (PREMIUM), a region. */
  key: string;
  avgLagSeconds: number;
  p99LagSeconds: number;
  avgCompressionRatio: number;
  /** Replications with a sample in the range. */
  total: number;
  /** Of those, the ones whose latest sample in the range was Healthy. */
  healthy: number;
}

export type GroupBy = "tenant_id" | "qos_tier" | "region";

// The dimension's expression over replications r: chosen from this list, never from the request's text.
const GROUP_KEYS: Record<GroupBy | "none", string> = {
  tenant_id: "r.tenant_id",
  qos_tier: "r.config->>'qosTier'",
  region: "r.target->>'region'",
  none: "''::text",
};

const BIN = (width: string, at: string) => `date_bin(make_interval(secs => ${width}), ${at}, timestamptz '1970-01-01 00:00:00+00')`;

// A bucket's figures from its samples, in metric_rollups' column order (after bucket).
const AGGREGATES = `count(*)::int, avg(lag_seconds), max(lag_seconds), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_seconds),
  avg(lag_bytes)::float8, max(lag_bytes)::float8, percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_bytes::float8),
  avg(rows_per_second), max(rows_per_second), avg(bytes_per_second), max(bytes_per_second),
  avg(compression_ratio), max(compression_ratio), avg(transactions_per_second), max(transactions_per_second),
  avg(cpu_usage_percent), max(cpu_usage_percent), avg(memory_usage_bytes)::float8, max(memory_usage_bytes)::float8`;

const FIGURES = [
  "samples", "lag_seconds_avg", "lag_seconds_max", "lag_seconds_p99", "lag_bytes_avg", "lag_bytes_max", "lag_bytes_p99",
  "rows_per_second_avg", "rows_per_second_max", "bytes_per_second_avg", "bytes_per_second_max",
  "compression_ratio_avg", "compression_ratio_max", "transactions_per_second_avg", "transactions_per_second_max",
  "cpu_usage_percent_avg", "cpu_usage_percent_max", "memory_usage_bytes_avg", "memory_usage_bytes_max",
];

// One advisory lock for the whole maintenance pass: one server of the control plane does it at a time.
export const MAINTENANCE_LOCK = 0x4d4554524943; // "METRIC"

function bucketOf(r: Record<string, unknown>): Bucket {
  const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const out: Record<string, unknown> = { bucket: r.bucket };
  for (const name of FIGURES) out[camel(name)] = r[name];
  return out as unknown as Bucket;
}

export class MetricRollupStore {
  constructor(private readonly db: pg.Pool) {}

  /** Rolls the samples in [from, to) into buckets of `width` seconds (replacing what was rolled before). */
  async rollUp(width: number, from: Date, to: Date, db: pg.Pool | pg.PoolClient = this.db): Promise<number> {
    const { rowCount } = await db.query(
      `INSERT INTO metric_rollups (replication_id, width_seconds, bucket, ${FIGURES.join(", ")})
       SELECT replication_id, $1::int, ${BIN("$1::int", "at")}, ${AGGREGATES}
         FROM metric_samples WHERE at >= $2::timestamptz AND at < $3::timestamptz
        GROUP BY replication_id, 3
       ON CONFLICT (replication_id, width_seconds, bucket) DO UPDATE SET
         (${FIGURES.join(", ")}) = (${FIGURES.map((f) => `EXCLUDED.${f}`).join(", ")})`,
      [width, from, to],
    );
    return rowCount ?? 0;
  }

  /**
   * One pass of upkeep, by one server at a time (others skip it): rolls up
   * the buckets completed since the last pass (`graceSeconds` after their
   * end, for samples still being written), then deletes what is past its
   * retention. A raw sample is deleted only once every width has rolled it.
   * Returns undefined when another server holds the pass.
   */
  async maintain(retention: MetricRetention, graceSeconds = 5): Promise<{ rolled: number; pruned: number } | undefined> {
    const client = await this.db.connect();
    try {
      await client.query("BEGIN");
      const { rows: locked } = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS ok", [MAINTENANCE_LOCK]);
      if (!locked[0]!.ok) {
        await client.query("ROLLBACK");
        return undefined;
      }
      let rolled = 0;
      for (const width of Object.values(RESOLUTIONS)) {
        const { rows } = await client.query<{ from: Date | null; to: Date }>(
          `SELECT coalesce((SELECT rolled_until FROM metric_rollup_progress WHERE width_seconds = $1::int),
                           (SELECT ${BIN("$1::int", "min(at)")} FROM metric_samples)) AS from,
                  ${BIN("$1::int", "now() - make_interval(secs => $2::float8)")} AS to`,
          [width, graceSeconds],
        );
        const { from, to } = rows[0]!;
        if (!from) continue;
        if (from < to) rolled += await this.rollUp(width, from, to, client);
        await client.query(
          `INSERT INTO metric_rollup_progress (width_seconds, rolled_until) VALUES ($1, greatest($2::timestamptz, $3::timestamptz))
           ON CONFLICT (width_seconds) DO UPDATE SET rolled_until = EXCLUDED.rolled_until`,
          [width, from, to],
        );
      }
      let pruned = 0;
      const raw = await client.query(
        `DELETE FROM metric_samples
          WHERE at < least(now() - make_interval(secs => $1::float8), (SELECT min(rolled_until) FROM metric_rollup_progress))`,
        [retention.raw],
      );
      pruned += raw.rowCount ?? 0;
      for (const [name, width] of Object.entries(RESOLUTIONS)) {
        const old = await client.query("DELETE FROM metric_rollups WHERE width_seconds = $1::int AND bucket < now() - make_interval(secs => $2::float8)", [
          width,
          retention[name as Resolution],
        ]);
        pruned += old.rowCount ?? 0;
      }
      await client.query("COMMIT");
      return { rolled, pruned };
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /** A replication's buckets of `width` seconds in [from, to) (both on bucket boundaries), oldest first. */
  async series(replicationId: string, width: number, from: Date, to: Date): Promise<Bucket[]> {
    const { rows } = await this.db.query(
      `WITH until AS (SELECT coalesce((SELECT rolled_until FROM metric_rollup_progress WHERE width_seconds = $2::int), '-infinity') AS t)
       SELECT bucket, ${FIGURES.join(", ")} FROM metric_rollups, until
        WHERE replication_id = $1::uuid AND width_seconds = $2::int AND bucket >= $3::timestamptz AND bucket < least($4::timestamptz, until.t)
       UNION ALL
       SELECT ${BIN("$2::int", "at")} AS bucket, ${AGGREGATES} FROM metric_samples, until
        WHERE replication_id = $1::uuid AND at >= greatest($3::timestamptz, until.t) AND at < $4::timestamptz
        GROUP BY 1
       ORDER BY bucket`,
      [replicationId, width, from, to],
    );
    return rows.map(bucketOf);
  }

  /**
   * Aggregates over the samples in [from, to), grouped by `groupBy` (one
   * group without it), of one tenant's replications when `tenantId` is set.
   * Groups by the replication's current tier and target region.
   */
  async aggregate(groupBy: GroupBy | undefined, from: Date, to: Date, tenantId?: string): Promise<GroupAggregate[]> {
    const key = GROUP_KEYS[groupBy ?? "none"];
    const { rows } = await this.db.query(
      `WITH s AS (
         SELECT s.replication_id, s.at, s.lag_seconds, s.compression_ratio, s.health, coalesce(${key}, '') AS key
           FROM metric_samples s JOIN replications r ON r.id = s.replication_id
          WHERE s.at >= $1::timestamptz AND s.at < $2::timestamptz AND ($3::text IS NULL OR r.tenant_id = $3)
       ), latest AS (
         SELECT DISTINCT ON (replication_id) replication_id, key, health FROM s ORDER BY replication_id, at DESC
       )
       SELECT g.key, g.avg_lag, g.p99_lag, g.avg_compression, t.total, t.healthy
         FROM (SELECT key, avg(lag_seconds) AS avg_lag, percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_seconds) AS p99_lag,
                      avg(compression_ratio) AS avg_compression
                 FROM s GROUP BY key) g
         JOIN (SELECT key, count(*)::int AS total, count(*) FILTER (WHERE health = 'Healthy')::int AS healthy FROM latest GROUP BY key) t USING (key)
        ORDER BY g.key`,
      [from, to, tenantId ?? null],
    );
    return rows.map((r) => ({
      key: r.key as string,
      avgLagSeconds: r.avg_lag as number,
      p99LagSeconds: r.p99_lag as number,
      avgCompressionRatio: r.avg_compression as number,
      total: r.total as number,
      healthy: r.healthy as number,
    }));
  }
}
