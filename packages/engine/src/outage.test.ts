// A source or target that goes away and comes back: the replication reports
// each failed attempt (which side, the error's code, the attempt's number),
// keeps measuring what it can, and streams again from its checkpoint once
// the database answers, with nothing lost and nothing applied twice.
import { afterAll, beforeAll, expect, test } from "vitest";
import type { EngineEvent } from "./pipeline";
import { startBench, type Bench } from "./testing/replication";
import { startWriter, tableChecksum, TENANT_COLUMNS, waitFor } from "./testing/tenant";
import { parseLsn } from "./types";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const COLUMNS: Record<string, string[]> = TENANT_COLUMNS;

const retries = (events: EngineEvent[]) => events.filter((e) => e.type === "ReplicationError" && e.details.retryable === "true");

test("the target down and back: retried with backoff, reported as the target's, then resumed from the checkpoint", async () => {
  const r = await bench.replicate({}, { deps: { retry: { initialMs: 200, maxMs: 800 } } });
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  const session = await bench.source.connect(r.name);
  const writer = startWriter(session, { pauseMs: 5 });
  try {
    await r.caughtUp();
    const before = r.pipeline.read().totalRows;
    // A large transaction is being applied when the target goes.
    await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'bulk' FROM generate_series(1, 30000) i");
    await bench.target.halt("immediate");
    await waitFor(() => retries(r.events).length >= 3, "three failed attempts", 20_000);
    const failures = retries(r.events);
    expect(failures.every((e) => e.details.side === "target")).toBe(true);
    expect(failures.map((e) => Number(e.details.retry_count))).toEqual(failures.map((_, i) => i + 1));
    // The connection's end as the first write or read after the crash met it: refused, reset, or a write into a closed socket (EPIPE).
    expect(failures[0]!.details.error_code).toMatch(/^(ECONNREFUSED|ECONNRESET|EPIPE|57P01|08\w{3}|Error)$/);
    expect(failures[0]!.message).toMatch(/^target failed: /);
    const during = r.pipeline.read();
    expect(during.status).toBe("Error");
    expect(during.health).toBe("Unhealthy");
    expect(during.retry?.side).toBe("target");
    // The source keeps changing and the watch keeps measuring how far behind the target is.
    await waitFor(() => r.pipeline.read().lagBytes > 0 && r.pipeline.read().lagSeconds > 0, "lag measured while the target is down", 10_000);
    expect(r.pipeline.read().rowsPerSecond).toBe(0);
    expect(r.pipeline.read().totalRows).toBeGreaterThanOrEqual(before);
    await bench.target.resume();
    await waitFor(() => r.events.some((e) => e.type === "ReplicationRecovered"), "the stream to deliver again", 20_000);
    expect(r.pipeline.status).toBe("Streaming");
    expect(r.events.find((e) => e.type === "ReplicationRecovered")?.details.retry_count).toBe(String(retries(r.events).length));
  } finally {
    await writer.stop();
    await session.end();
    // Up again whatever failed above, so that the next test finds it.
    await bench.target.resume().catch(() => undefined);
  }
  await r.caughtUp();
  // The test's own session to the target ended with it.
  const replica = await bench.target.connect(r.name);
  try {
    for (const [table, columns] of Object.entries(COLUMNS)) {
      expect(await tableChecksum(replica, table, columns), table).toEqual(await tableChecksum(r.db, table, columns));
    }
  } finally {
    await replica.end();
  }
  expect(r.pipeline.read().conflictsDetected).toBe(0);
  expect(r.pipeline.read().retry).toBeUndefined();
}, 90_000);

test("the source down and back: retried, reported as the source's, then resumed without loss", async () => {
  const r = await bench.replicate({}, { deps: { retry: { initialMs: 200, maxMs: 800 } } });
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'before' FROM generate_series(1, 1000) i");
  await r.caughtUp();
  const totals = r.pipeline.read();
  await r.db.end();
  // A crash of the source: no clean shutdown.
  await bench.source.halt("immediate");
  await waitFor(() => retries(r.events).length >= 2, "two failed attempts", 20_000);
  expect(retries(r.events).every((e) => e.details.side === "source")).toBe(true);
  expect(r.pipeline.status).toBe("Error");
  await bench.source.resume();
  await waitFor(() => r.pipeline.status === "Streaming", "Streaming again", 20_000);
  const db = await bench.source.connect(r.name);
  const replica = await bench.target.connect(r.name);
  try {
    await db.query("INSERT INTO orders (user_id, amount, status) SELECT 2, i, 'after' FROM generate_series(1, 1000) i");
    await db.query("UPDATE users SET name = 'after the outage' WHERE id % 7 = 0");
    const { rows } = await db.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
    await waitFor(() => (r.pipeline.read().lastCheckpoint?.lsn ?? 0n) >= parseLsn(rows[0]!.lsn), "the replica to catch up");
    for (const [table, columns] of Object.entries(COLUMNS)) {
      expect(await tableChecksum(replica, table, columns), table).toEqual(await tableChecksum(db, table, columns));
    }
  } finally {
    await Promise.all([db.end(), replica.end()]);
  }
  // Lifetime totals continue from the checkpoint: they never fall back.
  expect(r.pipeline.read().totalRows).toBeGreaterThan(totals.totalRows);
  expect(r.pipeline.read().conflictsDetected).toBe(0);
}, 90_000);

test("a clean shutdown of the source while the replication streams ends without waiting on it; the replication streams again once the source is back, nothing lost", async () => {
  const r = await bench.replicate({}, { deps: { retry: { initialMs: 200, maxMs: 800 } } });
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  await r.db.query("INSERT INTO orders (user_id, amount, status) SELECT 3, i, 'before stop' FROM generate_series(1, 500) i");
  await r.caughtUp();
  // Writers in flight when the source stops.
  const session = await bench.source.connect(r.name);
  session.on("error", () => undefined);
  let writing = true;
  const writes = (async () => {
    for (let i = 0; writing; i++) await session.query("INSERT INTO orders (user_id, amount, status) VALUES (5, $1, 'in flight')", [i]);
  })().catch(() => undefined); // ended by the shutdown
  await new Promise((resolve) => setTimeout(resolve, 500));
  await r.db.end();
  // A fast shutdown waits for every walsender to have its WAL confirmed up to what it sent, shutdown checkpoint
  // included: a replication that confirms only the transactions it applied would hold it (its replies keep
  // wal_sender_timeout away) for as long as it streams.
  let stopped = false;
  const stopping = bench.source.halt("fast").then(() => (stopped = true));
  await waitFor(() => stopped, "the source's fast shutdown to end", 30_000);
  await stopping;
  writing = false;
  await writes;
  await session.end().catch(() => undefined);
  await bench.source.resume();
  await waitFor(() => r.pipeline.status === "Streaming", "Streaming again", 30_000);
  const db = await bench.source.connect(r.name);
  const replica = await bench.target.connect(r.name);
  try {
    await db.query("INSERT INTO orders (user_id, amount, status) SELECT 4, i, 'after restart' FROM generate_series(1, 500) i");
    const { rows } = await db.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
    await waitFor(() => (r.pipeline.read().lastCheckpoint?.lsn ?? 0n) >= parseLsn(rows[0]!.lsn), "the replica to catch up");
    for (const [table, columns] of Object.entries(COLUMNS)) {
      expect(await tableChecksum(replica, table, columns), table).toEqual(await tableChecksum(db, table, columns));
    }
  } finally {
    await Promise.all([db.end(), replica.end()]);
  }
}, 120_000);
