// The event log on a real control plane: ids in the order events commit,
// a reader bounded by the head misses none while appenders from two pools
// (two servers) commit out of order, and retention marks what it removed.
import { randomUUID } from "node:crypto";
import pg from "pg";
import { expect, test } from "vitest";
import { controlPlanePerFile } from "../testing/control-plane";
import { EventStore, type EventRecord } from "./events";

const cp = controlPlanePerFile();

const event = (replicationId: string, n: number, tenantId = "tenant-123"): EventRecord => ({
  replicationId,
  tenantId,
  type: "StatusChanged",
  severity: "Info",
  message: `event ${n}`,
  details: { n, note: "x" },
});

test("records each event with its replication, tenant and details (as strings), ids ascending in the order recorded", async () => {
  const events = new EventStore(cp().pool);
  const id = randomUUID();
  const first = await events.record({ replicationId: id, tenantId: "tenant-123", type: "StatusChanged", severity: "Info", message: "Syncing", details: { from: "Initializing" } });
  const [second, third] = await events.append([
    { replicationId: id, tenantId: "tenant-123", type: "ReplicationError", severity: "Error", message: "boom", details: { retry_count: 3 } },
    { replicationId: id, tenantId: "tenant-123", type: "ReplicationRecovered", severity: "Info", message: "back", details: {} },
  ]);
  expect([second! - first, third! - first]).toEqual([1n, 2n]);
  const page = await events.read(first - 1n, { replicationId: id, severities: [], types: [] }, 10);
  expect(page.events.map((e) => [e.id, e.type, e.severity, e.message, e.details])).toEqual([
    [first, "StatusChanged", "Info", "Syncing", { from: "Initializing" }],
    [second, "ReplicationError", "Error", "boom", { retry_count: "3" }],
    [third, "ReplicationRecovered", "Info", "back", {}],
  ]);
  expect(page.head).toBe(third);
  const errors = await events.read(first - 1n, { replicationId: id, severities: ["Error", "Critical"], types: [] }, 10);
  expect(errors.events.map((e) => e.id)).toEqual([second]);
  const other = await events.read(first - 1n, { tenantId: "tenant-456", severities: [], types: [] }, 10);
  expect(other.events).toEqual([]);
});

test("an INSERT that takes no id from the log is refused (nothing slips past the cursor)", async () => {
  await expect(cp().pool.query("INSERT INTO events (event_type, severity, message) VALUES ('X', 'Info', 'x')")).rejects.toThrow(/null value|not-null/);
});

