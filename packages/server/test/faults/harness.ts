// What the fault suite shares: a write load of transactions of varied
// length that survives its database going away, a transaction left open
// across a fault, and the check every case ends with — the API says the
// replication has applied everything the source committed, and source and
// target are equal table by table, with no conflict.
import { setTimeout as sleep } from "node:timers/promises";
import { tableChecksum, TENANT_COLUMNS, waitFor, type Cluster } from "@heliosdb/replication-engine/testing";
import { expect } from "vitest";
import type { Answer } from "../../src/testing/world";

export const TABLES: Record<string, string[]> = TENANT_COLUMNS;

type Rest = (method: string, path: string, body?: unknown) => Promise<Answer>;

/**
 * Two sessions writing transactions of 1 to 30 statements (inserts, updates
 * and deletes across users, orders and products), a third of them held open
 * for up to 300 ms, until stopped. A session whose database went away is
 * opened again once it answers.
 */
export function startLoad(cluster: Cluster, database: string): { stop(): Promise<number> } {
  let running = true;
  let committed = 0;
  const session = async (seed: number) => {
    let db: Awaited<ReturnType<Cluster["connect"]>> | undefined;
    for (let i = 0; running; i++) {
      try {
        db ??= await cluster.connect(database);
        const statements = 1 + ((i * 7 + seed) % 30);
        await db.query("BEGIN");
        for (let s = 0; s < statements; s++) {
          const n = i * 31 + s + seed * 100_000;
          switch (s % 5) {
            case 0:
              await db.query("INSERT INTO orders (user_id, amount, status) VALUES ($1, $2, 'load')", [1 + (n % 100), n % 997]);
              break;
            case 1:
              await db.query("UPDATE users SET name = $2, region = CASE WHEN region = 'us' THEN 'eu' ELSE 'us' END WHERE id = $1", [1 + (n % 200), `load ${n}`]);
              break;
            case 2:
              await db.query("DELETE FROM orders WHERE id = (SELECT min(id) FROM orders WHERE status = 'load')");
              break;
            case 3:
              // sku-1 … sku-100: the transactions left open delete from the other half.
              await db.query("UPDATE products SET price = $2 WHERE sku = $1", [`sku-${1 + (n % 100)}`, n % 500]);
              break;
            default:
              await db.query("INSERT INTO users (name, email) VALUES ($1, $2)", [`load ${n}`, `load${n}@example.com`]);
          }
        }
        if (i % 3 === 0) await sleep(i % 300);
        await db.query("COMMIT");
        committed++;
      } catch {
        // The database went away (or a deadlock between the two sessions): start over on a new session.
        await db?.end().catch(() => undefined);
        db = undefined;
        await sleep(200);
      }
    }
    await db?.end().catch(() => undefined);
  };
  const sessions = [session(1), session(2)];
  return {
    async stop() {
      running = false;
      await Promise.all(sessions);
      return committed;
    },
  };
}

let opened = 0;

/**
 * A transaction left open on a session of its own: updates, inserts and
 * deletes in every table, on rows the load does not touch (it must not wait
 * for them). `end()` rolls it back if it is still open (a test that failed).
 */
export async function openTransaction(cluster: Cluster, database: string): Promise<{ commit(): Promise<void>; end(): Promise<void> }> {
  const n = ++opened;
  const tx = await cluster.connect(database);
  await tx.query("BEGIN");
  // Users 1 … 200 are the load's.
  await tx.query("UPDATE users SET name = $1 WHERE id BETWEEN $2 AND $2 + 9", [`in flight ${n}`, 200 + n * 10]);
  await tx.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, $1 FROM generate_series(1, 25) i", [`in flight ${n}`]);
  await tx.query("DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE status = 'new' ORDER BY id LIMIT 3)");
  await tx.query("INSERT INTO products (sku, title, price) VALUES ($1, 'in flight', $2)", [`sku-in-flight-${n}`, n]);
  await tx.query("DELETE FROM products WHERE sku = $1", [`sku-${200 - n}`]);
  let open = true;
  return {
    async commit() {
      await tx.query("COMMIT");
      open = false;
      await tx.end();
    },
    async end() {
      if (open) await tx.end().catch(() => undefined);
      open = false;
    },
  };
}

/** The replication as GET shows it. */
export async function replication(rest: Rest, id: string) {
  const res = await rest("GET", `/replications/${id}`);
  if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function waitForStatus(rest: Rest, id: string, status: string, ms = 60_000) {
  await waitFor(async () => (await replication(rest, id)).status === status, `status ${status}`, ms);
}

/**
 * Waits until the API reports a checkpoint at or past the source's WAL
 * position now, then compares every table of the source with the replica:
 * nothing missing, nothing extra, no conflict.
 */
export async function expectConverged(rest: Rest, id: string, source: Cluster, target: Cluster, replicaDb: string, tables = Object.keys(TABLES)) {
  const db = await source.connect("production_db");
  const replica = await target.connect(replicaDb);
  try {
    const { rows } = await db.query<{ lsn: string }>("SELECT (pg_current_wal_lsn() - '0/0')::text AS lsn");
    const wanted = Number(rows[0]!.lsn);
    await waitFor(async () => {
      const r = await replication(rest, id);
      return r.status === "Streaming" && Number(r.current_state?.last_checkpoint?.lsn ?? 0) >= wanted;
    }, "the API to report the replica caught up", 60_000);
    for (const table of tables) {
      expect(await tableChecksum(replica, table, TABLES[table]!), table).toEqual(await tableChecksum(db, table, TABLES[table]!));
    }
    const r = await replication(rest, id);
    expect(r.statistics.conflicts_detected).toBe(0);
    expect(r.health).toBe("Healthy");
    return r;
  } finally {
    await Promise.all([db.end(), replica.end()]);
  }
}

/** The replication's events as the control plane recorded them, oldest first. */
export async function events(pool: { query: (sql: string, params: unknown[]) => Promise<{ rows: unknown[] }> }, id: string) {
  const { rows } = await pool.query("SELECT event_type, severity, message, details FROM events WHERE replication_id = $1 ORDER BY id", [id]);
  return rows as { event_type: string; severity: string; message: string; details: Record<string, string> }[];
}

/** The status changes recorded for a replication: none goes from a status to itself, each starts where the one before ended. */
export function expectStatusChainConsistent(recorded: Awaited<ReturnType<typeof events>>) {
  const changes = recorded.filter((e) => e.event_type === "StatusChanged").map((e) => e.details);
  changes.forEach((c, i) => {
    expect(c.from, JSON.stringify(c)).not.toBe(c.to);
    if (i > 0) expect(c.from, JSON.stringify(changes.slice(i - 1, i + 1))).toBe(changes[i - 1]!.to);
  });
  return changes;
}
