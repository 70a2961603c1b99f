// The fault suite: the target, then the source, gone for 20 s under a write
// load. The API reports the failure (Error, Unhealthy, an event per attempt
// naming the side and the error code), keeps measuring what it can (lag while
// the source answers; totals that never fall back), and the replication
// streams again by itself from its checkpoint, nothing lost, nothing twice.
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startWorld, type Answer, type World } from "../../src/testing/world";
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

// A streaming replication into `database`, under a load of the source: the
// cluster goes down once the replication has figures, and the call's
// replication is in Error (Unhealthy) when `during` runs.
async function outage(database: string, cluster: Cluster, during: (id: string, before: Answer["body"]) => Promise<void>): Promise<string> {
  const id = await world.createReplication(database, ["users", "orders", "products"]);
  await rest("POST", `/replications/${id}/start`);
  await waitForStatus(rest, id, "Streaming");
  const load = startLoad(world.east, "production_db");
  try {
    await sleep(1000);
    const before = await replication(rest, id);
    await cluster.halt("immediate");
    const downAt = Date.now();
    await waitFor(async () => (await replication(rest, id)).status === "Error", "Error", 20_000);
    expect((await replication(rest, id)).health).toBe("Unhealthy");
    await during(id, before);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
    const reported = await failures(id, cluster === world.west ? "target" : "source");
    expect(reported.length).toBeGreaterThanOrEqual(3);
    expect(reported.map((e) => Number(e.details.retry_count))).toEqual(reported.map((_, i) => i + 1));
    expect(reported.every((e) => e.details.error_code && e.details.retry_in_seconds)).toBe(true);
    const still = await replication(rest, id);
    expect(still.status).toBe("Error");
    expect(Number(still.statistics.total_rows_replicated)).toBeGreaterThanOrEqual(Number(before.statistics.total_rows_replicated));
    await cluster.resume();
    // Nobody starts it: it streams again by itself (the load's sessions come back with the source too).
    await waitFor(async () => (await events(world.pool, id)).some((e) => e.event_type === "ReplicationRecovered"), "recovered", 90_000);
    await sleep(1000);
  } finally {
    await load.stop();
    // A failed case must not leave the next one without its cluster.
    await cluster.resume().catch(() => undefined);
  }
  const after = await expectConverged(rest, id, world.east, world.west, database);
  expect(after.status).toBe("Streaming");
  expectStatusChainConsistent(await events(world.pool, id));
  return id;
}

test("the target down for 20 s and back", async () => {
  await outage("faults_target", world.west, async (id, before) => {
    // While the source answers, lag keeps being measured: it grows with the load.
    // Bytes at the next beat; seconds once a peek of the slot finds the oldest transaction the target lacks.
    await waitFor(async () => {
      const state = (await replication(rest, id)).current_state;
      return Number(state.replication_lag_bytes) > 0 && state.replication_lag_seconds > 0;
    }, "lag measured", 20_000);
    const lagged = await replication(rest, id);
    expect(lagged.current_state.throughput.rows_per_second).toBe(0);
    expect(Number(lagged.statistics.total_rows_replicated)).toBeGreaterThanOrEqual(Number(before.statistics.total_rows_replicated));
  });
}, 180_000);

test("the source down for 20 s and back", async () => {
  await outage("faults_source", world.east, async (id) => {
    expect((await replication(rest, id)).current_state.throughput.rows_per_second).toBe(0);
  });
}, 180_000);
