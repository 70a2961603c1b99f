// CancelMigration (spec §2.4.3) against real clusters: cancelled in BulkCopy
// or in CDCCatchup, the migration is rolled back — the target's tables it
// created dropped, its slot and publication gone from the source, the source
// as it was, routing unchanged — and reports Cancelled with its
// rollback_status. A Cutover that fails before its switch (the fence cannot
// lock the tables) rolls back the same way, the source unfenced under its
// writers. Once Cutover has begun, a cancel is refused (409, the spec's
// message) and the migration completes. A target found different from the
// source after the switch is reported, and cleanup_source then keeps the
// source's tables.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { MigrationPausePoint } from "../../src/controller/migration/deps";
import { startWorld, type World } from "../../src/testing/world";
import { snapshot } from "../failover/invariants";
import { Holds } from "../failover/holds";
import { type Body, inPhase, leftovers, migrationEnded, routedWriters, routeToEast, tablesOf } from "./tenant";

let world: World;
const holds = new Holds<MigrationPausePoint>();
const sessions: pg.Client[] = [];

beforeAll(async () => {
  // A fence that may wait 1 s for writers in flight: a transaction held open past it fails the cutover.
  world = await startWorld({ users: 5_000, app: { migration: { pause: holds.pause, fenceLockTimeoutMs: 1_000 } } });
  await routeToEast(world);
}, 180_000);

afterAll(async () => {
  holds.releaseAll();
  for (const s of sessions) await s.end().catch(() => undefined);
  await world?.close();
}, 120_000);

async function session(cluster: "east" | "west", database: string): Promise<pg.Client> {
  const client = await world[cluster].connect(database);
  sessions.push(client);
  return client;
}

