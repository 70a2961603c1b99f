// Promoting a replica, against two real clusters: the engine's target tables
// have no column defaults, so an insert that leaves a column out fails (NOT
// NULL) until copyColumnDefaults gives them the source's; checkWritable
// answers as a client's write would — refused by a fence, a read-only
// database, missing privileges — and tenantTables names what a filter selects.
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { checkWritable, copyColumnDefaults, fence, syncSequences, tenantTables, unfence, type TenantDatabase } from "./index";
import { startBench, type Bench } from "../testing/replication";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const side = (cluster: Bench["source"], name: string): TenantDatabase => ({ connection: { connectionString: cluster.url(name) }, schema: "public" });

async function replicated(tables: string[], prepare?: (db: pg.Client) => Promise<void>) {
  const r = await bench.replicate({ tableFilter: tables.map((t) => `${t}.*`) }, { users: 20, ...(prepare ? { prepare } : {}) });
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  await r.caughtUp();
  await r.pipeline.stop();
  return r;
}

test("tenantTables: what the table filter selects, in name order; every table without one", async () => {
  const r = await replicated(["users"]);
  expect(await tenantTables(side(bench.source, r.name), ["users.*", "orders.id"])).toEqual(["orders", "users"]);
  expect(await tenantTables(side(bench.source, r.name), [])).toEqual(["orders", "products", "users"]);
  expect(await tenantTables(side(bench.source, r.name), ["nothing.*"])).toEqual([]);
}, 60_000);

test("copyColumnDefaults: inserts that leave columns out work on the promoted tables; a target's own default is kept; one the target refuses is reported", async () => {
  const r = await replicated(["users", "orders", "labels"], async (db) => {
    await db.query(`CREATE FUNCTION default_label() RETURNS text LANGUAGE sql AS $$ SELECT 'made on the source' $$;
      CREATE TABLE labels (id bigserial PRIMARY KEY, label text NOT NULL DEFAULT default_label(), kind text NOT NULL DEFAULT 'plain', n int DEFAULT 7)`);
  });
  const source = side(bench.source, r.name);
  const target = side(bench.target, r.name);
  // The engine's tables: no default anywhere, so an insert naming only some columns fails.
  await expect(r.replica.query("INSERT INTO users (id, name, email) VALUES (100000, 'x', 'x@example.com')")).rejects.toMatchObject({ code: "23502" });
  await r.replica.query("ALTER TABLE labels ALTER COLUMN n SET DEFAULT 8");

  await syncSequences(source, target, ["users", "orders", "labels"]);
  const copied = await copyColumnDefaults(source, target, ["users", "orders", "labels"]);
  expect(copied.set.map((d) => `${d.table}.${d.column}=${d.expression}`).sort()).toEqual([
    "labels.kind='plain'::text",
    "orders.created_at=now()",
    "users.created_at=now()",
    "users.region='us'::text",
  ]);
  expect(copied.kept).toEqual([{ table: "labels", column: "n", expression: "7" }]);
  // default_label() exists only on the source.
  expect(copied.failed).toHaveLength(1);
  expect(copied.failed[0]).toMatchObject({ table: "labels", column: "label", expression: "default_label()" });
  expect(copied.failed[0]!.error).toMatch(/default_label/);

  const { rows } = await r.replica.query("INSERT INTO users (name, email) VALUES ('promoted', 'p@example.com') RETURNING id, region, created_at");
  expect(rows[0].region).toBe("us");
  expect(rows[0].created_at).toBeInstanceOf(Date);
  expect(Number(rows[0].id)).toBeGreaterThan(20);
  await r.replica.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 2, 'new')");
  const label = await r.replica.query("INSERT INTO labels (label) VALUES ('given') RETURNING kind, n");
  expect(label.rows[0]).toEqual({ kind: "plain", n: 8 });

  // Again: everything is there now (kept), nothing is set twice.
  const again = await copyColumnDefaults(source, target, ["users", "orders", "labels"]);
  expect(again.set).toEqual([]);
  expect(again.kept).toHaveLength(5);
}, 60_000);

test("checkWritable: refused by a fence, by a read-only database and by missing privileges, as a client's write is; writable again once lifted", async () => {
  const r = await replicated(["users", "orders"]);
  const target = side(bench.target, r.name);
  expect(await checkWritable(target, ["users", "orders"])).toEqual({ writable: true, problems: [] });

  await fence(target, ["users"]);
  const fenced = await checkWritable(target, ["users", "orders"]);
  expect(fenced.writable).toBe(false);
  // INSERT, UPDATE and DELETE on users, each refused by the fence; orders is not fenced.
  expect(fenced.problems).toHaveLength(3);
  for (const p of fenced.problems) expect(p).toMatch(/^(INSERT|UPDATE|DELETE) on public\.users: .*fenced.*\(SQLSTATE 25006\)$/);
  await unfence(target, ["users"]);
  expect((await checkWritable(target, ["users", "orders"])).writable).toBe(true);

  await r.replica.query(`ALTER DATABASE ${r.name} SET default_transaction_read_only = on`);
  try {
    const readOnly = await checkWritable(target, ["orders"]);
    expect(readOnly.writable).toBe(false);
    expect(readOnly.problems.every((p) => p.endsWith("(SQLSTATE 25006)"))).toBe(true);
  } finally {
    await r.replica.query(`ALTER DATABASE ${r.name} RESET default_transaction_read_only`);
  }

  await r.replica.query(`CREATE ROLE reader_${r.name} LOGIN PASSWORD 'reader'; GRANT SELECT ON users TO reader_${r.name}`);
  const reader: TenantDatabase = {
    connection: { connectionString: bench.target.url(r.name).replace(/\/\/[^@]+@/, `//reader_${r.name}:reader@`) },
    schema: "public",
  };
  const denied = await checkWritable(reader, ["users"]);
  expect(denied.writable).toBe(false);
  expect(denied.problems.some((p) => p.startsWith("INSERT on public.users") && p.endsWith("(SQLSTATE 42501)"))).toBe(true);
}, 60_000);
