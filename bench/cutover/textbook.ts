// The textbook cutover, run by a script beside the service on the same
// clusters and under the same load, as an operator does it with PostgreSQL's
// own logical replication:
//
//   1. CREATE SUBSCRIPTION on the new primary (its initial copy, then
//      streaming) — before the clock starts, as our replication is;
//   2. stop the application's writers (here: hold every connection before its
//      next write, and let those in flight finish);
//   3. wait for lag 0: a marker row written on the old primary after the last
//      write is seen on the new one (apply is in commit order), polled every
//      5 ms — quicker than the usual script's sleep;
//   4. copy the sequences' values (logical replication does not carry them);
//   5. switch the writers to the new primary and let them go: each connects
//      to it afresh (an application restarted on its new configuration).
//
// Its downtime is measured as ours is: the longest time no write was
// acknowledged, from the moment the writers are stopped.
import { performance } from "node:perf_hooks";
import type { Cluster } from "@heliosdb/replication-engine/testing";
import pg from "pg";
import { longestSilence, startLoad, type Route } from "./load";

const TABLES = `
  CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, email text NOT NULL, phone text,
                      ssn text, region text NOT NULL DEFAULT 'us', bio text, created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL, amount numeric(12,2) NOT NULL,
                       status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE products (sku text PRIMARY KEY, title text NOT NULL, price numeric(10,2), tags text[], attributes jsonb);`;

export interface TextbookRun {
  downtimeMs: number;
  /** Of it: waiting for lag 0 (the marker), and copying sequences. */
  catchupMs: number;
  sequencesMs: number;
  lostWrites: number;
  acknowledged: number;
  errors: string[];
}

export async function textbookCutover(o: {
  run: number;
  east: Cluster;
  west: Cluster;
  rate: number;
  connections: number;
  users: number;
  log: (line: string) => void;
}): Promise<TextbookRun> {
  const { east, west, run } = o;
  const database = `textbook_${run}`;
  const name = `textbook_${run}`;
  const source = await east.connect("production_db");
  await west.createDatabase(database);
  const target = await west.connect(database);
  let load: ReturnType<typeof startLoad> | undefined;
  try {
    await source.query("DO $$ BEGIN CREATE PUBLICATION bench_textbook FOR TABLE users, orders, products; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    await target.query(TABLES);
    await target.query(`CREATE SUBSCRIPTION ${name} CONNECTION ${pg.escapeLiteral(east.url("production_db"))} PUBLICATION bench_textbook WITH (slot_name = ${pg.escapeLiteral(name)})`);
    const copied = performance.now();
    for (;;) {
      const { rows } = await target.query<{ n: string }>("SELECT count(*) AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'");
      const { rows: all } = await target.query<{ n: string }>("SELECT count(*) AS n FROM pg_subscription_rel");
      if (rows[0]!.n === "0" && all[0]!.n === "3") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    o.log(`textbook ${run}: the subscription copied the tenant in ${((performance.now() - copied) / 1000).toFixed(1)} s and streams`);

    let route: Route = { version: 1n, primary: "east", writesBlocked: false };
    const tag = `t${run}-`;
    load = startLoad({
      rate: o.rate,
      connections: o.connections,
      tag,
      users: o.users,
      routing: async () => route,
      connect: (primary) => (primary === "east" ? east.connect("production_db") : west.connect(database)),
    });
    await new Promise((r) => setTimeout(r, 2_000));

    // The procedure.
    const stopped = performance.now();
    await load.pause();
    const marker = `textbook-marker-${run}`;
    await source.query("INSERT INTO products (sku, title) VALUES ($1, 'marker')", [marker]);
    for (;;) {
      const { rowCount } = await target.query("SELECT 1 FROM products WHERE sku = $1", [marker]);
      if (rowCount) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const caughtUp = performance.now();
    for (const seq of ["users_id_seq", "orders_id_seq"]) {
      const { rows } = await source.query<{ last_value: string; is_called: boolean }>(`SELECT last_value, is_called FROM ${seq}`);
      await target.query("SELECT setval($1, $2, $3)", [seq, rows[0]!.last_value, rows[0]!.is_called]);
    }
    const synced = performance.now();
    route = { version: 2n, primary: "west", writesBlocked: false };
    load.resume();
    const resumed = performance.now();
    // The old primary replicates no more: a write still sent there would be missing on the new one (lost).
    await target.query(`ALTER SUBSCRIPTION ${name} DISABLE`);

    await new Promise((r) => setTimeout(r, 1_000));
    await load.stop();
    const downtimeMs = longestSilence(load.ackTimes, stopped, resumed);
    // Every acknowledged write is on the new primary (the subscription carried those made before the switch).
    const expected = load.expected();
    const { rows: orders } = await target.query<{ status: string }>("SELECT status FROM orders WHERE status LIKE $1", [`${tag}%`]);
    const present = new Set(orders.map((r) => r.status));
    let lost = [...expected.orders].filter((s) => !present.has(s)).length;
    const ids = [...expected.names.keys()];
    const { rows: names } = await target.query<{ id: string; name: string }>("SELECT id::text, name FROM users WHERE id::text = ANY($1)", [ids]);
    const named = new Map(names.map((r) => [r.id, r.name]));
    const renamed = ids.filter((id) => named.get(id) !== expected.names.get(id));
    if (lost || renamed.length) o.log(`textbook ${run}: ${lost} acknowledged insert(s) and ${renamed.length} rename(s) missing on the new primary (e.g. ${[...expected.orders].filter((s) => !present.has(s)).slice(0, 3).join(", ")} ${renamed.slice(0, 3).map((id) => `${id}=${expected.names.get(id)} not ${named.get(id)}`).join(", ")})`);
    lost += renamed.length;
    return {
      downtimeMs,
      catchupMs: caughtUp - stopped,
      sequencesMs: synced - caughtUp,
      lostWrites: lost,
      acknowledged: load.ackTimes.length,
      errors: load.errors,
    };
  } finally {
    await load?.stop().catch(() => undefined);
    await target.query(`DROP SUBSCRIPTION IF EXISTS ${name}`).catch(() => undefined);
    await target.end().catch(() => undefined);
    await source.query("DELETE FROM products WHERE sku LIKE 'textbook-marker-%'").catch(() => undefined);
    await source.end().catch(() => undefined);
    const admin = await west.connect("postgres");
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}
