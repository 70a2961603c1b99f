// A source transaction open across a pipeline start must arrive whole,
// whatever kind of start it is: the first, a resume after pause, a new
// process taking over, a restart with a changed table filter or row filter.
// Each case runs under a write load, whose transactions the walsender
// decodes between the start and the in-flight commit (that is what made a
// re-created publication lose changes), and ends with source and replica
// equal by checksum, with no conflict (nothing applied twice).
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ReplicationPipeline } from "./pipeline";
import { startBench, type Bench } from "./testing/replication";
import { startWriter, tableChecksum, TENANT_COLUMNS, waitFor } from "./testing/tenant";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const COLUMNS: Record<string, string[]> = TENANT_COLUMNS;

let opened = 0;

/** A transaction left open on its own session: updates, inserts and deletes in every table. */
async function inFlight(name: string): Promise<{ commit(): Promise<void> }> {
  const n = ++opened;
  const tx = await bench.source.connect(name);
  await tx.query("BEGIN");
  await tx.query("UPDATE users SET name = 'in flight', region = CASE WHEN region = 'us' THEN 'eu' ELSE 'us' END WHERE id <= 12");
  await tx.query("INSERT INTO orders (user_id, amount, status) SELECT 1, i, 'in flight' FROM generate_series(1, 50) i");
  await tx.query("DELETE FROM orders WHERE id IN (3, 4, 5)");
  await tx.query("DELETE FROM products WHERE sku IN ('sku-1', 'sku-2')");
  await tx.query("UPDATE products SET title = 'in flight' WHERE sku = 'sku-3'");
  await tx.query("INSERT INTO products (sku, title, price) VALUES ($1, 'in flight', 1)", [`sku-new-${n}`]);
  return {
    async commit() {
      await tx.query("COMMIT");
      await tx.end();
    },
  };
}

async function expectReplicated(db: pg.Client, replica: pg.Client, tables: string[], where: Record<string, string> = {}) {
  for (const table of tables) {
    const columns = COLUMNS[table]!;
    const filtered = where[table] ? `(SELECT * FROM ${table} WHERE ${where[table]}) AS ${table}` : table;
    expect(await tableChecksum(replica, table, columns), table).toEqual(await tableChecksum(db, filtered, columns));
  }
}

// The writer's own session, so that its transactions interleave with the one in flight.
async function withWriter<T>(name: string, during: () => Promise<T>): Promise<T> {
  const session = await bench.source.connect(name);
  const writer = startWriter(session, { pauseMs: 5 });
  try {
    return await during();
  } finally {
    await writer.stop();
    await session.end();
  }
}

// Starts, lets the writer commit after the start, then commits the transaction in flight.
async function startAcross(pipeline: ReplicationPipeline, tx: { commit(): Promise<void> }, untilStatus: string): Promise<void> {
  await pipeline.start();
  // A slot (or a table's copy) waits for transactions in flight: commit once the start has gone that far.
  await waitFor(() => pipeline.status === untilStatus, untilStatus);
  await new Promise((r) => setTimeout(r, 100));
  await tx.commit();
  await pipeline.whenStreaming();
}

