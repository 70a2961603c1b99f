// The orchestrator's side of the state machine, on a real server: what a
// stop leaves behind stays, and an explicit start recovers a replication
// from Error, whether the engine failed while streaming or validation failed
// at start.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startWorld, type World } from "../testing/world";

let world: World;
const get = async (id: string) => (await world.rest("GET", `/replications/${id}`)).body;
const listed = async (query: string) => (await world.rest("GET", `/replications?${query}`)).body.data.map((r: { id: string }) => r.id);
const streaming = (id: string) => waitFor(async () => (await get(id)).status === "Streaming", `${id} Streaming`, 60_000);
// Several of the owner's passes (tickMs 200): time for anything a pass would change.
const passes = () => new Promise((r) => setTimeout(r, 1500));

beforeAll(async () => {
  world = await startWorld();
}, 120_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe("a stop", () => {
  test("leaves the replication Stopped in GET, in ?status=Stopped, and for a later start (409 naming Stopped)", async () => {
    const id = await world.createReplication("replica_stop", ["products"]);
    expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
    await streaming(id);
    const stopped = await world.rest("POST", `/replications/${id}/stop`);
    expect(stopped.body).toMatchObject({ id, status: "Stopped" });
    expect(stopped.body.final_statistics.total_rows_replicated).toBeGreaterThanOrEqual(200);
    await passes();
    expect(await get(id)).toMatchObject({ status: "Stopped" });
    expect(await listed("status=Stopped")).toContain(id);
    expect(await listed("status=Paused")).not.toContain(id);
    const start = await world.rest("POST", `/replications/${id}/start`);
    expect(start.status).toBe(409);
    expect(start.body.error).toMatchObject({ code: "CONFLICT", message: "cannot start a replication that is Stopped", request_id: start.headers.get("x-request-id") });
    // Its final figures stay too: the owner's last observation was stored before it let go.
    expect((await get(id)).statistics.total_rows_replicated).toBeGreaterThanOrEqual(200);
  }, 90_000);
});

describe("an explicit start of a replication in Error", () => {
  let replica: pg.Client;

  afterAll(async () => {
    await replica?.end();
  });

  test("restarts a pipeline the engine stopped with an error, and it streams again from its checkpoint", async () => {
    const id = await world.createReplication("replica_error", ["orders"]);
    replica = await world.west.connect("replica_error");
    expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
    await streaming(id);
    // A real failure: the target refuses what the source commits.
    await replica.query("ALTER TABLE orders ADD CONSTRAINT no_refunds CHECK (amount >= 0)");
    await world.source.query("INSERT INTO orders (user_id, amount, status) VALUES (1, -5, 'refund')");
    await waitFor(async () => (await get(id)).status === "Error", "Error", 60_000);
    expect(await get(id)).toMatchObject({ status: "Error", health: "Unhealthy" });
    await replica.query("ALTER TABLE orders DROP CONSTRAINT no_refunds");
    const start = await world.rest("POST", `/replications/${id}/start`);
    expect(start.status, JSON.stringify(start.body)).toBe(200);
    expect(start.body.status).not.toBe("Error");
    await waitFor(async () => (await replica.query("SELECT 1 FROM orders WHERE status = 'refund'")).rowCount === 1, "the refused row on the target", 60_000);
    await streaming(id);
    expect((await get(id)).health).toBe("Healthy");
    await world.rest("POST", `/replications/${id}/stop`);
  }, 120_000);

  test("starts a replication whose validation failed at start once the source is fixed", async () => {
    await world.source.query("CREATE TABLE widgets (id int PRIMARY KEY, name text)");
    const id = await world.createReplication("replica_widgets", ["widgets"]);
    await world.source.query("ALTER TABLE widgets RENAME TO widgets_away");
    await world.rest("POST", `/replications/${id}/start`);
    await waitFor(async () => (await get(id)).status === "Error", "Error after the failed validation", 30_000);
    const events = await world.pool.query("SELECT message FROM events WHERE replication_id = $1 AND event_type = 'ReplicationError'", [id]);
    expect(events.rows.map((e) => e.message).join()).toMatch(/no table .* matches the table filter/);
    await world.source.query("ALTER TABLE widgets_away RENAME TO widgets");
    await world.source.query("INSERT INTO widgets VALUES (1, 'gear')");
    const start = await world.rest("POST", `/replications/${id}/start`);
    expect(start.status, JSON.stringify(start.body)).toBe(200);
    await streaming(id);
    const target = await world.west.connect("replica_widgets");
    try {
      expect((await target.query("SELECT name FROM widgets")).rows).toEqual([{ name: "gear" }]);
    } finally {
      await target.end();
    }
    await world.rest("POST", `/replications/${id}/stop`);
  }, 90_000);
});

describe("a replication whose pipeline cannot be made", () => {
  test("is reported with each attempt and does not hold up the others", async () => {
    // The target connection of one replication vanishes from the control plane (as after a restore of an old backup).
    const doomed = await world.createReplication("replica_doomed", ["products"], {});
    await world.pool.query("UPDATE replications SET target = jsonb_set(target, '{connectionId}', '\"550e8400-e29b-41d4-a716-4466554400ff\"') WHERE id = $1", [doomed]);
    const healthy = await world.createReplication("replica_beside", ["products"]);
    expect((await world.rest("POST", `/replications/${doomed}/start`)).status).toBe(200);
    expect((await world.rest("POST", `/replications/${healthy}/start`)).status).toBe(200);
    await streaming(healthy);
    const attempts = async () =>
      (await world.pool.query("SELECT details FROM events WHERE replication_id = $1 AND event_type = 'ReplicationError' ORDER BY id", [doomed])).rows.map(
        (r: { details: Record<string, string> }) => r.details,
      );
    await waitFor(async () => (await attempts()).length >= 2, "two reported attempts", 30_000);
    expect((await attempts()).map((d) => d.retry_count)).toEqual((await attempts()).map((_, i) => String(i + 1)));
    // Nobody runs it, and GET does not pretend otherwise.
    expect((await get(doomed)).health).toBe("Unknown");
    await world.rest("POST", `/replications/${healthy}/stop`);
  }, 90_000);
});
