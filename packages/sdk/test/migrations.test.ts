// client.migrations end to end against the real server and real clusters:
// start a Manual migration (REST), follow it with get() into CDCCatchup, ask
// for the cutover, follow it to completion, read it back over Connect and
// gRPC-web alike, list it (for await, and page by page); the refusals arrive
// as their typed errors (ConflictError for a second migration and a cancel
// after the cutover, ValidationError for a bad request, NotFoundError,
// InvalidRequestError); a second migration cancelled in BulkCopy reports its
// rollback.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type { Migration } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../server/src/testing/world";
import { ConflictError, HeliosDBReplicationClient, InvalidRequestError, NotFoundError, ValidationError } from "../src/index";

let world: World;

beforeAll(async () => {
  world = await startWorld({ users: 200 });
  await world.west.createDatabase("sdk_migration");
  await world.east.createDatabase("sdk_migration_back");
  await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)`, [
    JSON.stringify({ connectionId: EAST, database: "production_db", schema: "public", region: "us-east-1" }),
  ]);
}, 180_000);

afterAll(async () => {
  await world?.close();
}, 120_000);

const client = (transport: "rest" | "connect" | "grpc-web" = "rest") => new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest, transport });

test("start, follow, cut over, read back on every transport, list; refusals as typed errors; cancel", async () => {
  const c = client();
  await expect(c.migrations.start({ tenantId: "tenant-123", sourceRegion: "us-east-1", targetRegion: "us-east-1" })).rejects.toBeInstanceOf(ValidationError);
  const started = await c.migrations.start({
    tenantId: "tenant-123",
    sourceRegion: "us-east-1",
    targetRegion: "us-west-2",
    targetDatabase: "sdk_migration",
    config: { bulkCopyParallelism: 2, cdcLagThresholdSeconds: 1, cutoverStrategy: "Manual" },
  });
  expect(started).toMatchObject({ tenantId: "tenant-123", status: "InProgress", currentPhase: "BulkCopy" });
  expect(started.phases.map((p) => p.phase)).toEqual(["BulkCopy", "CDCCatchup", "Cutover"]);
  expect(started.target).toMatchObject({ connectionId: WEST, database: "sdk_migration", region: "us-west-2" });
  // One at a time, on two transports.
  for (const t of ["rest", "connect"] as const) {
    await expect(client(t).migrations.start({ tenantId: "tenant-123", sourceRegion: "us-east-1", targetRegion: "us-west-2" }), t).rejects.toBeInstanceOf(ConflictError);
  }

  await waitFor(async () => (await c.migrations.get(started.id)).currentPhase === "CDCCatchup", "the catch-up", 120_000);
  // Waits for the cutover (Manual): give the catch-up the time to hold, then ask.
  await waitFor(async () => ((await c.migrations.get(started.id)).phases[1]!.durationSeconds ?? 0) >= 3, "the catch-up to hold", 60_000);
  expect((await c.migrations.get(started.id)).currentPhase).toBe("CDCCatchup");
  const asked = await c.migrations.cutover(started.id);
  expect(asked.id).toBe(started.id);
  let done: Migration | undefined;
  await waitFor(async () => (done = await c.migrations.get(started.id)).status !== "InProgress", "the migration to end", 120_000);
  expect(done!.status).toBe("Completed");
  expect(done!.phases.map((p) => p.status)).toEqual(["Completed", "Completed", "Completed"]);
  expect(done!.phases[0]!.dataSizeGb).toBeGreaterThan(0);
  expect(done!.phases[1]!.finalLagSeconds).toBeLessThanOrEqual(1);
  expect(typeof done!.downtimeMs).toBe("bigint");
  expect(done!.downtimeMs).toBeGreaterThan(0n);
  expect(done!.phases[2]!.durationMs).toBeGreaterThanOrEqual(done!.downtimeMs);
  for (const t of ["connect", "grpc-web"] as const) {
    const again = await client(t).migrations.get(started.id);
    expect({ ...again, $typeName: undefined }, t).toEqual({ ...done!, $typeName: undefined });
  }
  expect((await c.routing.get("tenant-123")).primary).toMatchObject({ connectionId: WEST, database: "sdk_migration" });
  await expect(c.migrations.cancel(started.id)).rejects.toBeInstanceOf(ConflictError);

  // Back to us-east-1, cancelled while it copies.
  const back = await c.migrations.start({ tenantId: "tenant-123", sourceRegion: "us-west-2", targetRegion: "us-east-1", targetDatabase: "sdk_migration_back" });
  const cancelled = await c.migrations.cancel(back.id);
  expect(cancelled).toMatchObject({ id: back.id, status: "Cancelled" });
  expect(["InProgress", "Completed"]).toContain(cancelled.rollbackStatus);
  await waitFor(async () => (await c.migrations.get(back.id)).rollbackStatus === "Completed", "the rollback", 60_000);
  expect((await c.migrations.get(back.id)).status).toBe("Cancelled");

  // The list: for await over every page, and page by page, newest first.
  const listed: string[] = [];
  for await (const m of c.migrations.list({ tenantId: "tenant-123" })) listed.push(m.id);
  expect(listed).toEqual([back.id, started.id]);
  const pages = [];
  for await (const page of c.migrations.list({ pageSize: 1 }).pages()) pages.push(page.items.map((m) => m.id));
  expect(pages).toEqual([[back.id], [started.id]]);
  const completed: string[] = [];
  for await (const m of c.migrations.list({ status: "Completed" })) completed.push(m.id);
  expect(completed).toEqual([started.id]);
  await expect(c.migrations.get("750e8400-e29b-41d4-a716-446655449999")).rejects.toBeInstanceOf(NotFoundError);
  await expect(c.migrations.list({ status: "Done" })).rejects.toBeInstanceOf(InvalidRequestError);
}, 400_000);
