// verify() against a real replication: a faithful replica matches (counts and
// checksums, whatever the rows' physical order), a transformed table is
// compared by count only, and a deliberate mismatch — a changed value with
// the same count, a missing row — is detected and named.
import { AnonymizePIITransform_AnonymizationMethod as Method } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { holdSnapshot, verify, type TenantDatabase } from "./index";
import { startBench, type Bench } from "../testing/replication";
import { startWriter } from "../testing/tenant";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const TABLES = ["users", "orders", "products"];

test("a replica verifies; PII-hashed users by count only; a changed value and a missing row are named", async () => {
  const r = await bench.replicate(
    { transforms: [{ transformType: { case: "anonymizePii", value: { columns: ["email"], method: Method.HASH } } }] },
    { users: 300 },
  );
  const side = (cluster: typeof bench.source): TenantDatabase => ({ connection: { connectionString: cluster.url(r.name) }, schema: "public" });
  const [source, target] = [side(bench.source), side(bench.target)];
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  const writerDb = await bench.source.connect(r.name);
  const writer = startWriter(writerDb);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await writer.stop();
  await writerDb.end();
  await r.caughtUp();
  // Nothing applies from here on: the target changes only by this test's hand.
  await r.pipeline.pause();

  const good = await verify(source, target, TABLES, { checksum: true, transformed: ["users"] });
  expect(good.ok).toBe(true);
  expect(good.mismatched).toEqual([]);
  expect(good.tables.map((t) => [t.table, t.checksum])).toEqual([
    ["users", "count only"],
    ["orders", "match"],
    ["products", "match"],
  ]);
  expect(good.tables[1]!.columns).toEqual(["id", "user_id", "amount", "status", "created_at"]);
  expect(good.tables[0]!.sourceRows).toBeGreaterThan(300);
  expect(good.tables[0]!.targetRows).toBe(good.tables[0]!.sourceRows);

  // Hashed emails differ from the source's: compared by checksum, users would not match.
  expect((await verify(source, target, ["users"], { checksum: true })).mismatched).toEqual(["users"]);
  // Without checksums, counts only.
  expect((await verify(source, target, TABLES)).tables.map((t) => t.checksum)).toEqual(["not compared", "not compared", "not compared"]);

  // Every row rewritten (new physical places, same values): still a match.
  await r.replica.query("UPDATE products SET title = title");
  await r.replica.query("VACUUM FULL products");
  expect((await verify(source, target, ["products"], { checksum: true })).ok).toBe(true);

  // Same count, one value changed; one row missing; one hashed user missing.
  await r.replica.query("UPDATE orders SET amount = amount + 0.01 WHERE id = (SELECT min(id) FROM orders)");
  await r.replica.query("DELETE FROM products WHERE sku = 'sku-7'");
  await r.replica.query("DELETE FROM users WHERE id = (SELECT max(id) FROM users)");
  const bad = await verify(source, target, TABLES, { checksum: true, transformed: ["users"] });
  expect(bad.ok).toBe(false);
  expect(bad.mismatched).toEqual(["users", "orders", "products"]);
  const orders = bad.tables.find((t) => t.table === "orders")!;
  expect(orders).toMatchObject({ checksum: "mismatch", ok: false });
  expect(orders.sourceRows).toBe(orders.targetRows);
  const products = bad.tables.find((t) => t.table === "products")!;
  expect(products.targetRows).toBe(products.sourceRows - 1);
  expect(bad.tables.find((t) => t.table === "users")).toMatchObject({ checksum: "count only", ok: false });
}, 120_000);

test("verified against a held snapshot: the target as it was when held, whatever is written there since; void once released", async () => {
  const r = await bench.replicate({}, { users: 200 });
  const side = (cluster: typeof bench.source): TenantDatabase => ({ connection: { connectionString: cluster.url(r.name) }, schema: "public" });
  const [source, target] = [side(bench.source), side(bench.target)];
  await r.pipeline.start();
  await r.pipeline.whenStreaming();
  await r.caughtUp();
  await r.pipeline.pause();

  const held = await holdSnapshot(target);
  try {
    // The new primary takes writes after the moment held (as after a routing switch).
    await r.replica.query("INSERT INTO products (sku, title) VALUES ('after-the-switch', 'new')");
    await r.replica.query("UPDATE orders SET status = 'paid after the switch' WHERE id = (SELECT min(id) FROM orders)");
    const now = await verify(source, target, TABLES, { checksum: true });
    expect(now.mismatched).toEqual(["orders", "products"]);
    const then = await verify(source, target, TABLES, { checksum: true, targetSnapshot: held.id });
    expect(then.ok).toBe(true);
    expect(then.tables.map((t) => [t.table, t.checksum])).toEqual([
      ["users", "match"],
      ["orders", "match"],
      ["products", "match"],
    ]);
  } finally {
    await held.release();
  }
  await held.release();
  await expect(verify(source, target, ["orders"], { targetSnapshot: held.id })).rejects.toThrow(/snapshot/i);
}, 120_000);
