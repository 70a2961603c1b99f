// Routing on a real control plane: a tenant's recorded primary, or nothing.
import { afterAll, beforeAll, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { RoutingStore } from "./routing";

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

test("reads a tenant's routing with its primary as a ConnectionInfo; undefined when none is recorded", async () => {
  const routing = new RoutingStore(cp.pool);
  expect(await routing.get("tenant-123")).toBeUndefined();
  const failoverId = "550e8400-e29b-41d4-a716-446655440099";
  await cp.pool.query(
    `INSERT INTO routing (tenant_id, "primary", version, writes_blocked, failover_id, updated_at)
     VALUES ('tenant-123', '{"connectionId": "c-1", "database": "production_db", "region": "us-west-2"}', 3, true, $1, '2025-01-02T03:04:05Z')`,
    [failoverId],
  );
  const r = await routing.get("tenant-123");
  expect(r).toMatchObject({
    tenantId: "tenant-123",
    primary: { connectionId: "c-1", database: "production_db", schema: "", region: "us-west-2" },
    version: 3n,
    writesBlocked: true,
    failoverId,
    migrationId: null,
  });
  expect(r?.updatedAt.toISOString()).toBe("2025-01-02T03:04:05.000Z");
});
