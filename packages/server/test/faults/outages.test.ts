// The fault suite: the target, then the source, gone for 20 s under a write
// load. The API reports the failure (Error, Unhealthy, an event per attempt
// naming the side and the error code), keeps measuring what it can (lag while
// the source answers; totals that never fall back), and the replication
// streams again by itself from its checkpoint, nothing lost, nothing twice.
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startWorld, type World } from "../../src/testing/world";
import { events, expectConverged, expectStatusChainConsistent, replication, startLoad, waitForStatus } from "./harness";

let world: World;
beforeAll(async () => {
  world = await startWorld({ users: 500 });
}, 120_000);
afterAll(() => world?.close(), 60_000);

const OUTAGE_MS = 20_000;
const rest = (method: string, path: string, body?: unknown) => world.rest(method, path, body);
const failures = async (id: string, side: string) =>
  (await events(world.pool, id)).filter((e) => e.event_type === "ReplicationError" && e.details.side === side && e.details.retryable === "true");

test("the target down for 20 s and back", async () => {
  const id = await world.createReplication("faults_target", ["users", "orders", "products"]);
  await rest("POST", `/replications/${id}/start`);
  await waitForStatus(rest, id, "Streaming");
  const load = startLoad(world.east, "production_db");
  try {
    await sleep(1000);
    const before = await replication(rest, id);
    await world.west.halt("immediate");
    const downAt = Date.now();
    await waitFor(async () => (await replication(rest, id)).status === "Error", "Error", 20_000);
    const during = await replication(rest, id);
    expect(during.health).toBe("Unhealthy");
    // While the source answers, lag keeps being measured: it grows with the load.
    await waitFor(async () => Number((await replication(rest, id)).current_state.replication_lag_bytes) > 0, "lag measured", 20_000);
    const lagged = await replication(rest, id);
    expect(lagged.current_state.replication_lag_seconds).toBeGreaterThan(0);
    expect(lagged.current_state.throughput.rows_per_second).toBe(0);
    expect(Number(lagged.statistics.total_rows_replicated)).toBeGreaterThanOrEqual(Number(before.statistics.total_rows_replicated));
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
    const reported = await failures(id, "target");
    expect(reported.length).toBeGreaterThanOrEqual(3);
    expect(reported.map((e) => Number(e.details.retry_count))).toEqual(reported.map((_, i) => i + 1));
    expect(reported.every((e) => e.details.error_code && e.details.retry_in_seconds)).toBe(true);
    expect((await replication(rest, id)).status).toBe("Error");
    await world.west.resume();
    await waitFor(async () => (await events(world.pool, id)).some((e) => e.event_type === "ReplicationRecovered"), "recovered", 90_000);
  } finally {
    await load.stop();
  }
  const after = await expectConverged(rest, id, world.east, world.west, "faults_target");
  expect(after.status).toBe("Streaming");
  expectStatusChainConsistent(await events(world.pool, id));
}, 180_000);

test("the source down for 20 s and back", async () => {
  const id = await world.createReplication("faults_source", ["users", "orders", "products"]);
  await rest("POST", `/replications/${id}/start`);
  await waitForStatus(rest, id, "Streaming");
  const load = startLoad(world.east, "production_db");
  try {
    await sleep(1000);
    const before = await replication(rest, id);
    await world.east.halt("immediate");
    const downAt = Date.now();
    await waitFor(async () => (await replication(rest, id)).status === "Error", "Error", 20_000);
    expect((await replication(rest, id)).health).toBe("Unhealthy");
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
    const reported = await failures(id, "source");
    expect(reported.length).toBeGreaterThanOrEqual(3);
    expect(Number((await replication(rest, id)).statistics.total_rows_replicated)).toBeGreaterThanOrEqual(Number(before.statistics.total_rows_replicated));
    await world.east.resume();
    // The load's sessions come back with the source, and so does the replication.
    await waitFor(async () => (await events(world.pool, id)).some((e) => e.event_type === "ReplicationRecovered"), "recovered", 90_000);
    await sleep(1000);
  } finally {
    await load.stop();
  }
  const after = await expectConverged(rest, id, world.east, world.west, "faults_source");
  expect(after.status).toBe("Streaming");
  expectStatusChainConsistent(await events(world.pool, id));
}, 180_000);
