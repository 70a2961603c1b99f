// A tenant's tables for tests and benchmarks, a writer that keeps changing
// them, and checksums that compare a source with its replica.
import { createHash } from "node:crypto";
import type pg from "pg";

/** Creates users, orders and products and fills them. */
export async function seedTenant(db: pg.ClientBase, users = 2000): Promise<void> {
  await db.query(`
    CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, email text NOT NULL, phone text,
                        ssn text, region text NOT NULL DEFAULT 'us', bio text, created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL, amount numeric(12,2) NOT NULL,
                         status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE products (sku text PRIMARY KEY, title text NOT NULL, price numeric(10,2), tags text[], attributes jsonb);`);
  await db.query(
    `INSERT INTO users (name, email, phone, ssn, region, bio)
     SELECT 'user ' || i, 'user' || i || '@example.com', '+1-555-' || lpad(i::text, 4, '0'),
            lpad((i::bigint * 7919 % 1000000000)::text, 9, '0'), CASE WHEN i % 3 = 0 THEN 'eu' ELSE 'us' END,
            CASE WHEN i % 10 = 0 THEN E'multi\\nline\\ttext \\\\ "quoted" ünïcødé' END
       FROM generate_series(1, $1) i`,
    [users],
  );
  await db.query(
    `INSERT INTO orders (user_id, amount, status) SELECT 1 + i % $1, (i % 1000) / 7.0, 'new' FROM generate_series(1, $1 * 2) i`,
    [users],
  );
  await db.query(
    `INSERT INTO products SELECT 'sku-' || i, 'product ' || i, i * 1.5, ARRAY['a', 'b' || i], jsonb_build_object('i', i)
       FROM generate_series(1, 200) i`,
  );
}

/** The seeded tables and the columns their checksums compare (every column a test changes). */
export const TENANT_COLUMNS: Readonly<Record<"users" | "orders" | "products", string[]>> = {
  users: ["id", "name", "email", "region"],
  orders: ["id", "user_id", "amount", "status"],
  products: ["sku", "title", "price"],
};

/**
 * Writes small transactions (insert, update, delete across the tables) until
 * stopped; returns how many transactions committed.
 */
export function startWriter(db: pg.ClientBase, options: { pauseMs?: number } = {}): { stop: () => Promise<number> } {
  let running = true;
  let committed = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await db.query("BEGIN");
      await db.query("INSERT INTO users (name, email, phone, ssn) VALUES ($1, $2, $3, $4)", [`new ${i}`, `new${i}@example.com`, `+1-777-${i}`, `${100000000 + i}`]);
      await db.query("UPDATE users SET email = 'changed' || id || '@example.com', region = 'eu' WHERE id = (SELECT id FROM users ORDER BY random() LIMIT 1)");
      await db.query("INSERT INTO orders (user_id, amount, status) VALUES ($1, $2, 'new')", [1 + (i % 100), i % 500]);
      await db.query("UPDATE orders SET status = 'paid' WHERE id = (SELECT id FROM orders WHERE status = 'new' ORDER BY id LIMIT 1)");
      if (i % 5 === 0) await db.query("DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)");
      await db.query("COMMIT");
      committed++;
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return committed;
    },
  };
}

/**
 * A checksum of a table's rows, in key order, each value in PostgreSQL's
 * text form (optionally mapped, e.g. to apply the transform the replica
 * applied), with the row count.
 */
export async function tableChecksum(
  db: pg.ClientBase,
  table: string,
  columns: string[],
  map: (column: string, value: string | null) => string | null = (_, v) => v,
): Promise<{ rows: number; sha256: string }> {
  const list = columns.map((c) => `${c}::text AS ${c}`).join(", ");
  const { rows } = await db.query({ text: `SELECT ${list} FROM ${table} ORDER BY 1`, rowMode: "array" });
  const hash = createHash("sha256");
  for (const row of rows as (string | null)[][]) {
    hash.update(JSON.stringify(row.map((v, i) => map(columns[i]!, v))));
  }
  return { rows: rows.length, sha256: hash.digest("hex") };
}

/** Waits until `check` returns true, polling; fails with `what` after `ms`. */
export async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
