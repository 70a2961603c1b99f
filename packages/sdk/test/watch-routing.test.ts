// client.routing.watch against the real server, through a TCP proxy standing
// for a load balancer: the routing now, then each change in order; the
// connection cut (the server then sends, first, a version already
// delivered: dropped), and the server stopped while the routing changes and
// started again — the watch resumes by itself and delivers what changed
// meanwhile, never a version twice. Over REST (Connect on the same port),
// gRPC-web and gRPC alike; the routing deleted ends it with a NotFoundError.
//
// Nothing writes routing before failover and migration arrive: the test
// writes the routing table with SQL on the control plane, as they will.
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "@heliosdb/replication-engine/testing";
import type { TenantRouting } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../server/src/testing/world";
import { grpc } from "../src/node/index";
import { HeliosDBReplicationClient, NotFoundError, watchTenantRouting, type ReconnectInfo } from "../src/index";
import { proxyTo } from "./proxy";

let world: World;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  world = await startWorld({ users: 10 });
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  await world?.close();
}, 120_000);

/** Records the tenant's routing as a failover would: its primary on `side`, at `version`. */
async function route(tenantId: string, version: number, side = version % 2 ? EAST : WEST): Promise<void> {
  if (version === 1) cleanups.push(() => world.pool.query("DELETE FROM routing WHERE tenant_id = $1", [tenantId]));
  await world.pool.query(
    `INSERT INTO routing (tenant_id, "primary", version) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET "primary" = EXCLUDED."primary", version = EXCLUDED.version, updated_at = now()`,
    [tenantId, JSON.stringify({ connectionId: side, database: "production_db" }), version],
  );
}

async function until(seen: TenantRouting[], n: number, what: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (seen.length < n) {
    if (Date.now() > deadline) throw new Error(`${what}: ${seen.length} of ${n} versions received (${seen.map((r) => r.version).join(", ")})`);
    await sleep(50);
  }
}

test("each change in order; resumed after the connection is cut and after the server is stopped and started again, with the change made meanwhile and no version twice", async () => {
  await route("tenant-sdk-watch", 1);
  const proxy = await proxyTo(world.app.ports.http);
  cleanups.push(() => proxy.close());
  const client = new HeliosDBReplicationClient({ token: world.token, baseUrl: `http://127.0.0.1:${proxy.port}/v1`, maxRetries: 10 });
  const watch = client.routing.watch("tenant-sdk-watch");
  const seen: TenantRouting[] = [];
  const reconnects: ReconnectInfo[] = [];
  watch.on("data", (r) => seen.push(r)).on("reconnect", (r) => reconnects.push(r));
  const open = () => world.app.feeds.routing.open;

  await until(seen, 1, "the routing now");
  for (let v = 2; v <= 5; v++) await route("tenant-sdk-watch", v);
  await until(seen, 5, "the changes");

  // Cut with nothing changed: the new connection's first message is version 5 again, which the watch drops.
  // (The server frees the cut call as the cut reaches it, long before a new call has passed authentication.)
  proxy.cut();
  await waitFor(() => reconnects.length === 1 && proxy.connections() > 0 && open() === 1, "the watch connected again");
  await route("tenant-sdk-watch", 6);
  await until(seen, 6, "after the cut");

  // Stopped, changed while no server answers, started again on another port.
  await world.stopServer(world.app);
  await route("tenant-sdk-watch", 7);
  world.app = await world.startServer();
  proxy.retarget(world.app.ports.http);
  await until(seen, 7, "after the restart");
  await route("tenant-sdk-watch", 8);
  await until(seen, 8, "after the restart, a change");
  // A duplicate would come before the change it precedes; give a late one a moment anyway.
  await sleep(300);
  watch.abort();

  expect(seen.map((r) => Number(r.version))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(seen.map((r) => r.primary?.connectionId)).toEqual([EAST, WEST, EAST, WEST, EAST, WEST, EAST, WEST]);
  expect(reconnects.length).toBeGreaterThanOrEqual(2);
  // Should the call outlive the abort, say which side kept it (the client did, when Node's fetch lost the abort after a
  // garbage collection: src/internal/abortable-fetch.ts).
  await waitFor(() => open() === 0, "the aborted watch freed on the server").catch((e: Error) => {
    throw new Error(`${e.message}: ${open()} open on the server, ${proxy.connections()} connections through the proxy`);
  });
}, 180_000);

test("over REST (Connect on the same port), gRPC-web and gRPC; watchTenantRouting and an abort signal; the routing deleted ends it with a NotFoundError", async () => {
  await route("tenant-sdk-watch-2", 1);
  const transports = [{}, { transport: "grpc-web" as const }, { transport: grpc(world.app.urls.grpc) }];
  const clients = transports.map((t) => new HeliosDBReplicationClient({ token: world.token, baseUrl: world.app.urls.rest, ...t }));
  const watches = clients.map((c) => watchTenantRouting(c, "tenant-sdk-watch-2"));
  const seen = watches.map(() => [] as TenantRouting[]);
  const errors = watches.map(() => [] as unknown[]);
  watches.forEach((w, i) => w.on("data", (r) => seen[i]!.push(r)).on("error", (e) => errors[i]!.push(e)));
  for (const s of seen) await until(s, 1, "the routing now");
  await route("tenant-sdk-watch-2", 2);
  for (const s of seen) await until(s, 2, "a change");
  for (const s of seen) expect(s.map((r) => Number(r.version))).toEqual([1, 2]);

  // Ended by the caller's signal.
  const controller = new AbortController();
  let ended = false;
  clients[0]!.routing.watch("tenant-sdk-watch-2", { signal: controller.signal }).on("end", () => (ended = true)).on("data", () => controller.abort());
  await waitFor(() => ended, "the signal ended the watch");

  await world.pool.query("DELETE FROM routing WHERE tenant_id = 'tenant-sdk-watch-2'");
  for (const e of errors) await waitFor(() => e.length === 1, "the watch ended");
  for (const e of errors) expect(e[0]).toBeInstanceOf(NotFoundError);
  await waitFor(() => world.app.feeds.routing.open === 0, "nothing left subscribed");
}, 120_000);
