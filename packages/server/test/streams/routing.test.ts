// WatchTenantRouting against two real servers on one control plane, with
// real clients (grpc-js with our .proto files; Connect, gRPC-web and gRPC
// from Connect's node transports): the routing now, then each change as the
// other server's watchers see it; every version once, in order, under a
// burst; a tenant-bound token of another tenant refused as GET refuses it;
// the routing deleted ends the watches; cancel and deadline free the
// subscriptions. (A change made while the LISTEN session is down:
// src/controller/routing-feed.test.ts, with the polls that would also bring
// it turned off.)
//
// Nothing writes routing before failover and migration arrive: the tests
// write the routing table with SQL on the control plane, as they will.
import { toJson } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { ApiErrorSchema, GetTenantRoutingResponseSchema, RoutingService } from "@heliosdb/replication-proto";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import type { RunningApp } from "../../src/app";
import { EAST, startWorld, WEST, type World } from "../../src/testing/world";
import { issueToken, loadSigningKey } from "../../src/transport/auth";
import { PROTOCOLS, StreamClients, type Stream } from "./clients";

let world: World;
let second: RunningApp;
const clients = new Map<RunningApp, StreamClients>();
let tenant456: string;
const tenants = new Set<string>();

beforeAll(async () => {
  world = await startWorld({ users: 10 });
  second = await world.startServer();
  for (const app of [world.app, second]) clients.set(app, new StreamClients(app.ports));
  tenant456 = await issueToken(loadSigningKey(world.dataDir), { roles: ["Admin"], subject: "tenant-456-admin", tenantId: "tenant-456" });
}, 180_000);

afterEach(async () => {
  await world.pool.query("DELETE FROM routing WHERE tenant_id = ANY($1)", [[...tenants]]);
  tenants.clear();
});

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await world?.close();
}, 120_000);

const open = () => world.app.feeds.routing.open + second.feeds.routing.open;
const EAST_PRIMARY = { connectionId: EAST, database: "production_db", region: "us-east-1" };
const WEST_PRIMARY = { connectionId: WEST, database: "replica_db", region: "us-west-2" };

/** Records a tenant's routing as a failover would (an upsert that sets its version). */
async function route(tenantId: string, version: number, primary: object, extra: { failoverId?: string; writesBlocked?: boolean } = {}): Promise<void> {
  tenants.add(tenantId);
  await world.pool.query(
    `INSERT INTO routing (tenant_id, "primary", version, writes_blocked, failover_id, updated_at) VALUES ($1, $2, $3, $4, $5, now())
     ON CONFLICT (tenant_id) DO UPDATE SET "primary" = EXCLUDED."primary", version = EXCLUDED.version,
       writes_blocked = EXCLUDED.writes_blocked, failover_id = EXCLUDED.failover_id, updated_at = EXCLUDED.updated_at`,
    [tenantId, JSON.stringify(primary), version, extra.writesBlocked ?? false, extra.failoverId ?? null],
  );
}

/** GetTenantRouting over Connect: the answer as proto3 JSON, or the error's code and message. */
async function get(tenantId: string, token = world.token): Promise<{ routing?: unknown; code?: string; message?: string }> {
  const client = createClient(RoutingService, createConnectTransport({ baseUrl: `http://127.0.0.1:${second.ports.http}`, httpVersion: "1.1" }));
  try {
    const answer = await client.getTenantRouting({ tenantId }, { headers: { authorization: `Bearer ${token}` } });
    return { routing: (toJson(GetTenantRoutingResponseSchema, answer) as { routing: unknown }).routing };
  } catch (e) {
    const detail = ConnectError.from(e).findDetails(ApiErrorSchema)[0]!;
    return { code: detail.code, message: detail.message };
  }
}

const versions = (s: Stream) => s.messages.map((m) => Number(m.routing.version));

test("the routing at once, then a failover's change written while the other server's watchers watch, on every protocol, as GET answers it; cancel and deadline free the subscriptions", async () => {
  await route("tenant-watch-a", 1, EAST_PRIMARY);
  const streams = PROTOCOLS.map((p) => clients.get(second)!.routing(p, { tenantId: "tenant-watch-a" }, world.token));
  const deadline = clients.get(second)!.routing("grpc-js", { tenantId: "tenant-watch-a" }, world.token, { deadlineMs: 1500 });
  for (const s of [...streams, deadline]) expect((await s.received(1))[0]!.routing).toMatchObject({ tenantId: "tenant-watch-a", primary: EAST_PRIMARY });
  expect(versions(streams[0]!)).toEqual([1]);
  // Connect's message is proto3 JSON, as GET's answer is made here: the same fields, the same values.
  const connect = streams[PROTOCOLS.indexOf("connect")]!;
  expect(connect.messages[0]!.routing).toEqual((await get("tenant-watch-a")).routing);
  expect((await deadline.ended).grpcCode).toBe(4);
  await waitFor(() => open() === streams.length, "the timed-out subscription freed");

  const failoverId = "550e8400-e29b-41d4-a716-446655440077";
  await route("tenant-watch-a", 2, WEST_PRIMARY, { failoverId });
  for (const s of streams) {
    const [, changed] = await s.received(2);
    expect(changed!.routing).toMatchObject({ tenantId: "tenant-watch-a", primary: WEST_PRIMARY, failoverId });
    expect(Number(changed!.routing.version)).toBe(2);
  }
  expect(connect.messages[1]!.routing).toEqual((await get("tenant-watch-a")).routing);

  for (const s of streams) s.cancel();
  await waitFor(() => open() === 0, "every subscription freed");
  for (const s of streams) expect(s.messages).toHaveLength(2);
}, 120_000);

