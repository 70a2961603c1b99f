// The invariant every failover test ends with, checked with the writers
// stopped (test/failover/writers.ts):
//
// 1. Every write a client saw acknowledged is on the new primary: each row
//    the writers' acknowledged transactions left is there exactly as the last
//    one left it (deleted orders absent), and no row of theirs is there that
//    no acknowledged transaction wrote.
// 2. Nothing lost, nothing duplicated at the fence: the old primary, as the
//    fence froze it (a snapshot taken after the fence: a reverse replication
//    later rewrites it), and the new primary hold the same rows (checksums
//    over every row) — but those the writers changed on the new primary
//    after the switch.
// 3. Sequences continue without collision: every id the new primary handed
//    out is past every id the old one holds (and every insert there
//    succeeded: the writers met no error but the fence's).
// 4. The old primary accepts no write: an insert there fails with 25006.
import { createHash } from "node:crypto";
import type pg from "pg";
import { expect } from "vitest";
import type { RoutedWriters } from "./writers";

const COLUMNS: Record<Table, { key: string; columns: string }> = {
  users: { key: "id", columns: "id::text, name, email, region, created_at::text" },
  orders: { key: "id", columns: "id::text, user_id::text, amount::text, status, created_at::text" },
  products: { key: "sku", columns: "sku, title, price::text, tags::text, attributes::text" },
};

type Table = "users" | "orders" | "products";

/** Every row of the tenant's tables, each as its columns' text, in key order. */
export type Snapshot = Record<Table, (string | null)[][]>;

export async function snapshot(db: pg.ClientBase): Promise<Snapshot> {
  const out = {} as Snapshot;
  for (const [table, { key, columns }] of Object.entries(COLUMNS) as [Table, (typeof COLUMNS)[Table]][]) {
    out[table] = (await db.query({ text: `SELECT ${columns} FROM ${table} ORDER BY ${key}`, rowMode: "array" })).rows;
  }
  return out;
}

// The rows' checksum, but those whose key is in `except`.
function checksum(rows: (string | null)[][], except: Set<string>): { rows: number; sha256: string } {
  const hash = createHash("sha256");
  let n = 0;
  for (const row of rows) {
    if (except.has(row[0]!)) continue;
    hash.update(JSON.stringify(row));
    n++;
  }
  return { rows: n, sha256: hash.digest("hex") };
}

export async function expectFailoverInvariants(o: {
  writers: RoutedWriters;
  tag: string;
  /** The old primary as the fence left it (taken after the fence, before anything else wrote there). */
  oldAtFence: Snapshot;
  oldPrimary: pg.ClientBase;
  newPrimary: pg.ClientBase;
  /** The new primary as the writers name it ("connection_id/database"). */
  newKey: string;
}): Promise<void> {
  const { writers, oldPrimary, newPrimary } = o;
  expect(writers.errors).toEqual([]);

  // 1. Every acknowledged write, as the last one left its row; nothing of theirs that none wrote.
  const expected = writers.expected();
  const users = await newPrimary.query<{ id: string; name: string; email: string }>("SELECT id::text, name, email FROM users WHERE name LIKE $1 || '%' ORDER BY id", [o.tag]);
  expect(new Map(users.rows.map((u) => [u.id, u]))).toEqual(expected.users);
  const ids = [...expected.users.keys()];
  const orders = await newPrimary.query<{ id: string; user_id: string; amount: string; status: string }>(
    "SELECT id::text, user_id::text, amount::text, status FROM orders WHERE user_id::text = ANY($1) ORDER BY id",
    [ids],
  );
  expect(new Map(orders.rows.map((r) => [r.id, r]))).toEqual(expected.orders);

  // 2. The old primary at the fence against the new one, every row but those written after the switch.
  const touched = writers.touchedOn(o.newKey);
  const now = await snapshot(newPrimary);
  for (const table of ["users", "orders", "products"] as const) {
    const except = table === "users" ? touched.users : table === "orders" ? touched.orders : new Set<string>();
    expect(checksum(now[table], except), table).toEqual(checksum(o.oldAtFence[table], except));
  }

  // 3. Ids handed out by the new primary's sequences: past every id of the old primary.
  for (const table of ["users", "orders"] as const) {
    const max = o.oldAtFence[table].reduce((m, row) => (BigInt(row[0]!) > m ? BigInt(row[0]!) : m), 0n);
    const after = [...(table === "users" ? touched.users : touched.orders)].filter((id) =>
      writers.acks.some((a) => a.primary === o.newKey && (table === "users" ? a.users[0]!.id === id : a.orders[0]!.id === id)),
    );
    expect(after.length, `inserts into ${table} on the new primary`).toBeGreaterThan(0);
    for (const id of after) expect(BigInt(id) > max, `${table} ${id} after ${max}`).toBe(true);
  }

  // 4. The old primary refuses writes: the fence stands.
  await expect(oldPrimary.query("INSERT INTO users (name, email) VALUES ('late', 'late@example.com')")).rejects.toMatchObject({ code: "25006" });
  await expect(oldPrimary.query("UPDATE orders SET status = 'late' WHERE id = (SELECT min(id) FROM orders)")).rejects.toMatchObject({ code: "25006" });
}
