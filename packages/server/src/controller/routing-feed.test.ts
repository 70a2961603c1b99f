// The routing feed on a real control plane and LISTEN session, with its
// polls turned off, so that only what it hears, and the reads the session's
// "*" calls for, can bring a change: a change (and a deletion) made while
// the session is down arrives once it is back; a row too large to announce
// is read. The tests write the routing table with SQL, as failover and
// migration will.
import { waitFor } from "@heliosdb/replication-engine/testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Notices } from "../store/notices";
import { ROUTING_CHANNEL, routingNotice, RoutingStore, type RoutingRow } from "../store/routing";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { RoutingFeed } from "./routing-feed";

const SESSION = "heliosdb-routing-feed-test";
const HOUR = 3_600_000;
let cp: ControlPlane;
let notices: Notices;
let feed: RoutingFeed;

beforeAll(async () => {
  cp = await startControlPlane();
  notices = new Notices(cp.pool, ROUTING_CHANNEL, SESSION);
  await notices.start();
  const store = new RoutingStore(cp.pool);
  feed = new RoutingFeed({ read: (t) => store.get(t), notice: routingNotice, notices, pollMs: { listening: HOUR, deaf: HOUR } });
}, 120_000);

afterAll(async () => {
  await notices?.close();
  await cp?.close();
}, 60_000);

async function route(tenantId: string, version: number, database = "production_db"): Promise<void> {
  await cp.pool.query(
    `INSERT INTO routing (tenant_id, "primary", version) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET "primary" = EXCLUDED."primary", version = EXCLUDED.version, updated_at = now()`,
    [tenantId, JSON.stringify({ connectionId: "c-1", database }), version],
  );
}

async function sessionLost(): Promise<void> {
  await cp.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [SESSION]);
  await waitFor(() => !notices.listening, "the LISTEN session lost");
}

test("a change, then a deletion, made while the LISTEN session is down: read once it is back", async () => {
  await route("tenant-down", 1);
  const controller = new AbortController();
  const watch = (await feed.subscribe("tenant-down", controller.signal))[Symbol.asyncIterator]();
  expect((await watch.next()).value).toMatchObject({ tenantId: "tenant-down", version: 1n });

  await sessionLost();
  // Announced while no one listens: the session's "*" when it is back is the only way the feed hears of it.
  await route("tenant-down", 2, "after_failover");
  expect((await watch.next()).value).toMatchObject({ version: 2n, primary: { database: "after_failover" } });
  await waitFor(() => notices.listening, "listening again");
  await route("tenant-down", 3);
  expect((await watch.next()).value).toMatchObject({ version: 3n });

  await sessionLost();
  await cp.pool.query("DELETE FROM routing WHERE tenant_id = 'tenant-down'");
  await expect(watch.next()).rejects.toThrow("no routing recorded for tenant tenant-down");
  expect(feed.open).toBe(0);
  await waitFor(() => notices.listening, "listening again");
}, 60_000);

test("a row too large to announce is read; the watch ends with its call", async () => {
  await route("tenant-large", 1);
  const controller = new AbortController();
  const watch = (await feed.subscribe("tenant-large", controller.signal))[Symbol.asyncIterator]();
  expect((await watch.next()).value).toMatchObject({ version: 1n });
  const large = "d".repeat(9000);
  await route("tenant-large", 2, large);
  const changed = (await watch.next()).value as RoutingRow;
  expect(changed.version).toBe(2n);
  expect(changed.primary.database).toBe(large);
  expect(feed.open).toBe(1);
  const next = watch.next();
  controller.abort();
  expect(await next).toMatchObject({ done: true });
  expect(feed.open).toBe(0);
  await cp.pool.query("DELETE FROM routing WHERE tenant_id = 'tenant-large'");
}, 60_000);