describe("a transaction open across a pipeline start arrives whole", () => {
  test("the first start", async () => {
    const r = await bench.replicate({});
    await withWriter(r.name, async () => {
      const tx = await inFlight(r.name);
      await startAcross(r.pipeline, tx, "Syncing");
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders", "products"]);
    expect(r.pipeline.read().conflictsDetected).toBe(0);
  }, 60_000);

  test("a resume after pause", async () => {
    const r = await bench.replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await withWriter(r.name, async () => {
      await r.pipeline.pause();
      const tx = await inFlight(r.name);
      await startAcross(r.pipeline, tx, "Streaming");
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders", "products"]);
    expect(r.pipeline.read().conflictsDetected).toBe(0);
  }, 60_000);

  test("a new process taking over from the checkpoint", async () => {
    const r = await bench.replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const next = await withWriter(r.name, async () => {
      const tx = await inFlight(r.name);
      // The old process ends without a word; the new one starts from the checkpoint.
      await r.pipeline.pause({ watch: false });
      const next = r.twin();
      await startAcross(next, tx, "Streaming");
      return next;
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders", "products"]);
    expect(next.read().conflictsDetected).toBe(0);
  }, 60_000);

  test("a restart that adds a table: it is copied under a snapshot taken after the change", async () => {
    const r = await bench.replicate({ tableFilter: ["users.*", "orders.*"] });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    expect((await r.replica.query("SELECT 1 FROM pg_tables WHERE tablename = 'products'")).rowCount).toBe(0);
    const next = await withWriter(r.name, async () => {
      await r.pipeline.pause({ watch: false });
      const tx = await inFlight(r.name);
      const next = r.twin({ tableFilter: ["users.*", "orders.*", "products.*"] });
      // The added table's copy waits for the transaction in flight: it is Syncing until the commit.
      await startAcross(next, tx, "Syncing");
      return next;
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders", "products"]);
    expect(next.read().conflictsDetected).toBe(0);
    expect(r.events.some((e) => e.type === "TablesSynced" && e.details.tables === "products")).toBe(true);
    // Later changes to the added table stream as usual.
    await r.db.query("UPDATE products SET price = 99 WHERE sku = 'sku-9'");
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["products"]);
  }, 60_000);

  test("a pause while an added table's copy waits for a transaction in flight does not wait with it", async () => {
    const r = await bench.replicate({ tableFilter: ["users.*", "orders.*"] });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.pipeline.pause({ watch: false });
    const tx = await inFlight(r.name);
    const next = r.twin({ tableFilter: ["users.*", "orders.*", "products.*"] });
    await next.start();
    await waitFor(() => next.status === "Syncing", "Syncing");
    // The transaction is still open: were the pause to wait for the copy, it would wait forever.
    await next.pause();
    expect(next.status).toBe("Paused");
    await tx.commit();
    await next.start();
    await next.whenStreaming();
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders", "products"]);
  }, 60_000);

  test("a restart with a changed row filter: rows that now match arrive, rows that no longer match leave", async () => {
    const r = await bench.replicate(
      { tableFilter: ["users.*"], rowFilter: { enabled: true, expression: "region = 'us'" } },
      // A filter on a column outside the key needs the whole old row.
      { prepare: (db) => db.query("ALTER TABLE users REPLICA IDENTITY FULL").then(() => undefined) },
    );
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const next = await withWriter(r.name, async () => {
      await r.pipeline.pause({ watch: false });
      const tx = await inFlight(r.name);
      const next = r.twin({ tableFilter: ["users.*"], rowFilter: { enabled: true, expression: "region = 'eu'" } });
      await startAcross(next, tx, "Syncing");
      return next;
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users"], { users: "region = 'eu'" });
    expect(next.read().conflictsDetected).toBe(0);
  }, 60_000);

  test("a restart with a changed column list: the table is copied again with the columns it now carries", async () => {
    const r = await bench.replicate({ tableFilter: ["users.id", "users.name", "orders.*"] });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    expect((await r.replica.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'users' ORDER BY 1")).rows.map((c) => c.column_name)).toEqual(["id", "name"]);
    await withWriter(r.name, async () => {
      await r.pipeline.pause({ watch: false });
      const tx = await inFlight(r.name);
      const next = r.twin({ tableFilter: ["users.id", "users.name", "users.email", "users.region", "orders.*"] });
      await startAcross(next, tx, "Syncing");
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders"]);
    expect(r.events.some((e) => e.type === "TablesSynced" && e.details.tables === "users")).toBe(true);
  }, 60_000);

  test("a restart that removes a table: its changes in flight are not applied, the others are", async () => {
    const r = await bench.replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.caughtUp();
    const before = await tableChecksum(r.replica, "products", COLUMNS.products!);
    await withWriter(r.name, async () => {
      await r.pipeline.pause({ watch: false });
      const tx = await inFlight(r.name);
      const next = r.twin({ tableFilter: ["users.*", "orders.*"] });
      await startAcross(next, tx, "Streaming");
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders"]);
    expect(await tableChecksum(r.replica, "products", COLUMNS.products!)).toEqual(before);
  }, 60_000);

  test("pause and start, again and again, under a write load with transactions in flight", async () => {
    const r = await bench.replicate({});
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await withWriter(r.name, async () => {
      for (let cycle = 0; cycle < 5; cycle++) {
        await r.pipeline.pause();
        const tx = await inFlight(r.name);
        await startAcross(r.pipeline, tx, "Streaming");
      }
    });
    await r.caughtUp();
    await expectReplicated(r.db, r.replica, ["users", "orders", "products"]);
    expect(r.pipeline.read().conflictsDetected).toBe(0);
  }, 120_000);
});
