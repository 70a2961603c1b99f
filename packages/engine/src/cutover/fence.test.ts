// The fence against a real PostgreSQL under concurrent writers: writes in
// flight commit before it, writers queued behind its lock fail with 25006
// instead of committing, nothing commits on the fenced tables after it while
// other tables go on, a writer that holds its transaction open makes it fail
// cleanly, and it survives a crash until unfence() lifts it.
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FENCE_SQLSTATE, FENCE_TRIGGER, FenceError, fence, unfence } from "./index";
import { startCluster, type Cluster } from "../testing/clusters";
import { seedTenant, tableChecksum, TENANT_COLUMNS, waitFor } from "../testing/tenant";
import { startTenantWriters } from "../testing/writers";

const TABLES = ["users", "orders", "products"];
let cluster: Cluster;
const sessions: pg.Client[] = [];

beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);
afterAll(async () => {
  for (const s of sessions) await s.end().catch(() => undefined);
  await cluster?.stop();
}, 60_000);

// A seeded tenant in a database of its own, with a table outside the tenant's set.
async function tenant(): Promise<{ name: string; db: pg.Client; session: () => Promise<pg.Client>; source: { connection: { connectionString: string }; schema: string } }> {
  const name = `t_${randomUUID().slice(0, 8)}`;
  await cluster.createDatabase(name);
  const session = async () => {
    const client = await cluster.connect(name);
    sessions.push(client);
    return client;
  };
  const db = await session();
  await seedTenant(db, 200);
  await db.query("CREATE TABLE audit (id bigserial PRIMARY KEY, note text NOT NULL)");
  return { name, db, session, source: { connection: { connectionString: cluster.url(name) }, schema: "public" } };
}

const checksums = (db: pg.ClientBase) =>
  Promise.all(Object.entries(TENANT_COLUMNS).map(([table, columns]) => tableChecksum(db, table, columns)));

