// One view of a replication, whichever RPC and whichever server reads it: GET,
// the list (and its status filter), Connect and gRPC agree, also while a
// restarted server is still starting the pipeline; the control responses
// tell the truth about checkpoints and about what a start will do.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ReplicationService, ReplicationStatus } from "@heliosdb/replication-proto";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { RunningApp } from "../app";
import { startWorld, type World } from "../testing/world";

let world: World;
const get = async (id: string, server?: RunningApp) => (await world.rest("GET", `/replications/${id}`, undefined, server)).body;
const streaming = (id: string) => waitFor(async () => (await get(id)).status === "Streaming", `${id} Streaming`, 60_000);

beforeAll(async () => {
  world = await startWorld();
}, 120_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe("GET, list, Connect and gRPC", () => {
  test("agree on status, health and figures after a restart, while the new pipeline cannot start yet and once it streams", async () => {
    const id = await world.createReplication("replica_views", ["products"]);
    await world.rest("POST", `/replications/${id}/start`);
    await streaming(id);
    const other = await world.startServer();
    const views = async () => {
      const byRest = await get(id);
      const status = byRest.status as string;
      const headers = { authorization: `Bearer ${world.token}` };
      const byConnect = await createClient(ReplicationService, createConnectTransport({ baseUrl: `http://127.0.0.1:${world.app.ports.http}`, httpVersion: "1.1" })).getReplication({ id }, { headers });
      const byGrpc = await createClient(ReplicationService, createGrpcTransport({ baseUrl: other.urls.grpc })).getReplication({ id }, { headers });
      const list = (await world.rest("GET", `/replications?status=${status}`)).body.data.find((r: { id: string }) => r.id === id);
      const listOther = (await world.rest("GET", `/replications?status=${status}`, undefined, other)).body.data.find((r: { id: string }) => r.id === id);
      return { byRest, byConnect, byGrpc, list, listOther, viaOther: await get(id, other) };
    };
    const agree = (v: Awaited<ReturnType<typeof views>>) => {
      const status = ReplicationStatus[v.byConnect.status];
      expect(status.toLowerCase()).toBe(v.byRest.status.toLowerCase());
      expect(ReplicationStatus[v.byGrpc.status]).toBe(status);
      for (const item of [v.list, v.listOther]) expect(item).toMatchObject({ status: v.byRest.status, health: v.byRest.health });
      expect(v.viaOther).toMatchObject({ status: v.byRest.status, health: v.byRest.health });
      expect([v.byConnect.health, v.byGrpc.health]).toEqual([v.byRest.health, v.byRest.health]);
      // The same observation everywhere: same time, same totals.
      expect(v.viaOther.current_state.observed_at).toBe(v.byRest.current_state.observed_at);
      expect(v.viaOther.statistics).toEqual(v.byRest.statistics);
      expect(v.byGrpc.statistics?.totalRowsReplicated).toBe(BigInt(v.byRest.statistics.total_rows_replicated));
    };
    // The source table locked: the restarted server's pipeline waits at its start.
    const lock = await world.east.connect("production_db");
    try {
      await lock.query("BEGIN");
      await lock.query("LOCK TABLE products IN ACCESS EXCLUSIVE MODE");
      await world.restart();
      // Until the new pipeline reports, nothing is observed: the last figures age into Unknown.
      await waitFor(async () => (await get(id)).health === "Unknown", "health Unknown", 30_000);
      agree(await views());
    } finally {
      await lock.query("ROLLBACK").catch(() => undefined);
      await lock.end();
    }
    await waitFor(async () => (await get(id)).health === "Healthy" && (await get(id)).status === "Streaming", "Streaming and Healthy", 60_000);
    // A change on the source, so that there is something to agree about.
    await world.source.query("UPDATE products SET price = price + 1 WHERE sku = 'sku-1'");
    await waitFor(async () => (await get(id)).statistics.total_rows_replicated > 0, "a replicated row", 30_000);
    await waitFor(async () => {
      const v = await views();
      try {
        agree(v);
        return true;
      } catch {
        return false; // an observation landed between two reads; read again
      }
    }, "every view to agree");
    expect((await views()).byRest.current_state.observed_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    await world.rest("POST", `/replications/${id}/stop`);
    await world.stopServer(other);
  }, 120_000);
});

describe("control responses", () => {
  test("a pause right after a PATCH restarted the pipeline still carries the last checkpoint", async () => {
    const id = await world.createReplication("replica_pause", ["orders"]);
    await world.rest("POST", `/replications/${id}/start`);
    await streaming(id);
    await world.source.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'before the restart')");
    await waitFor(async () => (await get(id)).current_state.last_checkpoint?.lsn > 0, "a checkpoint");
    const before = (await get(id)).current_state.last_checkpoint.lsn as number;
    // A new table filter restarts the pipeline with a copy of everything; it is paused before it has a checkpoint of its own.
    expect((await world.rest("PATCH", `/replications/${id}`, { config: { table_filter: ["orders.*", "users.*"] } })).status).toBe(200);
    const paused = await world.rest("POST", `/replications/${id}/pause`);
    expect(paused.body).toMatchObject({ id, status: "Paused" });
    expect(paused.body.last_checkpoint?.lsn).toBeGreaterThanOrEqual(before);
    expect((await get(id)).current_state.last_checkpoint.lsn).toBe(paused.body.last_checkpoint.lsn);
    await world.rest("POST", `/replications/${id}/stop`);
  }, 90_000);

  test("a start says what it does: an initial sync with its estimate, or a resume from the checkpoint without one", async () => {
    const id = await world.createReplication("replica_resume", ["users"]);
    const first = await world.rest("POST", `/replications/${id}/start`);
    expect(first.body).toMatchObject({ id, status: "Initializing", message: "Replication starting. Initial sync in progress." });
    expect(Date.parse(first.body.estimated_completion)).toBeGreaterThan(Date.now() - 60_000);
    await streaming(id);
    const paused = await world.rest("POST", `/replications/${id}/pause`);
    const resumed = await world.rest("POST", `/replications/${id}/start`);
    expect(resumed.status).toBe(200);
    expect(resumed.body.message).toBe(`Replication resuming from its checkpoint (LSN ${paused.body.last_checkpoint.lsn}).`);
    expect(resumed.body.estimated_completion).toBeUndefined();
    await streaming(id);
    // New transforms rewrite every row: the next start copies everything again.
    await world.rest("POST", `/replications/${id}/pause`);
    const transforms = [{ type: "AnonymizePII", config: { columns: ["email"], method: "Redact" } }];
    expect((await world.rest("PATCH", `/replications/${id}`, { config: { transforms } })).status).toBe(200);
    const resync = await world.rest("POST", `/replications/${id}/start`);
    expect(resync.body).toMatchObject({ message: "Replication starting. Initial sync in progress." });
    expect(resync.body.estimated_completion).toBeDefined();
    await streaming(id);
    await world.rest("POST", `/replications/${id}/stop`);
  }, 120_000);
});
