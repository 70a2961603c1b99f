// Concurrent writers on a seeded tenant (testing/tenant.ts) for cutover
// tests: each connection runs small transactions (insert, update, delete
// across users and orders) that stay open for a moment, so some are always
// in flight; a refused or failed transaction is rolled back and the writer
// goes on. What they record is what a client knows: which writes were
// acknowledged (COMMIT returned), and which were refused, with what error.
import type pg from "pg";

export interface Refusal {
  code: string;
  message: string;
}

export interface TenantWriters {
  /** users ids whose insert was acknowledged (users rows are never deleted). */
  readonly users: string[];
  /** orders ids whose insert was acknowledged, and those whose delete was. */
  readonly orders: string[];
  readonly deletedOrders: string[];
  /** Transactions acknowledged, in all. */
  committed(): number;
  /** Errors the writers' transactions failed with, in order. */
  readonly refusals: Refusal[];
  /** Refusals per writer connection (a writer that has been refused since a point has met the fence). */
  refusedBy(writer: number): number;
  /** Stops every writer after its current transaction and closes the connections. */
  stop(): Promise<void>;
}

export async function startTenantWriters(
  connect: () => Promise<pg.Client>,
  options: { writers?: number; holdMs?: number } = {},
): Promise<TenantWriters> {
  const count = options.writers ?? 4;
  const holdMs = options.holdMs ?? 2;
  const clients = await Promise.all(Array.from({ length: count }, connect));
  const users: string[] = [];
  const orders: string[] = [];
  const deletedOrders: string[] = [];
  const refusals: Refusal[] = [];
  const refused = new Array<number>(count).fill(0);
  let committed = 0;
  let running = true;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const loops = clients.map(async (db, w) => {
    for (let i = 0; running; i++) {
      try {
        await db.query("BEGIN");
        const user = await db.query<{ id: string }>("INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id", [`w${w} ${i}`, `w${w}.${i}@example.com`]);
        // Held open: the fence finds transactions in flight.
        await sleep(holdMs);
        await db.query("UPDATE users SET region = 'eu', email = 'changed.' || id || '@example.com' WHERE id = (SELECT id FROM users ORDER BY random() LIMIT 1)");
        const order = await db.query<{ id: string }>("INSERT INTO orders (user_id, amount, status) VALUES ($1, $2, 'new') RETURNING id", [user.rows[0]!.id, (i % 500) + 0.25]);
        await db.query("UPDATE orders SET status = 'paid' WHERE id = (SELECT id FROM orders WHERE status = 'new' ORDER BY id LIMIT 1)");
        const deleted = i % 5 === 0 ? await db.query<{ id: string }>("DELETE FROM orders WHERE id = (SELECT min(id) FROM orders) RETURNING id") : undefined;
        await db.query("COMMIT");
        committed++;
        users.push(user.rows[0]!.id);
        orders.push(order.rows[0]!.id);
        deletedOrders.push(...(deleted?.rows.map((r) => r.id) ?? []));
      } catch (e) {
        await db.query("ROLLBACK").catch(() => undefined);
        const error = e as { code?: string; message?: string };
        refusals.push({ code: error.code ?? "?", message: error.message ?? String(e) });
        refused[w]!++;
        // A fenced writer keeps trying, as a client that has not heard of the switch would.
        await sleep(5);
      }
    }
  });
  return {
    users,
    orders,
    deletedOrders,
    committed: () => committed,
    refusals,
    refusedBy: (w) => refused[w]!,
    async stop() {
      running = false;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    },
  };
}
