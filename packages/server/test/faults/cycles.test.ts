// The fault suite: 20 pause/start cycles under a write load of transactions
// of varied length, each with a transaction open across the start. At each
// step the API's state, checkpoint, lag, throughput and totals are checked
// against what PostgreSQL shows; at the end source and replica are equal.
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startWorld, type World } from "../../src/testing/world";
import { events, expectConverged, expectStatusChainConsistent, openTransaction, replication, startLoad, waitForStatus } from "./harness";

let world: World;
beforeAll(async () => {
  world = await startWorld({ users: 500 });
}, 120_000);
afterAll(() => world?.close(), 60_000);

const rest = (method: string, path: string, body?: unknown) => world.rest(method, path, body);

test("20 pause/start cycles under a write load, a transaction open across every start", async () => {
  const id = await world.createReplication("faults_cycles", ["users", "orders", "products"]);
  await rest("POST", `/replications/${id}/start`);
  await waitForStatus(rest, id, "Streaming");
  // Time the test saw it streaming: from GET saying Streaming to the pause request. It streamed at least that long.
  let streamingSince = Date.now();
  let streamedMs = 0;
  const load = startLoad(world.east, "production_db");
  let totalRows = 0;
  let uptime = 0;
  const source = await world.east.connect("production_db");
  try {
    for (let cycle = 0; cycle < 20; cycle++) {
      streamedMs += Date.now() - streamingSince;
      const paused = await rest("POST", `/replications/${id}/pause`);
      expect(paused.status).toBe(200);
      expect(paused.body.status).toBe("Paused");
      // The pause answers with the checkpoint the target holds.
      const checkpoint = Number(paused.body.last_checkpoint.lsn);
      const tx = await openTransaction(world.east, "production_db");
      try {
        // Paused: no throughput, the checkpoint holds still, lag grows with the load, totals stay.
        await waitFor(async () => {
          const r = await replication(rest, id);
          return r.status === "Paused" && Number(r.current_state.replication_lag_bytes) > 0;
        }, `cycle ${cycle}: lag measured while paused`, 20_000);
        const r = await replication(rest, id);
        // The lag reported was measured: never more than the source's WAL position now minus the checkpoint.
        const { rows } = await source.query<{ lsn: string }>("SELECT (pg_current_wal_lsn() - '0/0')::text AS lsn");
        expect(Number(r.current_state.replication_lag_bytes)).toBeLessThanOrEqual(Number(rows[0]!.lsn) - checkpoint);
        expect(r.current_state.throughput.rows_per_second).toBe(0);
        expect(Number(r.current_state.last_checkpoint.lsn)).toBe(checkpoint);
        expect(Number(r.statistics.total_rows_replicated)).toBeGreaterThanOrEqual(totalRows);
        expect(Number(r.statistics.uptime_seconds)).toBeGreaterThanOrEqual(uptime);
        totalRows = Number(r.statistics.total_rows_replicated);
        uptime = Number(r.statistics.uptime_seconds);
        const started = await rest("POST", `/replications/${id}/start`);
        expect(started.status).toBe(200);
        expect(started.body.message).toMatch(/^Replication resuming from its checkpoint/);
        await waitForStatus(rest, id, "Streaming");
        streamingSince = Date.now();
        await tx.commit();
      } finally {
        await tx.end();
      }
      // Streaming again: the checkpoint moves on, totals never fall back.
      await waitFor(async () => Number((await replication(rest, id)).current_state.last_checkpoint.lsn) > checkpoint, `cycle ${cycle}: the checkpoint moves`, 30_000);
      expect(Number((await replication(rest, id)).statistics.total_rows_replicated)).toBeGreaterThanOrEqual(totalRows);
    }
  } finally {
    await load.stop();
    await source.end();
  }
  const after = await expectConverged(rest, id, world.east, world.west, "faults_cycles");
  expect(Number(after.statistics.total_rows_replicated)).toBeGreaterThan(totalRows);
  // Uptime is the time spent running across all 20 restarts of the pipeline, not since the last one.
  expect(Number(after.statistics.uptime_seconds)).toBeGreaterThanOrEqual(uptime);
  expect(Number(after.statistics.uptime_seconds)).toBeGreaterThanOrEqual(Math.floor(streamedMs / 1000));
  const changes = expectStatusChainConsistent(await events(world.pool, id));
  // Every pause is recorded, and every start after it begins from Paused.
  expect(changes.filter((c) => c.to === "Paused").length).toBeGreaterThanOrEqual(20);
  expect(changes.filter((c) => c.from === "Paused").length).toBeGreaterThanOrEqual(20);
}, 600_000);
