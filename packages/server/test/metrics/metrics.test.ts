// The metrics API (spec §2.5) end to end, on real servers and three real
// PostgreSQL clusters: a replication moving real rows has a series whose
// values agree with the rows it moved; aggregates are computed from samples
// (known ones, inserted through the store, beside the live ones); a tenant
// sees its own only; every bad input is a 400 naming its field.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ApiErrorSchema, ConnectionInfoSchema, MetricsGroupBy, MetricsResolution, MetricsService, QoSTier, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MetricSampleStore } from "../../src/store/metric-samples";
import { ReplicationStore } from "../../src/store/replications";
import { startWorld, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";

let world: World;
let id: string;
// Rows the test writes while the replication streams, each 100 bytes of payload and its id.
const ROWS = 1000;
const PAYLOAD = 100;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function get(path: string, token = world.token): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${world.app.urls.rest}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

const tenantToken = (tenantId: string) => issueToken(loadSigningKey(world.dataDir), { roles: ["Admin"], subject: `admin-${tenantId}`, tenantId });

function expectRefused(answer: { status: number; body: Json }, code: string, field: string) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(400);
  expect(answer.body.error.code).toBe(code);
  expect(answer.body.error.details.violations.map((v: { field: string }) => v.field)).toContain(field);
}

beforeAll(async () => {
  world = await startWorld({ app: { metrics: { sampleIntervalMs: 300, maintenanceIntervalMs: 1000 } } });
  await world.source.query("CREATE TABLE metric_rows (id bigint PRIMARY KEY, payload text NOT NULL)");
  id = await world.createReplication("replica_metrics", ["metric_rows"], { compression: { enabled: true, level: "Medium" } });
  expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.status === "Streaming", "Streaming", 60_000);
  // The engine's throughput window (its 1 s beats, up to 10 s) spans a few beats before rows move.
  await new Promise((r) => setTimeout(r, 3000));
  // Ten transactions of 100 rows, a little apart, so that several samples see them move.
  for (let i = 0; i < 10; i++) {
    await world.source.query(`INSERT INTO metric_rows SELECT n, repeat('x', ${PAYLOAD}) FROM generate_series($1::bigint, $2::bigint) n`, [i * 100 + 1, i * 100 + 100]);
    await new Promise((r) => setTimeout(r, 300));
  }
  await waitFor(async () => (await world.rest("GET", `/replications/${id}`)).body.statistics?.total_rows_replicated === ROWS, "all rows replicated", 60_000);
}, 240_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe("GET /v1/replications/{id}/metrics", () => {
  test("a replication moving real rows: non-zero throughput, bytes per row as the rows are, transactions, compression, lag", async () => {
    let body: Json;
    // Samples are taken every 300 ms: wait until one saw the rows move and a later one saw them all applied.
    await waitFor(async () => {
      body = (await get(`/replications/${id}/metrics?resolution=1m`)).body;
      return body.metrics.throughput_rows_per_second.some((p: Json) => p.value > 0);
    }, "a sample with rows moving", 60_000);
    expect(body.replication_id).toBe(id);
    expect(body.time_range.resolution).toBe("1m");
    const end = Date.parse(body.time_range.end);
    expect(end - Date.parse(body.time_range.start)).toBe(3_600_000);
    const m = body.metrics;
    for (const series of Object.values(m) as Json[][]) {
      for (const p of series) {
        // Buckets of one minute, within the last hour, and every point no larger than its largest sample.
        expect(Date.parse(p.timestamp) % 60_000).toBe(0);
        expect(Date.parse(p.timestamp)).toBeGreaterThan(end - 3_660_000);
        expect(p.max - p.value).toBeGreaterThanOrEqual(-1e-9 * Math.abs(p.value));
      }
    }
    const moving = m.throughput_rows_per_second.filter((p: Json) => p.value > 0);
    expect(moving.length).toBeGreaterThan(0);
    for (const p of moving) {
      // A rate over the engine's window can never exceed every row moved per second of it.
      expect(p.max).toBeLessThanOrEqual(ROWS);
      // Bytes and rows come from the same window: their ratio is the size of the rows moved (payload, plus the id's digits).
      const bytes = m.throughput_bytes_per_second.find((b: Json) => b.timestamp === p.timestamp);
      expect(bytes.value / p.value).toBeGreaterThanOrEqual(PAYLOAD);
      expect(bytes.value / p.value).toBeLessThanOrEqual(PAYLOAD + 4);
    }
    expect(m.throughput_transactions_per_second.some((p: Json) => p.value > 0)).toBe(true);
    // Repetitive payloads compress: the ratio measured by the codec is above 1.
    expect(m.compression_ratio.at(-1).value).toBeGreaterThan(1);
    for (const series of [m.replication_lag_seconds, m.replication_lag_bytes]) {
      expect(series.length).toBeGreaterThan(0);
      for (const p of series) {
        expect(p.value).toBeGreaterThanOrEqual(0);
        expect(p.p99 - p.max).toBeLessThanOrEqual(1e-9 * Math.abs(p.max));
      }
    }
    // Not measured per pipeline (they share one process): no points rather than estimates.
    expect(m.cpu_usage_percent).toEqual([]);
    expect(m.memory_usage_bytes).toEqual([]);
  });

  test("the servers' upkeep rolls the samples up into every width", async () => {
    const widths = async () => (await world.pool.query("SELECT width_seconds FROM metric_rollup_progress ORDER BY 1")).rows.map((r) => r.width_seconds);
    await waitFor(async () => (await widths()).length === 4, "a rollup pass", 60_000);
    expect(await widths()).toEqual([60, 300, 3600, 86_400]);
  });

  test("gRPC answers the same series (resolution unset: chosen from the range, 1m for an hour)", async () => {
    const client = createClient(MetricsService, createGrpcTransport({ baseUrl: world.app.urls.grpc }));
    const headers = { authorization: `Bearer ${world.token}` };
    const answer = await client.getReplicationMetrics({ replicationId: id }, { headers });
    expect(answer.timeRange?.resolution).toBe(MetricsResolution.ONE_MINUTE);
    expect(answer.metrics?.throughputRowsPerSecond.some((p) => p.value > 0)).toBe(true);
    // A value the contract lacks: VALIDATION_ERROR naming the field.
    const error = await client.getReplicationMetrics({ replicationId: id, resolution: 9 as MetricsResolution }, { headers }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    const detail = (error as ConnectError).findDetails(ApiErrorSchema)[0]!;
    expect(detail.code).toBe("VALIDATION_ERROR");
    expect(JSON.stringify(detail.details)).toContain('"field":"resolution"');
    // A Timestamp beyond what the type allows (year 9999): refused, never handed to the database.
    const far = await client.getReplicationMetrics({ replicationId: id, startTime: { seconds: 10n ** 13n, nanos: 0 } }, { headers }).catch((e: unknown) => e);
    expect((far as ConnectError).findDetails(ApiErrorSchema)[0]).toMatchObject({ code: "VALIDATION_ERROR" });
    expect(JSON.stringify((far as ConnectError).findDetails(ApiErrorSchema)[0]!.details)).toContain('"field":"start_time"');
  });

  test("an empty range is an empty series; so is a range without samples", async () => {
    for (const query of ["start_time=2025-11-02T10:00:00Z&end_time=2025-11-02T10:00:00Z", "start_time=2025-11-02T10:00:00Z&end_time=2025-11-02T11:00:00Z&resolution=5m"]) {
      const answer = await get(`/replications/${id}/metrics?${query}`);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.time_range.start).toBe("2025-11-02T10:00:00Z");
      expect(answer.body.metrics.replication_lag_seconds ?? []).toEqual([]);
      expect(answer.body.metrics.throughput_rows_per_second ?? []).toEqual([]);
    }
  });

  test("bad input: a 400 naming the field", async () => {
    const base = `/replications/${id}/metrics`;
    expectRefused(await get(`${base}?start_time=2025-11-02T11:00:00Z&end_time=2025-11-02T10:00:00Z`), "VALIDATION_ERROR", "end_time");
    // More than 10,000 points at the resolution asked for; with none asked for, more than 10,000 days.
    expectRefused(await get(`${base}?start_time=2025-01-01T00:00:00Z&end_time=2025-03-01T00:00:00Z&resolution=1m`), "VALIDATION_ERROR", "resolution");
    expectRefused(await get(`${base}?start_time=1990-01-01T00:00:00Z&end_time=2025-01-01T00:00:00Z`), "VALIDATION_ERROR", "start_time");
    // Over REST, a value outside the contract's enum fails the mapping of the query (docs/rest-mapping.md, rule 12).
    expectRefused(await get(`${base}?resolution=2m`), "INVALID_REQUEST", "resolution");
    expectRefused(await get(`${base}?start_time=yesterday`), "INVALID_REQUEST", "start_time");
  });

  test("another tenant's replication is NOT_FOUND, as a missing one", async () => {
    const other = await get(`/replications/${id}/metrics`, await tenantToken("tenant-456"));
    const missing = await get(`/replications/${randomUUID()}/metrics`);
    for (const answer of [other, missing]) {
      expect(answer.status).toBe(404);
      expect(answer.body.error.code).toBe("NOT_FOUND");
    }
    expect((await get(`/replications/${id}/metrics`, await tenantToken("tenant-123"))).status).toBe(200);
  });
});

