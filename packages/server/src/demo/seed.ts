// The demo's tenants: tenant-123 in production_db (users with email, phone
// and ssn, orders, products), tenant-456 in a database of its own.
import pg from "pg";
import { writerPool, type Acknowledged } from "./routed-pool";

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

/** Where a tenant's writes go: a RoutedPool (its routing followed), or one fixed database (fixedPrimary). */
export interface TenantWrites {
  transaction<T>(fn: (client: pg.ClientBase) => Promise<T>): Promise<Acknowledged<T>>;
  end(): Promise<void>;
}

/** A transaction of the writer's whose COMMIT returned: its tenant, the primary it committed on, the order it inserted (tenant-123). */
export interface DemoAck {
  tenantId: string;
  primary: string;
  orderId?: string;
}

/** One database, whatever routing says (a tenant no failover moves, and tests). */
export function fixedPrimary(connectionString: string): TenantWrites {
  const pool = writerPool({ connectionString });
  const primary = new URL(connectionString).pathname.slice(1);
  return {
    async transaction(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        return { result, primary };
      } catch (e) {
        broken = e as Error;
        await client.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        client.release(broken ?? false);
      }
    },
    end: () => pool.end(),
  };
}

/**
 * Keeps the tenants changing a few rows a second, so lag and throughput are
 * alive: tenant-123 an order placed and one paid (and now and then a
 * product's stock) in one transaction per tick, tenant-456 an invoice every
 * third. Each tenant writes on its own loop, so one waiting for its routing
 * does not hold the other up. When a database goes away the writer says so
 * once, and once again when writing resumes; `onAcknowledged` hears each
 * committed transaction.
 */
export function startDemoWriter(
  tenants: { tenant123: TenantWrites; tenant456: TenantWrites },
  log: (line: string) => void,
  options: { intervalMs?: number; onAcknowledged?: (ack: DemoAck) => void } = {},
): DemoWriter {
  const intervalMs = options.intervalMs ?? 400;
  let i = 0;
  const tenant123 = loop("tenant-123", intervalMs, log, async () => {
    i++;
    const ack = await tenants.tenant123.transaction(async (db) => {
      const { rows } = await db.query<{ id: string }>(
        "INSERT INTO orders (user_id, amount) VALUES (1 + floor(random() * 5000)::int, round((random() * 500)::numeric, 2)) RETURNING id::text",
      );
      await db.query("UPDATE orders SET status = 'paid' WHERE id = (SELECT id FROM orders WHERE status = 'new' ORDER BY id LIMIT 1)");
      if (i % 5 === 0) await db.query("UPDATE products SET stock = stock - 1 WHERE sku = 'SKU-' || lpad((1 + floor(random() * 800))::int::text, 5, '0')");
      return rows[0]!.id;
    });
    options.onAcknowledged?.({ tenantId: "tenant-123", primary: ack.primary, orderId: ack.result });
  });
  const tenant456 = loop("tenant-456", intervalMs * 3, log, async () => {
    const ack = await tenants.tenant456.transaction((db) =>
      db.query("INSERT INTO invoices (account_id, total) VALUES (1 + floor(random() * 2000)::int, round((random() * 900)::numeric, 2))"),
    );
    options.onAcknowledged?.({ tenantId: "tenant-456", primary: ack.primary });
  });
  return {
    async stop(ms = 2_000) {
      // Together: a tick waiting for its routing ends when its pool does.
      const ended = Promise.all([tenant123.stop(), tenant456.stop(), tenants.tenant123.end(), tenants.tenant456.end()]);
      await Promise.race([ended.catch(() => undefined), new Promise((r) => setTimeout(r, ms).unref())]);
    },
  };
}

// A tick every `ms`, skipped while the last one still waits for its database; an outage said once, and its end.
function loop(tenant: string, ms: number, log: (line: string) => void, tick: () => Promise<void>): { stop(): Promise<void> } {
  let writing: Promise<void> | undefined;
  let down = false;
  let stopped = false;
  const timer = setInterval(() => {
    if (writing) return;
    writing = tick()
      .then(() => {
        if (down) log(`demo writer: ${tenant}'s database answers again; writing resumed`);
        down = false;
      })
      .catch((e: unknown) => {
        // A tick the stop interrupted is no outage.
        if (!down && !stopped) log(`demo writer: cannot write ${tenant}'s data (${(e as Error)?.message ?? String(e)}); writing resumes when its database answers`);
        down = true;
      })
      .finally(() => (writing = undefined));
  }, ms);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await writing;
    },
  };
}