test("a burst of 50 changes: every version once, in order, on both servers; a change of several statements in one transaction, once, as it ended", async () => {
  await route("tenant-watch-b", 1, EAST_PRIMARY);
  const streams = [
    clients.get(second)!.routing("grpc-js", { tenantId: "tenant-watch-b" }, world.token),
    clients.get(second)!.routing("grpc-web", { tenantId: "tenant-watch-b" }, world.token),
    clients.get(world.app)!.routing("connect", { tenantId: "tenant-watch-b" }, world.token),
  ];
  for (const s of streams) await s.received(1);
  // Each its own transaction, as fast as the control plane takes them.
  for (let v = 2; v <= 51; v++) await route("tenant-watch-b", v, v % 2 ? EAST_PRIMARY : WEST_PRIMARY);
  for (const s of streams) await s.received(51);
  // One cutover's worth in one transaction: writes blocked, then the new primary with writes unblocked, one version.
  const tx = await world.pool.connect();
  try {
    await tx.query("BEGIN");
    await tx.query(`UPDATE routing SET version = 52, writes_blocked = true WHERE tenant_id = 'tenant-watch-b'`);
    await tx.query(`UPDATE routing SET "primary" = $1, writes_blocked = false WHERE tenant_id = 'tenant-watch-b'`, [JSON.stringify(WEST_PRIMARY)]);
    await tx.query("COMMIT");
  } finally {
    tx.release();
  }
  for (const s of streams) {
    const all = await s.received(52);
    expect(versions(s)).toEqual(Array.from({ length: 52 }, (_, i) => i + 1));
    expect(all.slice(1, 51).map((m) => m.routing.primary.connectionId)).toEqual(Array.from({ length: 50 }, (_, i) => ((i + 2) % 2 ? EAST : WEST)));
    expect(all[51]!.routing).toMatchObject({ primary: WEST_PRIMARY });
    expect(all[51]!.routing.writesBlocked ?? false).toBe(false);
  }
  for (const s of streams) s.cancel();
  await waitFor(() => open() === 0, "every subscription freed");
}, 120_000);

test("another tenant's token gets GET's error, a tenant without routing GET's NOT_FOUND; the routing deleted ends every watch with NOT_FOUND", async () => {
  await route("tenant-watch-d", 1, EAST_PRIMARY);
  const refused = await get("tenant-watch-d", tenant456);
  expect(refused.code).toBe("NOT_FOUND");
  const missing = await get("tenant-watch-none");
  expect(missing).toMatchObject({ code: "NOT_FOUND", message: "no routing recorded for tenant tenant-watch-none" });
  for (const protocol of PROTOCOLS) {
    expect(await clients.get(second)!.routing(protocol, { tenantId: "tenant-watch-d" }, tenant456).ended, protocol).toMatchObject({ code: refused.code, message: refused.message, grpcCode: 5 });
    expect(await clients.get(second)!.routing(protocol, { tenantId: "tenant-watch-none" }, world.token).ended, protocol).toMatchObject({
      code: "NOT_FOUND",
      message: missing.message,
      details: { tenant_id: "tenant-watch-none" },
    });
  }
  // Its own tenant's token is served.
  const own = await issueToken(loadSigningKey(world.dataDir), { roles: ["Viewer"], subject: "tenant-watch-d-viewer", tenantId: "tenant-watch-d" });
  const streams = [...PROTOCOLS.map((p) => clients.get(second)!.routing(p, { tenantId: "tenant-watch-d" }, own)), clients.get(world.app)!.routing("connect", { tenantId: "tenant-watch-d" }, world.token)];
  for (const s of streams) await s.received(1);
  await world.pool.query("DELETE FROM routing WHERE tenant_id = 'tenant-watch-d'");
  for (const s of streams) expect(await s.ended).toMatchObject({ code: "NOT_FOUND", details: { tenant_id: "tenant-watch-d" } });
  await waitFor(() => open() === 0, "no subscription left");
}, 120_000);
