// The demo's tenants: tenant-123 in production_db (users with email, phone
// and ssn, orders, products), tenant-456 in a database of its own.
import pg from "pg";

export async function seedTenant123(db: pg.ClientBase): Promise<void> {
  const { rowCount } = await db.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'users'");
  if (rowCount) return;
  await db.query(`
    CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, email text NOT NULL, phone text, ssn text,
                        region text NOT NULL DEFAULT 'us', created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, amount numeric(12,2) NOT NULL,
                         status text NOT NULL DEFAULT 'new', created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE products (sku text PRIMARY KEY, title text NOT NULL, price numeric(10,2) NOT NULL, stock integer NOT NULL);
    INSERT INTO users (name, email, phone, ssn, region)
      SELECT 'Customer ' || i, 'customer' || i || '@example.com', '+1-555-' || lpad(i::text, 4, '0'),
             lpad((i * 7919 % 1000000000)::text, 9, '0'), (ARRAY['us', 'eu', 'apac'])[1 + i % 3]
        FROM generate_series(1, 5000) i;
    INSERT INTO orders (user_id, amount, status)
      SELECT 1 + i % 5000, round((i % 997) * 1.37, 2), (ARRAY['new', 'paid', 'shipped'])[1 + i % 3] FROM generate_series(1, 12000) i;
    INSERT INTO products SELECT 'SKU-' || lpad(i::text, 5, '0'), 'Product ' || i, round(i * 2.5, 2), i % 100 FROM generate_series(1, 800) i;`);
}

export async function seedTenant456(db: pg.ClientBase): Promise<void> {
  const { rowCount } = await db.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'accounts'");
  if (rowCount) return;
  await db.query(`
    CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text NOT NULL, email text NOT NULL, balance numeric(14,2) NOT NULL DEFAULT 0);
    CREATE TABLE invoices (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts, total numeric(12,2) NOT NULL,
                           issued_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO accounts (owner, email, balance) SELECT 'Account ' || i, 'billing' || i || '@tenant456.example', i * 10 FROM generate_series(1, 2000) i;
    INSERT INTO invoices (account_id, total) SELECT 1 + i % 2000, (i % 500) + 0.99 FROM generate_series(1, 6000) i;`);
}

export interface DemoWriter {
  /** Stops writing and closes its connections (bounded by ms, default 2 s). */
  stop(ms?: number): Promise<void>;
}

/**
 * Keeps the tenants changing a few rows a second, so lag and throughput are
 * alive. Each database is written through a pool, so a session its server
 * ended is replaced by a fresh one at the next tick: when the database goes
 * away the writer says so once, and once again when writing resumes.
 */
export function startDemoWriter(tenant123Url: string, tenant456Url: string, log: (line: string) => void, intervalMs = 400): DemoWriter {
  const pool = (connectionString: string) => {
    const p = new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000 });
    p.on("error", () => undefined); // an idle session ended by the server: the next query reports the outage
    return p;
  };
  const tenant123 = pool(tenant123Url);
  const tenant456 = pool(tenant456Url);
  let i = 0;
  let writing: Promise<void> | undefined;
  let down = false;
  const tick = async () => {
    i++;
    await tenant123.query("INSERT INTO orders (user_id, amount) VALUES (1 + floor(random() * 5000)::int, round((random() * 500)::numeric, 2))");
    await tenant123.query("UPDATE orders SET status = 'paid' WHERE id = (SELECT id FROM orders WHERE status = 'new' ORDER BY id LIMIT 1)");
    if (i % 5 === 0) await tenant123.query("UPDATE products SET stock = stock - 1 WHERE sku = 'SKU-' || lpad((1 + floor(random() * 800))::int::text, 5, '0')");
    if (i % 3 === 0) await tenant456.query("INSERT INTO invoices (account_id, total) VALUES (1 + floor(random() * 2000)::int, round((random() * 900)::numeric, 2))");
  };
  const timer = setInterval(() => {
    if (writing) return; // the last tick still waits for its database
    writing = tick()
      .then(() => {
        if (down) log("demo writer: the database answers again; writing resumed");
        down = false;
      })
      .catch((e: unknown) => {
        if (!down) log(`demo writer: cannot write (${(e as Error)?.message ?? String(e)}); writing resumes when the database answers`);
        down = true;
      })
      .finally(() => (writing = undefined));
  }, intervalMs);
  timer.unref();
  return {
    async stop(ms = 2_000) {
      clearInterval(timer);
      const ended = Promise.all([writing, tenant123.end(), tenant456.end()]).catch(() => undefined);
      await Promise.race([ended, new Promise((r) => setTimeout(r, ms).unref())]);
    },
  };
}
