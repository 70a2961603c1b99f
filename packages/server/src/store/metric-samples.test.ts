// Metric samples on a real control plane: at most one per replication and second.
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { MetricSampleStore } from "./metric-samples";

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

test("stores the figures at the whole second; a second sample in the same second is dropped", async () => {
  const id = randomUUID();
  const figures = { lagSeconds: 0.5, lagBytes: 1024, rowsPerSecond: 10, bytesPerSecond: 2048, compressionRatio: 3.5 };
  // In one transaction now() stays the same, so both samples fall in the same second.
  const client = await cp.pool.connect();
  try {
    await client.query("BEGIN");
    const samples = new MetricSampleStore(client as unknown as pg.Pool);
    await samples.record(id, figures);
    await samples.record(id, { ...figures, lagBytes: 1 });
    await client.query("COMMIT");
  } finally {
    client.release();
  }
  const { rows } = await cp.pool.query(
    "SELECT at = date_trunc('second', at) AS whole, lag_seconds, lag_bytes::int, rows_per_second, bytes_per_second, compression_ratio FROM metric_samples WHERE replication_id = $1",
    [id],
  );
  expect(rows).toEqual([{ whole: true, lag_seconds: 0.5, lag_bytes: 1024, rows_per_second: 10, bytes_per_second: 2048, compression_ratio: 3.5 }]);
});
