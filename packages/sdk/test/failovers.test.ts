// client.failovers end to end against the real server and real clusters:
// trigger a failover of a streaming replication (REST), follow it with
// get() until it completes, read it back over Connect and gRPC-web alike, list
// the history (for await, and page by page); while one runs, the refusals
// arrive as their typed errors (ConflictError, FailoverInProgressError), and
// after it a NotFoundError for a failover that does not exist and a
// ConflictError for a stopped replication.
import { waitFor } from "@heliosdb/replication-engine/testing";
import type { FailoverStatus } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Holds } from "../../server/test/failover/holds";
import { EAST, startWorld, WEST, type World } from "../../server/src/testing/world";
import { ConflictError, FailoverInProgressError, HeliosDBReplicationClient, InvalidRequestError, NotFoundError } from "../src/index";

let world: World;
const holds = new Holds();

beforeAll(async () => {
  world = await startWorld({ users: 50, app: { failover: { pause: holds.pause } } });
  await world.west.createDatabase("sdk_failover");
  await world.pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-123', $1)`, [
    JSON.stringify({ connectionId: EAST, database: "production_db", schema: "public", region: "us-east-1" }),
  ]);
}, 180_000);

afterAll(async () => {
  holds.releaseAll();
  await world?.close();
}, 120_000);

const client = (transport: "rest" | "connect" | "grpc-web" = "rest") => new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest, transport });

test("trigger, follow to completion, read back on every transport, list; refusals as typed errors", async () => {
  const c = client();
  const replication = await c.replications.create({
    tenantId: "tenant-123",
    source: { connectionId: EAST, database: "production_db" },
    target: { connectionId: WEST, database: "sdk_failover" },
    config: { tableFilter: ["users.*", "orders.*"] },
  });
  await c.replications.start(replication.id);
  await waitFor(async () => (await c.replications.get(replication.id)).status === 2 /* STREAMING */, "streaming", 60_000);

  const held = holds.hold("drained");
  const accepted = await c.failovers.trigger(replication.id, { reason: "sdk", updateRouting: true });
  expect(accepted.replicationId).toBe(replication.id);
  expect(accepted.status).toBe("InProgress");
  expect(accepted.steps.map((s) => s.step)).toEqual(["ValidateReplicaHealth", "StopReplication", "PromoteReplica", "UpdateRouting"]);
  expect(await held.reached).toBe(accepted.failoverId);
  try {
    // While it runs: typed refusals, on two transports.
    for (const t of ["rest", "connect"] as const) {
      await expect(client(t).failovers.trigger(replication.id), t).rejects.toBeInstanceOf(ConflictError);
      const paused = await client(t).replications.pause(replication.id).catch((e: unknown) => e);
      expect(paused, t).toBeInstanceOf(FailoverInProgressError);
      expect((paused as FailoverInProgressError).status).toBe(422);
      expect((paused as FailoverInProgressError).code).toBe("FAILOVER_IN_PROGRESS");
      expect((paused as FailoverInProgressError).details).toMatchObject({ replication_id: replication.id, failover_id: accepted.failoverId });
    }
    const running = await c.failovers.get(accepted.failoverId);
    expect(running.status).toBe("InProgress");
    expect(running.steps[1]!.status).toBe("InProgress");
  } finally {
    held.release();
  }

  let done: FailoverStatus | undefined;
  await waitFor(async () => (done = await c.failovers.get(accepted.failoverId)).status !== "InProgress", "the failover to end", 60_000);
  expect(done!.status).toBe("Completed");
  expect(done!.steps.map((s) => s.status)).toEqual(["Completed", "Completed", "Completed", "Completed"]);
  expect(done!.oldPrimary).toMatchObject({ connectionId: EAST, database: "production_db", region: "us-east-1" });
  expect(done!.newPrimary).toMatchObject({ connectionId: WEST, database: "sdk_failover", region: "us-west-2" });
  // Measured from the fence to the switch (the server's tests hold it to the fence and the switch it spans).
  expect(typeof done!.downtimeMs).toBe("bigint");
  expect(done!.completedAt).toBeDefined();
  // The same failover on each transport.
  for (const t of ["connect", "grpc-web"] as const) {
    const again = await client(t).failovers.get(accepted.failoverId);
    expect({ ...again, $typeName: undefined }, t).toEqual({ ...done!, $typeName: undefined });
  }
  expect((await c.routing.get("tenant-123")).primary).toMatchObject({ connectionId: WEST, database: "sdk_failover" });

  // The history: for await over every page, and page by page.
  const listed: string[] = [];
  for await (const f of c.failovers.list({ replicationId: replication.id })) listed.push(f.id);
  expect(listed).toEqual([accepted.failoverId]);
  const pages = [];
  for await (const page of c.failovers.list({ pageSize: 1, status: "Completed" }).pages()) pages.push(page.items.map((f) => f.id));
  expect(pages).toEqual([[accepted.failoverId]]);

  // After it: a stopped replication cannot fail over; unknown and malformed ids are typed too.
  await expect(c.failovers.trigger(replication.id)).rejects.toBeInstanceOf(ConflictError);
  await expect(c.failovers.get("750e8400-e29b-41d4-a716-446655449999")).rejects.toBeInstanceOf(NotFoundError);
  await expect(c.failovers.list({ status: "Done" })).rejects.toBeInstanceOf(InvalidRequestError);
}, 180_000);
