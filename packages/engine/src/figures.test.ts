// The figures a replication reports while it does not stream: lag keeps
// being measured (the source's WAL position against the target's checkpoint,
// and the age of the oldest transaction the slot holds), throughput is 0,
// and lifetime totals neither vanish nor restart from zero — also in a
// pipeline object that has never run (a restarted process watching a paused
// replication).
import { afterAll, beforeAll, expect, test } from "vitest";
import { startBench, type Bench } from "./testing/replication";
import { waitFor } from "./testing/tenant";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

test("paused: lag measured against the checkpoint, no throughput, totals kept; a new object knows them from the target", async () => {
  const r = await bench.replicate({});
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'streamed' FROM generate_series(1, 2000) i");
  await r.caughtUp();
  const streamed = r.pipeline.read();
  expect(streamed.totalRows).toBeGreaterThan(2000);

  await r.pipeline.pause();
  const pausedAt = Date.now();
  // What the pause kept: a heartbeat may have been applied (and checkpointed) between the read above and the pause.
  const kept = r.pipeline.read();
  expect(kept.totalRows).toBe(streamed.totalRows);
  await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'paused' FROM generate_series(1, 5000) i");
  await waitFor(() => r.pipeline.read().lagBytes > 100_000 && r.pipeline.read().lagSeconds > 0, "lag while paused", 20_000);
  const paused = r.pipeline.read();
  expect(paused.status).toBe("Paused");
  expect(paused.rowsPerSecond).toBe(0);
  expect(paused.transactionsPerSecond).toBe(0);
  expect(paused.totalRows).toBe(kept.totalRows);
  expect(paused.lastCheckpoint?.lsn).toBe(kept.lastCheckpoint?.lsn);
  // The age of the paused insert's commit, not of the pause.
  expect(paused.lagSeconds).toBeLessThanOrEqual((Date.now() - pausedAt) / 1000 + 0.5);
  expect(paused.walRetainedBytes).toBeGreaterThan(100_000);

  // A restarted process: the object has seen nothing, the target remembers.
  await r.pipeline.pause({ watch: false });
  const watcher = r.twin(undefined, { history: { status: "Paused", uptimeSeconds: 3600 } });
  await watcher.pause();
  await waitFor(() => watcher.read().lagBytes > 100_000 && watcher.read().lagSeconds > 0, "lag measured by the new object", 20_000);
  const fresh = watcher.read();
  expect(fresh.totalRows).toBe(kept.totalRows);
  expect(fresh.totalTransactions).toBe(kept.totalTransactions);
  expect(fresh.lastCheckpoint?.lsn).toBe(kept.lastCheckpoint?.lsn);
  expect(fresh.uptimeSeconds).toBeGreaterThanOrEqual(3600);
  expect(r.events.filter((e) => e.type === "StatusChanged" && e.details.to === "Paused").length).toBe(1);

  // Resumed: the paused rows arrive and the totals go on from where they were.
  await watcher.start();
  await watcher.whenStreaming();
  await r.caughtUp();
  const resumed = watcher.read();
  expect(resumed.totalRows).toBe(streamed.totalRows + 5000);
  // Only the heartbeat the watch just wrote may be ahead of the target.
  await waitFor(() => watcher.read().lagBytes < 4096, "the lag to close");
  expect(r.events.some((e) => e.type === "StatusChanged" && e.details.from === "Paused" && e.details.to === "Initializing")).toBe(true);
}, 90_000);
