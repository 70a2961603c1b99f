// Metric samples on a real control plane: recorded for the replications
// whose live lease the recording node holds, and only those.
import { randomUUID } from "node:crypto";
import { expect, test } from "vitest";
import { controlPlanePerFile } from "../testing/control-plane";
import { LeaseStore } from "./leases";
import { MetricSampleStore } from "./metric-samples";

const cp = controlPlanePerFile();

const figures = { lagSeconds: 0.5, lagBytes: 1024, rowsPerSecond: 10, bytesPerSecond: 2048, transactionsPerSecond: 2, compressionRatio: 3.5, health: "Healthy" };

test("records a sample for each replication the node holds a live lease on; none for another's, an expired one, or no lease", async () => {
  const leases = new LeaseStore(cp().pool);
  const samples = new MetricSampleStore(cp().pool);
  const [mine, theirs, lapsed, free] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  expect(await leases.acquire(mine, "node-a", 15)).toBe(true);
  expect(await leases.acquire(theirs, "node-b", 15)).toBe(true);
  await cp().pool.query("INSERT INTO leases (replication_id, owner, expires_at) VALUES ($1, 'node-a', now() - interval '1 second')", [lapsed]);
  const recorded = await samples.record("node-a", [mine, theirs, lapsed, free].map((replicationId) => ({ replicationId, ...figures })));
  expect(recorded).toBe(1);
  const { rows } = await cp().pool.query(
    `SELECT replication_id, lag_seconds, lag_bytes::int, rows_per_second, bytes_per_second, transactions_per_second, compression_ratio,
            cpu_usage_percent, memory_usage_bytes, health, abs(extract(epoch FROM now() - at)) < 60 AS recent
       FROM metric_samples WHERE replication_id = ANY($1)`,
    [[mine, theirs, lapsed, free]],
  );
  // CPU and memory are not measured per pipeline: stored as NULL, never a number made up.
  expect(rows).toEqual([
    { replication_id: mine, lag_seconds: 0.5, lag_bytes: 1024, rows_per_second: 10, bytes_per_second: 2048, transactions_per_second: 2, compression_ratio: 3.5, cpu_usage_percent: null, memory_usage_bytes: null, health: "Healthy", recent: true },
  ]);
});

test("insert stores samples at the times they carry", async () => {
  const id = randomUUID();
  const at = new Date("2025-11-02T10:00:05Z");
  await new MetricSampleStore(cp().pool).insert([{ replicationId: id, at, ...figures, cpuUsagePercent: 12.5, memoryUsageBytes: 4096 }]);
  const { rows } = await cp().pool.query("SELECT at, cpu_usage_percent, memory_usage_bytes::int FROM metric_samples WHERE replication_id = $1", [id]);
  expect(rows).toEqual([{ at, cpu_usage_percent: 12.5, memory_usage_bytes: 4096 }]);
});