test("an append waits while an earlier one is uncommitted, so no reader sees a later id before an earlier one (the race a bigserial loses)", async () => {
  const id = randomUUID();
  const reader = new EventStore(cp().pool);
  const before = (await reader.head()).head;
  const first = await cp().pool.connect();
  const other = new pg.Pool({ connectionString: cp().url(), max: 1 });
  try {
    await first.query("BEGIN");
    const [earlier] = await new EventStore(first as unknown as pg.Pool).append([event(id, 1)]);
    // Another server's append, while the first is still open: it waits for the first to commit.
    const later = new EventStore(other).append([event(id, 2)]);
    const waiting = async () =>
      (await cp().pool.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE event_log%'")).rowCount === 1;
    for (let i = 0; !(await waiting()); i++) {
      if (i > 2000) throw new Error("the second append never waited");
      await new Promise((r) => setTimeout(r, 5));
    }
    // Meanwhile a reader sees neither: the head has not moved.
    const during = await reader.read(before, { replicationId: id, severities: [], types: [] }, 10);
    expect(during.events).toEqual([]);
    expect(during.head).toBe(before);
    await first.query("COMMIT");
    const [after] = await later;
    expect(after).toBe(earlier! + 1n);
    const page = await reader.read(before, { replicationId: id, severities: [], types: [] }, 10);
    expect(page.events.map((e) => e.id)).toEqual([earlier, after]);
  } finally {
    await first.query("ROLLBACK").catch(() => undefined);
    first.release();
    await other.end();
  }
});

test("appenders on two pools, some holding their transaction open, and a reader that pages by the head: every event once, none lost", async () => {
  const pools = [new pg.Pool({ connectionString: cp().url(), max: 6 }), new pg.Pool({ connectionString: cp().url(), max: 6 })];
  try {
    const id = randomUUID();
    const reader = new EventStore(cp().pool);
    const start = (await reader.head()).head;
    let running = true;
    const seen: bigint[] = [];
    const read = (async () => {
      let position = start;
      for (let idle = 0; running || idle < 2; ) {
        const page = await reader.read(position, { replicationId: id, severities: [], types: [] }, 50);
        for (const e of page.events) {
          seen.push(e.id);
          position = e.id;
        }
        if (page.more) continue;
        position = page.head > position ? page.head : position;
        if (!running) idle++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const appended: bigint[] = [];
    // Twelve appenders, six per pool: each append in a transaction that stays open for a while after
    // it (as an append inside a larger transaction would), so that commits come in another order than
    // INSERTs would have without the log's ordering.
    const appenders = Array.from({ length: 12 }, async (_, a) => {
      const pool = pools[a % 2]!;
      for (let i = 0; i < 25; i++) {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          const ids = await new EventStore(client as unknown as pg.Pool).append([event(id, i), event(id, i)]);
          await client.query("SELECT pg_sleep($1)", [((a * 7 + i * 3) % 5) / 1000]);
          await client.query("COMMIT");
          appended.push(...ids);
        } finally {
          client.release();
        }
      }
    });
    await Promise.all(appenders);
    running = false;
    await read;
    expect(appended).toHaveLength(12 * 25 * 2);
    expect(seen).toHaveLength(appended.length);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort((x, y) => (x < y ? -1 : 1))).toEqual([...appended].sort((x, y) => (x < y ? -1 : 1)));
    // In order, and dense: the cursor is the commit order.
    expect(seen).toEqual([...seen].sort((x, y) => (x < y ? -1 : 1)));
    expect(seen[seen.length - 1]! - seen[0]!).toBe(BigInt(seen.length - 1));
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
}, 120_000);

test("a page of large events is cut by bytes, keeps at least one, and says more follow; paging by it reads each once", async () => {
  const events = new EventStore(cp().pool);
  const id = randomUUID();
  const big = (n: number): EventRecord => ({ ...event(id, n), message: `${n}:`.padEnd(100_000, "x") });
  const ids = await events.append(Array.from({ length: 25 }, (_, n) => big(n)));
  const query = { replicationId: id, severities: [], types: [] };
  // 25 events of about 100 kB under a 1 MiB bound: pages of 11 (the 11th starts under the bound), 11 and 3.
  const sizes: number[] = [];
  const seen: bigint[] = [];
  let position = ids[0]! - 1n;
  for (;;) {
    const page = await events.read(position, query, 500);
    sizes.push(page.events.length);
    seen.push(...page.events.map((e) => e.id));
    if (!page.more) break;
    position = page.events.at(-1)!.id;
  }
  expect(sizes).toEqual([11, 11, 3]);
  expect(seen).toEqual(ids);
  // An event larger than the bound alone still makes a page of one.
  const one = await events.read(ids[0]! - 1n, query, 500, 1000);
  expect(one.events.map((e) => e.id)).toEqual([ids[0]]);
  expect(one.more).toBe(true);
  // The count bound still holds, and a page that ends at the log's last match says so.
  expect((await events.read(ids[0]! - 1n, query, 4)).events).toHaveLength(4);
  expect((await events.read(ids[23]!, query, 500)).more).toBe(false);
});

test("retention removes a prefix of the log and marks it; the newest rows stay", async () => {
  const events = new EventStore(cp().pool, { maxAgeDays: 30, maxRows: 5 });
  const id = randomUUID();
  await events.append(Array.from({ length: 8 }, (_, n) => event(id, n)));
  // One event older than the age bound, whatever its id.
  await cp().pool.query("UPDATE events SET created_at = now() - interval '31 days' WHERE id = (SELECT min(id) FROM events)");
  await events.prune();
  const { head, prunedThrough } = await events.head();
  expect(prunedThrough).toBe(head - 5n);
  const { rows } = await cp().pool.query<{ n: number; min: string }>("SELECT count(*)::int AS n, min(id)::text AS min FROM events");
  expect(rows[0]!.n).toBe(5);
  expect(BigInt(rows[0]!.min)).toBe(prunedThrough + 1n);
});
