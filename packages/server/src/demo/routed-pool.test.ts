// RoutedPool against two real clusters and a routing the test moves: a
// transaction refused by the fence (25006) waits while the routing says
// writes are blocked, then runs again — whole — on the primary a newer
// version names; after a crash of its primary (no 25006, just an error) the
// next transaction reads the routing again and goes where it points.
import { fence, unfence } from "@heliosdb/replication-engine";
import { startCluster, type Cluster } from "@heliosdb/replication-engine/testing";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { RoutedPool, type Route } from "./routed-pool";

const clusters: Record<string, Cluster> = {};
const pools: RoutedPool[] = [];

beforeAll(async () => {
  const [a, b] = await Promise.all([startCluster(), startCluster()]);
  Object.assign(clusters, { a, b });
  for (const c of [a!, b!]) {
    await c.createDatabase("tenant");
    const client = await c.connect("tenant");
    await client.query("CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL)");
    await client.end();
  }
}, 120_000);

afterAll(async () => {
  for (const p of pools) await p.end();
  for (const c of Object.values(clusters)) await c.stop().catch(() => undefined);
}, 60_000);

function routed(first: string) {
  let route: Route = { version: 1n, primary: primary(first), writesBlocked: false } as Route;
  const lines: string[] = [];
  const pool = new RoutedPool({
    tenantId: "tenant-1",
    routing: async () => route,
    resolve: async (p) => ({ connectionString: clusters[p.connectionId]!.url(p.database) }),
    log: (line) => void lines.push(line),
    pollMs: 20,
  });
  pools.push(pool);
  const move = (to: string, writesBlocked = false) => (route = { version: route.version + 1n, primary: primary(to), writesBlocked } as Route);
  return { pool, lines, move };
}

const primary = (cluster: string) => ({ connectionId: cluster, database: "tenant", schema: "public", region: `region-${cluster}` }) as Route["primary"];
const insert = (note: string) => async (db: pg.ClientBase) => (await db.query<{ id: string }>("INSERT INTO orders (note) VALUES ($1) RETURNING id::text", [note])).rows[0]!.id;

async function notes(cluster: string): Promise<string[]> {
  const client = await clusters[cluster]!.connect("tenant");
  try {
    return (await client.query<{ note: string }>("SELECT note FROM orders ORDER BY id")).rows.map((r) => r.note);
  } finally {
    await client.end();
  }
}

test("a primary that crashed: the next transaction reads the routing again and writes where it points", async () => {
  const { pool, lines, move } = routed("a");
  expect((await pool.transaction(insert("on a"))).primary).toBe("a/tenant");
  await clusters.a!.halt("immediate");
  try {
    await expect(pool.transaction(insert("lost with a"))).rejects.toThrow();
    move("b");
    expect((await pool.transaction(insert("on b after the crash"))).primary).toBe("b/tenant");
  } finally {
    await clusters.a!.resume();
  }
  expect(await notes("b")).toEqual(["on b after the crash"]);
  expect(lines).toEqual(["demo writer: tenant-1 follows its routing to the new primary b/tenant (region-b, routing version 2)"]);
}, 60_000);

test("a fenced primary: the transaction waits for the routing (blocked, then switched) and runs again on the new primary", async () => {
  const { pool, lines, move } = routed("b");
  expect((await pool.transaction(insert("before"))).primary).toBe("b/tenant");
  await fence({ connection: { connectionString: clusters.b!.url("tenant") }, schema: "public" }, ["orders"]);
  const refused = pool.transaction(async (db) => {
    await db.query("INSERT INTO orders (note) VALUES ('first statement')");
    return insert("fenced")(db);
  });
  await new Promise((r) => setTimeout(r, 300));
  move("b", true); // a failover marks the routing blocked: still waiting
  await new Promise((r) => setTimeout(r, 300));
  move("a");
  const ack = await refused;
  expect(ack.primary).toBe("a/tenant");
  // Run again whole on the new primary; nothing of it on the old one.
  expect(await notes("a")).toEqual(["on a", "first statement", "fenced"]);
  expect(await notes("b")).toEqual(["on b after the crash", "before"]);
  expect(lines).toEqual([
    "demo writer: tenant-1's primary b/tenant refuses writes (25006): following its routing to the primary it names",
    "demo writer: tenant-1 follows its routing to the new primary a/tenant (region-a, routing version 3)",
  ]);
}, 60_000);

// A writer on b that has written `note` there, and b fenced since (unfenced first: the test before leaves it fenced).
async function fencedAfterWriting(note: string) {
  const writer = routed("b");
  const b = { connection: { connectionString: clusters.b!.url("tenant") }, schema: "public" };
  await unfence(b, ["orders"]);
  expect((await writer.pool.transaction(insert(note))).primary).toBe("b/tenant");
  await fence(b, ["orders"]);
  return writer;
}

// The switch came before the writer's next write (a short cutover between two ticks): refused once on the old
// primary, it finds routing already moved and runs again on the new one, saying both.
test("a fenced primary whose routing has already moved: refused once, then run again on the new primary without waiting", async () => {
  const { pool, lines, move } = await fencedAfterWriting("b before the switch");
  move("a");
  expect((await pool.transaction(insert("a after the switch"))).primary).toBe("a/tenant");
  expect((await notes("a")).at(-1)).toBe("a after the switch");
  expect((await notes("b")).at(-1)).toBe("b before the switch");
  expect(lines).toEqual([
    "demo writer: tenant-1's primary b/tenant refuses writes (25006): following its routing to the primary it names",
    "demo writer: tenant-1 follows its routing to the new primary a/tenant (region-a, routing version 2)",
  ]);
}, 60_000);

// A cutover announces its next primary in a version of its own before the fence: a writer refused by the fence may
// find that version, which names the same primary, and be refused there again. Said once, for its one transaction.
test("routing moved on without a switch (a next primary announced): refused again on the same primary, said once", async () => {
  const { pool, lines, move } = await fencedAfterWriting("b before the announcement");
  move("b"); // the announcement: a newer version, the same primary, writes not blocked
  const refused = pool.transaction(insert("after the switch"));
  await new Promise((r) => setTimeout(r, 300));
  move("a");
  expect((await refused).primary).toBe("a/tenant");
  expect(lines).toEqual([
    "demo writer: tenant-1's primary b/tenant refuses writes (25006): following its routing to the primary it names",
    "demo writer: tenant-1 follows its routing to the new primary a/tenant (region-a, routing version 3)",
  ]);
}, 60_000);
