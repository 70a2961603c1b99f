// Health that tells the truth: a replication's figures carry the time they
// were observed, a server answering from figures its owner stopped renewing
// says Unknown (GET, list, gRPC) instead of Healthy, and /v1/health counts
// replications in Error and replications without a live owner.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ReplicationService } from "@heliosdb/replication-proto";
import { waitFor } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/health/v1/health_pb";
import { startServerProcess, type ServerProcess } from "../testing/server-process";
import { startWorld, type World } from "../testing/world";

let world: World;
const get = async (id: string) => (await world.rest("GET", `/replications/${id}`)).body;
const health = async () => {
  const res = await fetch(`${world.app.urls.rest}/health`);
  return { status: res.status, body: await res.json() };
};

beforeAll(async () => {
  world = await startWorld();
}, 120_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe("a replication in Error", () => {
  let replica: pg.Client;

  afterAll(async () => {
    await replica?.end();
  });

  test("makes /v1/health Degraded (200) with the count, and grpc.health.v1 keeps SERVING; a recovery makes it Healthy", async () => {
    expect(await health()).toMatchObject({ status: 200, body: { status: "Healthy", checks: { replications: "Healthy" } } });
    const id = await world.createReplication("replica_health", ["orders"]);
    replica = await world.west.connect("replica_health");
    await world.rest("POST", `/replications/${id}/start`);
    await waitFor(async () => (await get(id)).status === "Streaming", "Streaming", 60_000);
    await replica.query("ALTER TABLE orders ADD CONSTRAINT no_refunds CHECK (amount >= 0)");
    await world.source.query("INSERT INTO orders (user_id, amount, status) VALUES (1, -5, 'refund')");
    await waitFor(async () => (await get(id)).status === "Error", "Error", 60_000);
    const degraded = await health();
    expect(degraded.status).toBe(200);
    expect(degraded.body).toMatchObject({
      status: "Degraded",
      checks: { database: "Healthy", message_queue: "Healthy", worker_pool: "Healthy", replications: "Degraded" },
      replications: { running: 1, error: 1, unowned: 0 },
    });
    const grpcHealth = createClient(Health, createGrpcTransport({ baseUrl: world.app.urls.grpc }));
    expect((await grpcHealth.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    await replica.query("ALTER TABLE orders DROP CONSTRAINT no_refunds");
    await world.rest("POST", `/replications/${id}/start`);
    await waitFor(async () => (await get(id)).status === "Streaming", "Streaming again", 60_000);
    expect(await health()).toMatchObject({ status: 200, body: { status: "Healthy", replications: { running: 1, error: 0, unowned: 0 } } });
    await world.rest("POST", `/replications/${id}/stop`);
  }, 120_000);
});

describe("a server that dies", () => {
  let dead: ServerProcess | undefined;

  afterAll(async () => {
    await dead?.kill();
  });

  test("leaves figures that age into Unknown (GET, list, gRPC) and an unowned count, until another server takes over", async () => {
    // Only the server process runs replications while this one starts.
    await world.stopServer(world.app);
    dead = await startServerProcess({ databaseUrl: world.control.url("controlplane"), dataDir: world.dataDir, tickMs: 200, allowHosts: world.allowHosts });
    const id = await world.createReplication("replica_crash", ["products"], {}, dead);
    await world.rest("POST", `/replications/${id}/start`, undefined, dead);
    await waitFor(async () => (await world.rest("GET", `/replications/${id}`, undefined, dead)).body.status === "Streaming", "Streaming", 60_000);
    world.app = await world.startServer();
    const owner = await world.pool.query("SELECT owner FROM leases WHERE replication_id = $1", [id]);
    expect(owner.rows).toEqual([{ owner: dead.nodeId }]);
    expect(await get(id)).toMatchObject({ status: "Streaming", health: "Healthy" });
    expect((await health()).body.replications).toMatchObject({ unowned: 0 });

    await dead.kill();
    const killedAt = Date.now();
    // Its lease lasts on (15 s); its figures are not renewed: they age into Unknown.
    await waitFor(async () => (await get(id)).health === "Unknown", "health Unknown", 30_000);
    const stale = await get(id);
    expect(stale.status).toBe("Streaming");
    expect(Date.parse(stale.current_state.observed_at)).toBeLessThanOrEqual(killedAt);
    expect(stale.current_state.health).toBe("Unknown");
    const item = (await world.rest("GET", "/replications")).body.data.find((r: { id: string }) => r.id === id);
    expect(item).toMatchObject({ status: "Streaming", health: "Unknown" });
    const viaGrpc = await createClient(ReplicationService, createGrpcTransport({ baseUrl: world.app.urls.grpc })).getReplication(
      { id },
      { headers: { authorization: `Bearer ${world.token}` } },
    );
    expect(viaGrpc.health).toBe("Unknown");
    const degraded = await health();
    expect(degraded).toMatchObject({ status: 200, body: { status: "Degraded", checks: { replications: "Degraded" }, replications: { unowned: 1 } } });

    // The lease expires; this server resumes the replication from its checkpoint.
    await waitFor(async () => {
      const live = await get(id);
      return live.health === "Healthy" && live.status === "Streaming";
    }, "the takeover", 60_000);
    expect(Date.parse((await get(id)).current_state.observed_at)).toBeGreaterThan(killedAt);
    expect((await world.pool.query("SELECT owner FROM leases WHERE replication_id = $1", [id])).rows).toEqual([{ owner: world.app.orchestrator.nodeId }]);
    expect(await health()).toMatchObject({ status: 200, body: { status: "Healthy", replications: { unowned: 0 } } });
    await world.rest("POST", `/replications/${id}/stop`);
  }, 120_000);
});