async function start(database: string, config: Body = {}, to: "west" | "east" = "west"): Promise<string> {
  await world[to].createDatabase(database);
  const res = await world.rest("POST", "/migrations", {
    tenant_id: "tenant-123",
    source_region: to === "west" ? "us-east-1" : "us-west-2",
    target_region: to === "west" ? "us-west-2" : "us-east-1",
    target_database: database,
    migration_config: config,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

async function carrierOf(id: string): Promise<string> {
  const { rows } = await world.pool.query("SELECT replication_id FROM migrations WHERE id = $1", [id]);
  return rows[0].replication_id as string;
}

// Cancelled, rolled back: nothing of the migration is left, and the source and routing are as they were.
async function expectRolledBack(id: string, database: string, before: { source: unknown; routing: Body }) {
  const ended = await migrationEnded(world, id);
  expect(ended).toMatchObject({ id, status: "Cancelled", rollback_status: "Completed" });
  expect(ended.cancelled_at).toBeTruthy();
  expect(ended.phases.map((p: Body) => p.status)).not.toContain("InProgress");
  const target = await session("west", database);
  expect(await tablesOf(target)).toEqual([]);
  const east = await session("east", "production_db");
  expect(await leftovers(east)).toEqual({ slots: [], publications: [] });
  expect(await snapshot(east)).toEqual(before.source);
  // Not fenced: the tenant writes there as before (rolled back, to leave it as it was).
  await east.query("BEGIN");
  await east.query("INSERT INTO users (name, email) VALUES ('after cancel', 'a@example.com')");
  await east.query("ROLLBACK");
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body).toEqual(before.routing);
  const carrier = await carrierOf(id);
  expect((await world.rest("GET", `/replications/${carrier}`)).status).toBe(404);
  const { rows } = await world.pool.query("SELECT event_type FROM events WHERE details->>'migration_id' = $1 AND event_type = 'MigrationCancelled'", [id]);
  expect(rows.length).toBe(1);
}

async function current() {
  const east = await session("east", "production_db");
  return { source: await snapshot(east), routing: (await world.rest("GET", "/tenants/tenant-123/routing")).body as Body };
}

test("cancelled in BulkCopy: rolled back, the target's tables dropped, the slot gone, the source and routing as they were", async () => {
  const before = await current();
  const copying = holds.hold("copying");
  const id = await start("cancel_copy", { bulk_copy_parallelism: 2 });
  expect(await copying.reached).toBe(id);
  expect((await world.rest("GET", `/migrations/${id}`)).body.current_phase).toBe("BulkCopy");
  // The copy has created the tenant's tables on the target: the rollback has something to drop.
  const target = await session("west", "cancel_copy");
  await waitFor(async () => (await tablesOf(target)).length === 3, "the target's tables", 60_000);
  const cancelled = await world.rest("POST", `/migrations/${id}/cancel`);
  expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
  expect(cancelled.body).toMatchObject({ id, status: "Cancelled" });
  expect(["InProgress", "Completed"]).toContain(cancelled.body.rollback_status);
  expect(cancelled.body.cancelled_at).toBeTruthy();
  await expectRolledBack(id, "cancel_copy", before);
}, 300_000);

test("cancelled in CDCCatchup (a Manual migration waiting for its cutover): rolled back the same way; a cutover asked for after is refused", async () => {
  const before = await current();
  const id = await start("cancel_catchup", { cutover_strategy: "Manual" });
  await inPhase(world, id, "CDCCatchup");
  const cancelled = await world.rest("POST", `/migrations/${id}/cancel`);
  expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
  await expectRolledBack(id, "cancel_catchup", before);
  const cut = await world.rest("POST", `/migrations/${id}/cutover`);
  expect(cut.status).toBe(409);
  expect(cut.body.error.code).toBe("CONFLICT");
}, 300_000);

test("a Cutover that fails (the fence cannot lock the tables past a transaction held open) rolls back: the source unfenced, routing unblocked, the target's tables dropped; the writers go on on the source, nothing lost", async () => {
  const routingBefore = (await world.rest("GET", "/tenants/tenant-123/routing")).body as Body;
  const source = `${routingBefore.primary.connection_id}/${routingBefore.primary.database}`;
  const load = routedWriters(world, "rb-", 3);
  const holder = await session("east", "production_db");
  try {
    await waitFor(() => load.committedOn(source) >= 20, "writes on the source", 60_000);
    const id = await start("rollback_west", { cutover_strategy: "Manual" });
    await inPhase(world, id, "CDCCatchup");
    // A client's transaction holds a row of products open past the fence's budget.
    await holder.query("BEGIN");
    await holder.query("UPDATE products SET title = title WHERE sku = (SELECT min(sku) FROM products)");
    await waitFor(async () => (await world.rest("POST", `/migrations/${id}/cutover`)).status === 202, "the cutover to be accepted", 30_000);
    const ended = await migrationEnded(world, id);
    await holder.query("ROLLBACK");
    expect(ended).toMatchObject({ status: "Failed", rollback_status: "Completed" });
    expect(ended.message).toMatch(/^Cutover: fence .*: writers in flight held the tenant's tables past 1000 ms; nothing was fenced$/);
    // The phase that failed, and the copy the rollback undid; the catch-up had nothing to undo.
    expect(ended.phases.map((p: Body) => p.status)).toEqual(["Cancelled", "Completed", "Failed"]);
    expect(Number(ended.downtime_ms ?? 0)).toBe(0);
    // The writers go on on the same primary.
    const before = load.committedOn(source);
    await waitFor(() => load.committedOn(source) >= before + 20, "writes on the source again", 60_000);
    const routing = (await world.rest("GET", "/tenants/tenant-123/routing")).body;
    expect(routing).toMatchObject({ primary: routingBefore.primary, writes_blocked: false });
    // The next primary the cutover announced before its fence is withdrawn.
    expect(routing.next_primary).toBeUndefined();
    await load.stop();
    expect(load.errors).toEqual([]);
    const east = await session("east", "production_db");
    const users = await east.query("SELECT id::text, name, email FROM users WHERE name LIKE 'rb-%'");
    expect(new Map(users.rows.map((u) => [u.id, u]))).toEqual(load.expected().users);
    // Not fenced: a write of the tenant's there goes through (rolled back, to leave it as it was).
    await east.query("BEGIN");
    await east.query("INSERT INTO products (sku, title) VALUES ('after-rollback', 'x')");
    await east.query("ROLLBACK");
    const target = await session("west", "rollback_west");
    expect(await tablesOf(target)).toEqual([]);
    expect(await leftovers(east)).toEqual({ slots: [], publications: [] });
    const { rows } = await world.pool.query("SELECT event_type FROM events WHERE details->>'migration_id' = $1 AND event_type = 'MigrationFailed'", [id]);
    expect(rows.length).toBe(1);
  } finally {
    await holder.query("ROLLBACK").catch(() => undefined);
    await load.stop().catch(() => undefined);
  }
}, 300_000);

test("a cancel once Cutover has begun is refused with 409 and the spec's message; the migration completes", async () => {
  const fenced = holds.hold("fenced");
  const id = await start("cancel_late");
  expect(await fenced.reached).toBe(id);
  const refused = await world.rest("POST", `/migrations/${id}/cancel`);
  expect(refused.status).toBe(409);
  expect(refused.body.error).toMatchObject({ code: "CONFLICT", message: "Cannot cancel after cutover phase starts", details: { migration_id: id } });
  fenced.release();
  const done = await migrationEnded(world, id);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  // Ended: a cancel now says so.
  const after = await world.rest("POST", `/migrations/${id}/cancel`);
  expect(after.status).toBe(409);
  await waitFor(async () => (await world.rest("GET", "/tenants/tenant-123/routing")).body.migration_id === id, "routing to name the migration", 10_000);
}, 300_000);

// Last (the tenant is on us-west-2 after the test above).
test("a target that differs from the source is reported after the switch, loudly, and cleanup_source then keeps the source's tables", async () => {
  const routing = (await world.rest("GET", "/tenants/tenant-123/routing")).body as Body;
  expect(routing.primary.region).toBe("us-west-2");
  const id = await start("verify_east", { cutover_strategy: "Manual", cleanup_source: true }, "east");
  await inPhase(world, id, "CDCCatchup");
  // A row written into the target by someone else: the target is not the source.
  const target = await session("east", "verify_east");
  await target.query("INSERT INTO users (id, name, email, region, created_at) VALUES (999999, 'stray', 'stray@example.com', 'us', now())");
  await waitFor(async () => (await world.rest("POST", `/migrations/${id}/cutover`)).status === 202, "the cutover to be accepted", 30_000);
  const done = await migrationEnded(world, id);
  // The switch stands (the tenant may have written there since); the migration says what differed.
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.message).toMatch(/^VERIFICATION FAILED after the switch .* differs from the source at the fence in users/);
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body.primary).toMatchObject({ database: "verify_east", region: "us-east-1" });
  const source = await session("west", routing.primary.database);
  expect(await tablesOf(source)).toEqual(["orders", "products", "users"]);
  const { rows } = await world.pool.query("SELECT severity, details->>'verified' AS verified FROM events WHERE details->>'migration_id' = $1 AND event_type = 'MigrationCompleted'", [id]);
  expect(rows).toEqual([{ severity: "Error", verified: "false" }]);
}, 300_000);
