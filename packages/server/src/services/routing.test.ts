// GET /v1/tenants/{tenant_id}/routing on a real server: the routing the
// control plane records, or NOT_FOUND.
import { afterAll, beforeAll, expect, test } from "vitest";
import { startWorld, type World } from "../testing/world";

let world: World;

beforeAll(async () => {
  world = await startWorld({ users: 10 });
}, 120_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

test("answers the recorded routing, and NOT_FOUND for a tenant without one", async () => {
  const missing = await world.rest("GET", "/tenants/tenant-999/routing");
  expect(missing.status).toBe(404);
  expect(missing.body.error).toMatchObject({ code: "NOT_FOUND", message: "no routing recorded for tenant tenant-999" });
  // Nothing records routing before failover and migration arrive: the test writes the row.
  await world.pool.query(
    `INSERT INTO routing (tenant_id, "primary", version, writes_blocked, updated_at)
     VALUES ('tenant-123', '{"connectionId": "550e8400-e29b-41d4-a716-446655440002", "database": "replica_db", "region": "us-west-2"}', 2, false, '2025-01-02T03:04:05Z')`,
  );
  const found = await world.rest("GET", "/tenants/tenant-123/routing");
  expect(found.status, JSON.stringify(found.body)).toBe(200);
  expect(found.body).toMatchObject({
    tenant_id: "tenant-123",
    primary: { connection_id: "550e8400-e29b-41d4-a716-446655440002", database: "replica_db", region: "us-west-2" },
    version: 2,
    updated_at: "2025-01-02T03:04:05Z",
  });
});
