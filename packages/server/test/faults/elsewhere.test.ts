// Control requests sent to a server that does not run the replication, two
// servers on one control plane, under a write load: pause, start, stop and
// delete (with cleanup_target) answer as on the owner, the owner lets the
// pipeline go, and a stop or delete leaves no slot, publication or walsender
// on the source — whichever server the load balancer picked.
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { RunningApp } from "../../src/app";
import { startWorld, type World } from "../../src/testing/world";
import { events, expectConverged, expectStatusChainConsistent, replication, startLoad, waitForStatus } from "./harness";

let world: World;
let second: RunningApp;

beforeAll(async () => {
  world = await startWorld({ users: 300 });
  second = await world.startServer();
}, 180_000);

afterAll(async () => {
  await world?.close();
}, 120_000);

const slotName = (id: string) => `heliosdb_${id.replace(/-/g, "")}`;

/** What the replication holds on the source: its slot (and whether a walsender uses it) and its publication. */
async function onSource(id: string) {
  const slot = await world.source.query<{ active: boolean }>("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slotName(id)]);
  const publication = await world.source.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [slotName(id)]);
  return { slot: slot.rows[0], publication: publication.rowCount === 1 };
}

/** The server that runs the replication now, and the other one. */
async function owner(id: string): Promise<{ owner: RunningApp; other: RunningApp }> {
  await waitFor(() => [world.app, second].some((app) => app.orchestrator.figures(id)), "an owner", 30_000);
  const owner = world.app.orchestrator.figures(id) ? world.app : second;
  return { owner, other: owner === world.app ? second : world.app };
}

test("pause, start, stop and delete sent to the server that does not run the replication, under a write load", async () => {
  const id = await world.createReplication("elsewhere", ["users", "orders", "products"]);
  const via = (app: RunningApp) => (method: string, path: string, body?: unknown) => world.rest(method, path, body, app);
  expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitForStatus(world.rest, id, "Streaming");
  const load = startLoad(world.east, "production_db");
  try {
    // Pause: the owner lets it go; the slot stays, unused.
    let { other } = await owner(id);
    let res = await via(other)("POST", `/replications/${id}/pause`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.status).toBe("Paused");
    await waitFor(() => !world.app.orchestrator.figures(id) && !second.orchestrator.figures(id), "the owner to let the pipeline go", 30_000);
    await waitFor(async () => (await onSource(id)).slot?.active === false, "the slot kept, unused", 30_000);

    // Start again there: it streams from its checkpoint, nothing lost.
    res = await via(other)("POST", `/replications/${id}/start`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await waitForStatus(world.rest, id, "Streaming");

    // Stop on the server that does not run it: the owner lets go, the slot and publication are dropped.
    ({ other } = await owner(id));
    expect((await onSource(id)).slot?.active).toBe(true);
    res = await via(other)("POST", `/replications/${id}/stop`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.status).toBe("Stopped");
    expect(await onSource(id)).toEqual({ slot: undefined, publication: false });
    expect(world.app.orchestrator.figures(id) ?? second.orchestrator.figures(id)).toBeUndefined();
    expect((await replication(world.rest, id)).status).toBe("Stopped");
    // The owner stopped it: one status change, from Streaming to Stopped, recorded once.
    await waitFor(async () => expectStatusChainConsistent(await events(world.pool, id)).at(-1)?.to === "Stopped", "the stop recorded");
    expect(expectStatusChainConsistent(await events(world.pool, id)).slice(-1)).toEqual([{ from: "Streaming", to: "Stopped" }]);
    // A second stop is no error and finds nothing left to drop.
    expect((await via(other)("POST", `/replications/${id}/stop`)).status).toBe(200);

    // A stopped one is deleted there too, with nothing left to drop.
    expect((await via(other)("DELETE", `/replications/${id}`)).status).toBe(204);

    // Another one, running under the load, caught up, then deleted with cleanup_target on the server that does not run it.
    const running = await world.createReplication("elsewhere_deleted", ["users", "orders", "products"]);
    expect((await world.rest("POST", `/replications/${running}/start`)).status).toBe(200);
    await waitForStatus(world.rest, running, "Streaming", 120_000);
    await load.stop();
    await expectConverged(world.rest, running, world.east, world.west, "elsewhere_deleted");
    // Delete with cleanup_target on the server that does not run it.
    ({ other } = await owner(running));
    res = await via(other)("DELETE", `/replications/${running}?cleanup_target=true`);
    expect(res.status, JSON.stringify(res.body)).toBe(204);
    expect(await onSource(running)).toEqual({ slot: undefined, publication: false });
    expect((await world.rest("GET", `/replications/${running}`)).status).toBe(404);
    // Nothing of it streams from the source any more, and what it created on the target is gone.
    expect((await world.source.query("SELECT 1 FROM pg_stat_replication")).rowCount).toBe(0);
    const replica = await world.west.connect("elsewhere_deleted");
    try {
      expect((await replica.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('users', 'orders', 'products')")).rowCount).toBe(0);
    } finally {
      await replica.end();
    }
    await waitFor(() => !world.app.orchestrator.figures(running) && !second.orchestrator.figures(running), "no server running it", 10_000);
  } finally {
    await load.stop();
  }
}, 300_000);

test("a stopped replication whose source connection was deleted since is deleted all the same; with cleanup_target, a 409 says why", async () => {
  const source = "550e8400-e29b-41d4-a716-4466554400e1";
  const registered = await world.rest("POST", "/connections", {
    connection_id: source, host: world.east.host, port: world.east.port, user: world.east.user, password: world.east.password,
    database: "production_db", sslmode: "disable", region: "us-east-1", owner_tenant_id: "tenant-123",
  });
  expect(registered.status, JSON.stringify(registered.body)).toBe(201);
  await world.west.createDatabase("elsewhere_orphan");
  const created = await world.rest("POST", "/replications", {
    tenant_id: "tenant-123",
    source: { connection_id: source, database: "production_db" },
    target: { connection_id: "550e8400-e29b-41d4-a716-446655440002", database: "elsewhere_orphan" },
    config: { qos_tier: "Standard", table_filter: ["users.*"] },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id = created.body.id as string;
  expect((await world.rest("POST", `/replications/${id}/start`)).status).toBe(200);
  await waitForStatus(world.rest, id, "Streaming");
  expect((await world.rest("POST", `/replications/${id}/stop`)).status).toBe(200);
  expect(await onSource(id)).toEqual({ slot: undefined, publication: false });
  expect((await world.rest("DELETE", `/connections/${source}`)).status).toBe(204);

  const refused = await world.rest("DELETE", `/replications/${id}?cleanup_target=true`, undefined, second);
  expect(refused.status).toBe(409);
  expect(refused.body.error.message).toContain("without cleanup_target");
  expect((await world.rest("GET", `/replications/${id}`)).status).toBe(200);
  expect((await world.rest("DELETE", `/replications/${id}`, undefined, second)).status).toBe(204);
  expect((await world.rest("GET", `/replications/${id}`)).status).toBe(404);
}, 120_000);