describe("GET /v1/metrics/aggregate", () => {
  // Known samples of a replication of another tenant, in the last hour.
  const known = Array.from({ length: 100 }, (_, i) => i + 1);
  const otherId = randomUUID();

  beforeAll(async () => {
    await new ReplicationStore(world.pool).insert({
      id: otherId,
      tenantId: "tenant-456",
      source: create(ConnectionInfoSchema, { connectionId: randomUUID(), database: "a" }),
      target: create(ConnectionInfoSchema, { connectionId: randomUUID(), database: "b", region: "eu-west-1" }),
      config: create(ReplicationConfigSchema, { qosTier: QoSTier.STANDARD }),
      // Stopped: no server tries to run or watch it (its connections do not exist).
      desired: "stopped",
      status: "Stopped",
      estimatedDataSizeGb: null,
      estimatedInitialSyncDurationHours: null,
    });
    const start = Date.now() - 30 * 60_000;
    await new MetricSampleStore(world.pool).insert(
      known.map((lag, i) => ({ replicationId: otherId, at: new Date(start + i * 10_000), lagSeconds: lag, lagBytes: 0, rowsPerSecond: 0, bytesPerSecond: 0, compressionRatio: 3, health: i === 99 ? "Degraded" : "Healthy" })),
    );
  });

  test("by tenant: each group's avg and p99 lag over its samples (percentile_cont: 99.01 for 1…100), replications, healthy ones, compression", async () => {
    const { status, body } = await get("/metrics/aggregate?group_by=tenant_id");
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.groups.map((g: Json) => g.group_key)).toEqual([{ tenant_id: "tenant-123" }, { tenant_id: "tenant-456" }]);
    const [ours, theirs] = body.groups;
    expect(ours.metrics).toMatchObject({ total_replications: 1, healthy_replications: 1 });
    expect(ours.metrics.avg_compression_ratio).toBeGreaterThan(1);
    expect(theirs.metrics).toMatchObject({ avg_replication_lag_seconds: 50.5, total_replications: 1, healthy_replications: 0, avg_compression_ratio: 3 });
    expect(theirs.metrics.p99_replication_lag_seconds).toBeCloseTo(99.01, 9);
    expect(Date.parse(body.time_range.end) - Date.parse(body.time_range.start)).toBe(3_600_000);
  });

  test("by qos_tier and region, in the spec's spelling", async () => {
    expect((await get("/metrics/aggregate?group_by=qos_tier")).body.groups.map((g: Json) => g.group_key)).toEqual([{ qos_tier: "Premium" }, { qos_tier: "Standard" }]);
    expect((await get("/metrics/aggregate?group_by=region")).body.groups.map((g: Json) => g.group_key)).toEqual([{ region: "eu-west-1" }, { region: "us-west-2" }]);
  });

  test("a tenant-bound token sees only its tenant's group, over REST and gRPC", async () => {
    const token = await tenantToken("tenant-456");
    const rest = await get("/metrics/aggregate?group_by=tenant_id", token);
    expect(rest.body.groups.map((g: Json) => g.group_key)).toEqual([{ tenant_id: "tenant-456" }]);
    const client = createClient(MetricsService, createGrpcTransport({ baseUrl: world.app.urls.grpc }));
    const answer = await client.getAggregatedMetrics({ groupBy: MetricsGroupBy.QOS_TIER }, { headers: { authorization: `Bearer ${token}` } });
    expect(answer.groups.map((g) => g.groupKey)).toEqual([{ qos_tier: "Standard" }]);
    expect(answer.groups[0]!.metrics!.p99ReplicationLagSeconds).toBeCloseTo(99.01, 9);
    expect((await get("/metrics/aggregate", await tenantToken("tenant-789"))).body.groups ?? []).toEqual([]);
  });

  test("bad input: a 400 naming the field; an empty range has no groups", async () => {
    expectRefused(await get("/metrics/aggregate?start_time=2025-11-02T11:00:00Z&end_time=2025-11-02T10:00:00Z"), "VALIDATION_ERROR", "end_time");
    // Aggregates are computed from raw samples, kept 48 h.
    expectRefused(await get(`/metrics/aggregate?start_time=${new Date(Date.now() - 3 * 86_400_000).toISOString()}`), "VALIDATION_ERROR", "start_time");
    expectRefused(await get("/metrics/aggregate?group_by=tier"), "INVALID_REQUEST", "group_by");
    const now = new Date().toISOString();
    const empty = await get(`/metrics/aggregate?start_time=${now}&end_time=${now}`);
    expect(empty.status).toBe(200);
    expect(empty.body.groups ?? []).toEqual([]);
  });
});
