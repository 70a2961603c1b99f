// Rollups, retention, series and aggregates on a real control plane, from
// samples with known values inserted through the store.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ConnectionInfoSchema, QoSTier, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { DEFAULT_RETENTION, MAINTENANCE_LOCK, MetricRollupStore } from "./metric-rollups";
import { MetricSampleStore, type TimedSample } from "./metric-samples";
import { ReplicationStore } from "./replications";

let cp: ControlPlane;
let rollups: MetricRollupStore;
let samples: MetricSampleStore;

beforeAll(async () => {
  cp = await startControlPlane();
  rollups = new MetricRollupStore(cp.pool);
  samples = new MetricSampleStore(cp.pool);
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

/** The 99th percentile with linear interpolation between the closest ranks, as percentile_cont computes it. */
function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = 0.99 * (sorted.length - 1);
  const low = Math.floor(rank);
  return sorted[low]! + (rank - low) * ((sorted[Math.ceil(rank)] ?? sorted[low]!) - sorted[low]!);
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

function sample(replicationId: string, at: Date, lag: number, extra: Partial<TimedSample> = {}): TimedSample {
  return {
    replicationId,
    at,
    lagSeconds: lag,
    lagBytes: lag * 1000,
    rowsPerSecond: lag * 10,
    bytesPerSecond: lag * 100,
    transactionsPerSecond: lag,
    compressionRatio: 2 + lag / 100,
    health: "Healthy",
    ...extra,
  };
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
// An hour boundary well in the past, inside the raw retention.
const T0 = new Date(Math.floor((Date.now() - 5 * HOUR) / HOUR) * HOUR);
const at = (ms: number) => new Date(T0.getTime() + ms);

describe("buckets from known samples", () => {
  const id = randomUUID();
  // Minute 0: lag 1..12 (every 5 s). Minute 1: lag 100 and 200. Minute 7: lag 7.
  const minute0 = Array.from({ length: 12 }, (_, i) => i + 1);

  beforeAll(async () => {
    await samples.insert([
      ...minute0.map((lag, i) => sample(id, at(i * 5000), lag)),
      sample(id, at(MINUTE), 100),
      sample(id, at(MINUTE + 30_000), 200, { health: "Degraded" }),
      sample(id, at(7 * MINUTE), 7, { cpuUsagePercent: 50, memoryUsageBytes: 1000 }),
    ]);
  });

  test("1m buckets: the mean and largest sample of each figure, the 99th percentile of lag (percentile_cont)", async () => {
    expect(await rollups.rollUp(60, T0, at(HOUR))).toBe(3);
    const { rows } = await cp.pool.query("SELECT * FROM metric_rollups WHERE replication_id = $1 AND width_seconds = 60 ORDER BY bucket", [id]);
    expect(rows.map((r) => [r.bucket, r.samples])).toEqual([[T0, 12], [at(MINUTE), 2], [at(7 * MINUTE), 1]]);
    const [first, second, seventh] = rows;
    expect(first.lag_seconds_avg).toBeCloseTo(6.5, 10);
    expect(first.lag_seconds_max).toBe(12);
    expect(first.lag_seconds_p99).toBeCloseTo(p99(minute0), 10);
    expect(first.lag_seconds_p99).toBeCloseTo(11.89, 10);
    expect(first.lag_bytes_p99).toBeCloseTo(p99(minute0.map((l) => l * 1000)), 6);
    expect(first.rows_per_second_avg).toBeCloseTo(65, 10);
    expect(first.rows_per_second_max).toBe(120);
    expect(first.bytes_per_second_avg).toBeCloseTo(650, 10);
    expect(first.transactions_per_second_max).toBe(12);
    expect(first.compression_ratio_avg).toBeCloseTo(2.065, 10);
    // Not measured: no number.
    expect(first.cpu_usage_percent_avg).toBeNull();
    expect(second.lag_seconds_avg).toBe(150);
    expect(second.lag_seconds_p99).toBeCloseTo(199, 10);
    expect([seventh.cpu_usage_percent_avg, seventh.memory_usage_bytes_max]).toEqual([50, 1000]);
  });

  test("5m, 1h and 1d buckets from the same samples; rolling again replaces, never adds", async () => {
    for (const width of [300, 3600, 86_400]) await rollups.rollUp(width, new Date(T0.getTime() - DAY), at(DAY));
    await rollups.rollUp(300, T0, at(HOUR));
    const { rows } = await cp.pool.query(
      "SELECT width_seconds, bucket, samples, lag_seconds_avg, lag_seconds_max, lag_seconds_p99 FROM metric_rollups WHERE replication_id = $1 AND width_seconds > 60 ORDER BY width_seconds, bucket",
      [id],
    );
    const all = [...minute0, 100, 200, 7];
    const first5 = [...minute0, 100, 200];
    const day = new Date(Math.floor(T0.getTime() / DAY) * DAY);
    expect(rows.map((r) => [r.width_seconds, r.bucket, r.samples])).toEqual([
      [300, T0, 14],
      [300, at(5 * MINUTE), 1],
      [3600, T0, 15],
      [86_400, day, 15],
    ]);
    expect(rows[0].lag_seconds_avg).toBeCloseTo(mean(first5), 10);
    expect(rows[0].lag_seconds_p99).toBeCloseTo(p99(first5), 10);
    for (const r of rows.slice(2)) {
      expect(r.lag_seconds_avg).toBeCloseTo(mean(all), 10);
      expect(r.lag_seconds_max).toBe(200);
      expect(r.lag_seconds_p99).toBeCloseTo(p99(all), 10);
    }
  });

  test("a series with nothing rolled reads the samples: the same buckets", async () => {
    const series = await rollups.series(id, 60, T0, at(10 * MINUTE));
    expect(series.map((b) => [b.bucket, b.samples, b.lagSecondsMax])).toEqual([[T0, 12, 12], [at(MINUTE), 2, 200], [at(7 * MINUTE), 1, 7]]);
    expect(series[0]!.lagSecondsP99).toBeCloseTo(p99(minute0), 10);
    expect(await rollups.series(id, 60, at(2 * MINUTE), at(7 * MINUTE))).toEqual([]);
  });
});

describe("maintain: rollups of complete buckets, then retention", () => {
  const id = randomUUID();
  const now = Date.now();
  const ago = (ms: number) => new Date(Math.floor((now - ms) / HOUR) * HOUR + 30_000);

  test("rolls every width, deletes raw samples past 48 h and each width's buckets past its retention, keeps the rest", async () => {
    await samples.insert([
      sample(id, ago(2000 * DAY), 1), // past every retention (1d: 1830 days)
      sample(id, ago(500 * DAY), 2), // past 1h (400 days): in 1d only
      sample(id, ago(40 * DAY), 3), // past 5m (35 days)
      sample(id, ago(20 * DAY), 4), // past 1m (14 days)
      sample(id, ago(3 * DAY), 5), // past raw (48 h)
      sample(id, ago(30 * HOUR), 6), // kept everywhere (in a complete day)
    ]);
    const result = await rollups.maintain(DEFAULT_RETENTION);
    expect(result).toBeDefined();
    const kept = async (width: number) =>
      (await cp.pool.query("SELECT lag_seconds_avg AS lag FROM metric_rollups WHERE replication_id = $1 AND width_seconds = $2 ORDER BY bucket", [id, width])).rows.map((r) => r.lag);
    expect(await kept(60)).toEqual([5, 6]);
    expect(await kept(300)).toEqual([4, 5, 6]);
    expect(await kept(3600)).toEqual([3, 4, 5, 6]);
    expect(await kept(86_400)).toEqual([2, 3, 4, 5, 6]);
    const raw = await cp.pool.query("SELECT lag_seconds AS lag FROM metric_samples WHERE replication_id = $1 ORDER BY at", [id]);
    expect(raw.rows.map((r) => r.lag)).toEqual([6]);
    // How far each width got: complete buckets only.
    const progress = await cp.pool.query("SELECT width_seconds, rolled_until <= now() AS complete FROM metric_rollup_progress ORDER BY 1");
    expect(progress.rows).toEqual([60, 300, 3600, 86_400].map((w) => ({ width_seconds: w, complete: true })));
  });

  test("a sample newer than the last rolled bucket is read from the samples, beside the rolled buckets", async () => {
    const fresh = new Date();
    await samples.insert([sample(id, fresh, 9)]);
    const from = new Date(Math.floor((now - 31 * HOUR) / MINUTE) * MINUTE);
    const to = new Date(Math.ceil((fresh.getTime() + 1) / MINUTE) * MINUTE);
    const series = await rollups.series(id, 60, from, to);
    expect(series.map((b) => b.lagSecondsAvg)).toEqual([6, 9]);
  });

  test("one server at a time: while another holds the pass, maintain skips it", async () => {
    const other = await cp.pool.connect();
    try {
      await other.query("SELECT pg_advisory_lock($1)", [MAINTENANCE_LOCK]);
      expect(await rollups.maintain(DEFAULT_RETENTION)).toBeUndefined();
    } finally {
      await other.query("SELECT pg_advisory_unlock($1)", [MAINTENANCE_LOCK]);
      other.release();
    }
    expect(await rollups.maintain(DEFAULT_RETENTION)).toBeDefined();
  });
});

describe("aggregates from known samples", () => {
  const replications = () => new ReplicationStore(cp.pool);
  const ids = { t1Premium: randomUUID(), t1Standard: randomUUID(), t2Premium: randomUUID() };
  const end = new Date();
  const start = new Date(end.getTime() - HOUR);
  const lags = {
    t1Premium: Array.from({ length: 50 }, (_, i) => i / 10),
    t1Standard: [10, 20, 30],
    t2Premium: Array.from({ length: 50 }, (_, i) => 100 + i),
  };

  beforeAll(async () => {
    const setups = [
      [ids.t1Premium, "tenant-1", QoSTier.PREMIUM, "us-east-1"],
      [ids.t1Standard, "tenant-1", QoSTier.STANDARD, "us-west-2"],
      [ids.t2Premium, "tenant-2", QoSTier.PREMIUM, "us-east-1"],
    ] as const;
    for (const [id, tenantId, qosTier, region] of setups) {
      const inserted = await replications().insert({
        id,
        tenantId,
        source: create(ConnectionInfoSchema, { connectionId: randomUUID(), database: "a" }),
        target: create(ConnectionInfoSchema, { connectionId: randomUUID(), database: "b", region }),
        config: create(ReplicationConfigSchema, { qosTier }),
        desired: "running",
        status: "Streaming",
        estimatedDataSizeGb: null,
        estimatedInitialSyncDurationHours: null,
      });
      expect(inserted).not.toBe(false);
    }
    const spaced = (id: string, values: number[], health = (_: number) => "Healthy") =>
      values.map((lag, i) => sample(id, new Date(start.getTime() + 60_000 + i * 10_000), lag, { compressionRatio: 4, health: health(i) }));
    await samples.insert([
      ...spaced(ids.t1Premium, lags.t1Premium),
      // Degraded at the end of the range: not counted healthy.
      ...spaced(ids.t1Standard, lags.t1Standard, (i) => (i === 2 ? "Degraded" : "Healthy")).map((s) => ({ ...s, compressionRatio: 1 })),
      ...spaced(ids.t2Premium, lags.t2Premium),
      // Outside the range: no weight.
      sample(ids.t2Premium, new Date(start.getTime() - MINUTE), 10_000),
    ]);
  });

  test("by qos_tier: avg and p99 lag over the group's samples, replications, healthy ones, avg compression", async () => {
    const groups = await rollups.aggregate("qos_tier", start, end);
    const premium = [...lags.t1Premium, ...lags.t2Premium];
    expect(groups.map((g) => [g.key, g.total, g.healthy])).toEqual([["PREMIUM", 2, 2], ["STANDARD", 1, 0]]);
    expect(groups[0]!.avgLagSeconds).toBeCloseTo(mean(premium), 10);
    expect(groups[0]!.p99LagSeconds).toBeCloseTo(p99(premium), 10);
    expect(groups[0]!.avgCompressionRatio).toBeCloseTo(4, 10);
    expect(groups[1]!.p99LagSeconds).toBeCloseTo(29.8, 10);
    expect(groups[1]!.avgCompressionRatio).toBeCloseTo(1, 10);
  });

  test("by tenant_id and by region; without a dimension, one group", async () => {
    expect((await rollups.aggregate("tenant_id", start, end)).map((g) => [g.key, g.total])).toEqual([["tenant-1", 2], ["tenant-2", 1]]);
    expect((await rollups.aggregate("region", start, end)).map((g) => [g.key, g.total])).toEqual([["us-east-1", 2], ["us-west-2", 1]]);
    const [all] = await rollups.aggregate(undefined, start, end);
    const every = [...lags.t1Premium, ...lags.t1Standard, ...lags.t2Premium];
    expect(all).toMatchObject({ key: "", total: 3, healthy: 2 });
    expect(all!.p99LagSeconds).toBeCloseTo(p99(every), 10);
  });

  test("one tenant's replications only, when asked for a tenant", async () => {
    const groups = await rollups.aggregate("qos_tier", start, end, "tenant-1");
    expect(groups.map((g) => [g.key, g.total])).toEqual([["PREMIUM", 1], ["STANDARD", 1]]);
    expect(groups[0]!.p99LagSeconds).toBeCloseTo(p99(lags.t1Premium), 10);
    expect(await rollups.aggregate("qos_tier", start, end, "tenant-3")).toEqual([]);
  });
});