// Resolves once `pid` waits for a lock (the only way to know a statement is queued, without timing it).
const waitingOnLock = (db: pg.ClientBase, where: string, params: unknown[]) =>
  waitFor(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ${where}`, params)).rowCount === 1, `a session waiting on a lock (${where})`);

const fenceTriggers = async (db: pg.ClientBase) =>
  (await db.query<{ t: string }>("SELECT tgrelid::regclass::text AS t FROM pg_trigger WHERE tgname = $1 ORDER BY 1", [FENCE_TRIGGER])).rows.map((r) => r.t);

describe("fence", () => {
  test("under concurrent writers: writes in flight commit first, nothing commits after, other tables go on", async () => {
    const t = await tenant();
    const writers = await startTenantWriters(t.session, { writers: 4 });
    const audit = await t.session();
    let audited = 0;
    let auditing = true;
    const auditLoop = (async () => {
      while (auditing) {
        await audit.query("INSERT INTO audit (note) VALUES ('still writing')");
        audited++;
      }
    })();
    try {
      await waitFor(() => writers.committed() >= 40, "writers to commit");
      const fenceId = randomUUID();
      const result = await fence(t.source, TABLES, { fenceId });
      expect(result.fenceId).toBe(fenceId);
      expect(result.tables).toEqual(["public.users", "public.orders", "public.products"]);
      expect(result.finalLsn).toBeGreaterThan(0n);
      expect(result.fencedAt.getTime()).toBeGreaterThanOrEqual(result.blockingSince.getTime());

      const atFence = await checksums(t.db);
      const refusedAtFence = [0, 1, 2, 3].map((w) => writers.refusedBy(w));
      const auditedAtFence = audited;
      // Every writer has tried again, and been refused, several times; the table outside the set kept taking writes.
      await waitFor(() => [0, 1, 2, 3].every((w) => writers.refusedBy(w) >= refusedAtFence[w]! + 3) && audited >= auditedAtFence + 20, "refusals and audit writes");
      expect(await checksums(t.db)).toEqual(atFence);

      const refusedAfter = writers.refusals.slice(-8);
      for (const r of refusedAfter) {
        expect(r.code).toBe(FENCE_SQLSTATE);
        expect(r.message).toContain(fenceId);
        expect(r.message).toContain("follow routing");
      }
      // Every acknowledged write is there (users rows are never deleted).
      const { rows } = await t.db.query<{ n: string }>("SELECT count(*) AS n FROM users WHERE id = ANY($1::bigint[])", [writers.users]);
      expect(Number(rows[0]!.n)).toBe(writers.users.length);
      expect(writers.users.length).toBeGreaterThanOrEqual(40);
    } finally {
      auditing = false;
      await auditLoop;
      await writers.stop();
    }
  }, 60_000);

  test("a writer queued behind the fence's lock fails with 25006 once the fence commits, instead of committing", async () => {
    const t = await tenant();
    const inFlight = await t.session();
    const queued = await t.session();
    const queuedPid = (await queued.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    await inFlight.query("BEGIN");
    await inFlight.query("INSERT INTO users (name, email) VALUES ('in flight', 'inflight@example.com')");

    const fenceId = randomUUID();
    const fencing = fence(t.source, TABLES, { fenceId, lockTimeoutMs: 60_000 });
    await waitingOnLock(t.db, "application_name = 'heliosdb_fence'", []);
    const queuedWrite = queued.query("INSERT INTO users (name, email) VALUES ('queued', 'queued@example.com')").then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    );
    await waitingOnLock(t.db, "pid = $1", [queuedPid]);

    // The transaction in flight commits (acknowledged): the fence gets its lock and commits; the queued writer meets the trigger.
    await inFlight.query("COMMIT");
    await fencing;
    const error = await queuedWrite;
    expect(error?.code).toBe(FENCE_SQLSTATE);
    expect(error?.message).toContain(fenceId);
    const { rows } = await t.db.query<{ email: string }>("SELECT email FROM users WHERE email IN ('inflight@example.com', 'queued@example.com')");
    expect(rows.map((r) => r.email)).toEqual(["inflight@example.com"]);
  }, 60_000);

  test("a writer holding its transaction open: the fence times out and leaves nothing behind; queued writers go on", async () => {
    const t = await tenant();
    const holder = await t.session();
    const queued = await t.session();
    const queuedPid = (await queued.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    await holder.query("BEGIN");
    await holder.query("UPDATE orders SET status = 'held' WHERE id = 1");

    // Long enough for the queued writer to be seen waiting behind the fence before the fence gives up: with 1.5 s a
    // loaded clean CI took longer, the fence timed out first, and the writer never had to wait.
    const fencing = fence(t.source, TABLES, { lockTimeoutMs: 6_000 }).catch((e: unknown) => e);
    await waitingOnLock(t.db, "application_name = 'heliosdb_fence'", []);
    const queuedWrite = queued.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'queued')");
    await waitingOnLock(t.db, "pid = $1", [queuedPid]);

    const error = await fencing;
    expect(error).toBeInstanceOf(FenceError);
    expect((error as FenceError).reason).toBe("lock_timeout");
    // The queued writer was only waiting: it commits, as does the holder, and nothing of the fence is left.
    await queuedWrite;
    await holder.query("COMMIT");
    expect(await fenceTriggers(t.db)).toEqual([]);
    await t.db.query("INSERT INTO users (name, email) VALUES ('after', 'after@example.com')");
  }, 60_000);

  test("a deadlock with a writer (it holds one table and wants another the fence holds) is retried: the writer commits, then the fence", async () => {
    const t = await tenant();
    const writer = await t.session();
    // The fence's wait is the one that finds the deadlock (its deadlock_timeout, 1 s, passes first).
    await writer.query("SET deadlock_timeout = '60s'");
    await writer.query("BEGIN");
    await writer.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'first orders')");

    // LOCK users, orders: users is granted, orders waits for the writer ...
    const fencing = fence(t.source, ["users", "orders"], { lockTimeoutMs: 60_000 }).catch((e: Error) => e);
    await waitingOnLock(t.db, "application_name = 'heliosdb_fence'", []);
    // ... which now wants users: a cycle. PostgreSQL ends the fence's attempt; the writer gets users.
    await writer.query("INSERT INTO users (name, email) VALUES ('then users', 'deadlock@example.com')");
    await writer.query("COMMIT");
    const result = await fencing;
    expect(result).not.toBeInstanceOf(Error);
    if (result instanceof Error) return;
    expect(result.tables).toEqual(["public.users", "public.orders"]);
    // That orders was held past the fence's step is said (by whom — the writer's transaction, unless it committed
    // before the fence looked: "released by then" — depends on timing).
    expect(result.contention[0]).toMatch(/^orders: (client backend RowExclusiveLock \((idle in transaction|active), INSERT INTO (orders|users) |released by then)/);
    expect((await t.db.query("SELECT 1 FROM users WHERE email = 'deadlock@example.com'")).rowCount).toBe(1);
    const refused = await t.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'x')").catch((e: { code?: string }) => e.code);
    expect(refused).toBe(FENCE_SQLSTATE);
  }, 60_000);

  test("writers that take the tables in another order than the one named: the fence takes them in the writers' order after one step, long before deadlock_timeout", async () => {
    const t = await tenant();
    // users, then orders in every transaction; the fence is given orders first.
    const writers = await startTenantWriters(t.session, { writers: 4 });
    try {
      await waitFor(() => writers.committed() >= 40, "writers to commit");
      // A budget below deadlock_timeout (1 s): locking orders, then waiting for users held by a writer that waits for
      // orders, would be a deadlock found only after the budget — the fence would fail.
      const result = await fence(t.source, ["orders", "products", "users"], { lockTimeoutMs: 800 });
      expect(result.tables).toEqual(["public.orders", "public.products", "public.users"]);
      await waitFor(() => writers.refusals.length >= 8, "writers to meet the fence");
      // Refused by the fence only: no writer was made a deadlock's victim.
      expect(new Set(writers.refusals.map((r) => r.code))).toEqual(new Set([FENCE_SQLSTATE]));
      const { rows } = await t.db.query<{ n: string }>("SELECT count(*) AS n FROM users WHERE id = ANY($1::bigint[])", [writers.users]);
      expect(Number(rows[0]!.n)).toBe(writers.users.length);
    } finally {
      await writers.stop();
    }
  }, 60_000);

  test("idempotent, durable across a crash of PostgreSQL, lifted by unfence (also idempotent); partitions are fenced too", async () => {
    const t = await tenant();
    await t.db.query(`CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`);
    const tables = [...TABLES, "events"];
    const first = await fence(t.source, tables);
    const second = await fence(t.source, tables);
    expect(second.finalLsn).toBeGreaterThan(first.finalLsn);
    expect(second.tables).toEqual(["public.users", "public.orders", "public.products", "public.events", "public.events_2024", "public.events_2025"]);
    // One trigger per table, naming the latest fence.
    expect(await fenceTriggers(t.db)).toEqual(["events", "events_2024", "events_2025", "orders", "products", "users"]);

    // PostgreSQL killed (no clean shutdown) and started again: the fence is in the catalog, not in a session.
    await t.db.end();
    await cluster.halt("immediate");
    await cluster.resume();
    const db = await t.session();
    const refused = async (sql: string) => db.query(sql).then(() => "committed", (e: { code?: string; message?: string }) => `${e.code} ${e.message}`);
    expect(await refused("INSERT INTO users (name, email) VALUES ('x', 'x@example.com')")).toMatch(new RegExp(`^25006 .*${second.fenceId}`));
    expect(await refused("UPDATE products SET price = 0")).toMatch(/^25006 /);
    expect(await refused("DELETE FROM orders")).toMatch(/^25006 /);
    expect(await refused("TRUNCATE orders")).toMatch(/^25006 /);
    expect(await refused("INSERT INTO events VALUES (1, '2024-06-01')")).toMatch(/^25006 /);
    // A statement aimed at a partition directly.
    expect(await refused("INSERT INTO events_2025 VALUES (1, '2025-06-01')")).toMatch(/^25006 /);
    expect(await refused("INSERT INTO audit (note) VALUES ('outside the set')")).toBe("committed");
    // Reads go on.
    expect((await db.query("SELECT count(*) FROM users")).rows[0].count).toBe("200");

    expect(await unfence(t.source, tables)).toEqual({
      dropped: ["public.users", "public.orders", "public.products", "public.events", "public.events_2024", "public.events_2025"],
      disabled: [],
      contention: [],
    });
    expect(await fenceTriggers(db)).toEqual([]);
    expect(await refused("INSERT INTO users (name, email) VALUES ('y', 'y@example.com')")).toBe("committed");
    expect(await refused("INSERT INTO events_2025 VALUES (1, '2025-06-01')")).toBe("committed");
    expect(await unfence(t.source, [...tables, "no_such_table"])).toEqual({ dropped: [], disabled: [], contention: [] });
  }, 120_000);

  test("unfence under a long read: writes resume at once; the trigger is dropped once the read ends", async () => {
    const t = await tenant();
    await fence(t.source, TABLES);
    const reader = await t.session();
    await reader.query("BEGIN");
    await reader.query("SELECT count(*) FROM users");
    // DROP TRIGGER wants ACCESS EXCLUSIVE, which waits for the open read: the fence is disabled instead.
    // What held them is said: the open read, on users only.
    expect(await unfence(t.source, TABLES, { lockTimeoutMs: 300 })).toEqual({
      dropped: [],
      disabled: ["public.users", "public.orders", "public.products"],
      contention: [expect.stringMatching(/^users: client backend AccessShareLock \(idle in transaction, SELECT count\(\*\) FROM users\)$/)],
    });
    await t.db.query("INSERT INTO users (name, email) VALUES ('z', 'z@example.com')");
    // Fencing again over the disabled trigger enables it (CREATE OR REPLACE TRIGGER needs no lock the read holds).
    await fence(t.source, TABLES);
    const refused = await t.db.query("INSERT INTO users (name, email) VALUES ('w', 'w@example.com')").catch((e: { code?: string }) => e.code);
    expect(refused).toBe(FENCE_SQLSTATE);
    await reader.query("COMMIT");
    expect(await unfence(t.source, TABLES)).toEqual({ dropped: ["public.users", "public.orders", "public.products"], disabled: [], contention: [] });
    expect(await fenceTriggers(t.db)).toEqual([]);
    await t.db.query("INSERT INTO users (name, email) VALUES ('v', 'v@example.com')");
  }, 60_000);

  test("a table that does not exist: nothing is fenced", async () => {
    const t = await tenant();
    await expect(fence(t.source, ["users", "nope"])).rejects.toThrow(/no table "public"."nope"/);
    expect(await fenceTriggers(t.db)).toEqual([]);
  }, 60_000);
  test("an autovacuum of a tenant table is cancelled, not waited for (PostgreSQL would cancel it only after deadlock_timeout)", async () => {
    const t = await tenant();
    // Waited for, the worker would hold the fence past its budget: the fence's session would wait 10 min to cancel it.
    await t.db.query(`ALTER DATABASE ${t.name} SET deadlock_timeout = '10min'`);
    // orders vacuumed as soon as it has dead rows, at a crawl (100 ms of sleep per page), so that its worker is there to meet.
    await t.db.query(
      "ALTER TABLE orders SET (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1)",
    );
    await t.db.query("INSERT INTO orders (user_id, amount, status) SELECT 1, 1, 'more' FROM generate_series(1, 20000)");
    await t.db.query("ALTER SYSTEM SET autovacuum_naptime = 1");
    await t.db.query("SELECT pg_reload_conf()");
    const vacuuming = async () =>
      (
        await t.db.query(
          `SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation'
            WHERE a.backend_type = 'autovacuum worker' AND l.relation = 'orders'::regclass`,
        )
      ).rows.map((r) => r.pid as number);
    try {
      await t.db.query("UPDATE orders SET amount = amount + 1");
      await waitFor(async () => (await vacuuming()).length > 0, "autovacuum to work on orders", 60_000);
      const worker = (await vacuuming())[0];
      const f = await fence(t.source, TABLES, { lockTimeoutMs: 3_000 });
      expect(f.tables).toEqual(["public.users", "public.orders", "public.products"]);
      expect(await vacuuming()).not.toContain(worker);
    } finally {
      await t.db.query("ALTER SYSTEM RESET autovacuum_naptime");
      await t.db.query("SELECT pg_reload_conf()");
      await unfence(t.source, TABLES);
    }
  }, 120_000);
});
