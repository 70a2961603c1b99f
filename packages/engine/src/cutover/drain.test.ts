// Draining a running replication to a fence's final LSN, against two real
// clusters under concurrent writers: once drainTo resolves, the target holds
// exactly the source's rows (every acknowledged write, transactions in flight
// at the fence included), without waiting for a heartbeat (they are off
// here). drainTo ends with a DrainError when the pipeline pauses, stops or
// fails first, at its timeout, or when aborted.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DrainError, fence, type TenantDatabase } from "./index";
import { startBench, type Bench } from "../testing/replication";
import { tableChecksum, waitFor } from "../testing/tenant";
import { startTenantWriters } from "../testing/writers";

const TABLES = ["users", "orders", "products"];
const COLUMNS = {
  users: ["id", "name", "email", "phone", "ssn", "region", "bio", "created_at"],
  orders: ["id", "user_id", "amount", "status", "created_at"],
  products: ["sku", "title", "price", "tags", "attributes"],
};
// No heartbeat after the first: only the fence's own transaction can carry the applied position to its LSN.
const NO_HEARTBEATS = { heartbeatIntervalMs: 3_600_000 };

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const sourceOf = (name: string): TenantDatabase => ({ connection: { connectionString: bench.source.url(name) }, schema: "public" });

describe("drainTo", () => {
  test("fence under concurrent writers, drain to its final LSN: the target equals the source, every acknowledged write there", async () => {
    const r = await bench.replicate({}, { users: 500, deps: NO_HEARTBEATS });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const writers = await startTenantWriters(() => bench.source.connect(r.name), { writers: 4 });
    // And one transaction held open across the start of the fence: it commits while the fence waits for it.
    const held = await bench.source.connect(r.name);
    try {
      await waitFor(() => writers.committed() >= 50, "writers to commit");
      await held.query("BEGIN");
      await held.query("INSERT INTO users (name, email) VALUES ('held', 'held@example.com')");
      const fencing = fence(sourceOf(r.name), TABLES, { lockTimeoutMs: 60_000 });
      await waitFor(async () => (await r.db.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'heliosdb_fence' AND wait_event_type = 'Lock'")).rowCount === 1, "the fence to wait");
      await held.query("COMMIT");
      const { finalLsn } = await fencing;
      // Writers go on trying, and are refused, until they stop.
      const refused = writers.refusals.length;
      await waitFor(() => writers.refusals.length >= refused + 8, "refusals");
      await writers.stop();

      const applied = await r.pipeline.drainTo(finalLsn, { timeoutMs: 60_000 });
      expect(applied).toBeGreaterThanOrEqual(finalLsn);
      expect(r.pipeline.appliedLsn).toBeGreaterThanOrEqual(finalLsn);
      for (const [table, columns] of Object.entries(COLUMNS)) {
        expect(await tableChecksum(r.replica, table, columns), table).toEqual(await tableChecksum(r.db, table, columns));
      }
      const ids = [...writers.users];
      const { rows } = await r.replica.query<{ n: string }>("SELECT count(*) AS n FROM users WHERE id = ANY($1::bigint[]) OR email = 'held@example.com'", [ids]);
      expect(Number(rows[0]!.n)).toBe(ids.length + 1);
      const live = writers.orders.filter((id) => !writers.deletedOrders.includes(id));
      const orders = await r.replica.query<{ n: string }>("SELECT count(*) AS n FROM orders WHERE id = ANY($1::bigint[])", [live]);
      expect(Number(orders.rows[0]!.n)).toBe(live.length);
      expect(writers.committed()).toBeGreaterThanOrEqual(50);
      expect(r.events.filter((e) => e.severity === "Error")).toEqual([]);
    } finally {
      await writers.stop();
      await held.end();
    }
  }, 120_000);

  test("on an idle replication the fence's own transaction moves the applied position past its LSN", async () => {
    const r = await bench.replicate({}, { users: 10, deps: NO_HEARTBEATS });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    await r.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 'before')");
    await waitFor(async () => (await r.replica.query("SELECT 1 FROM orders WHERE status = 'before'")).rowCount === 1, "the insert to arrive");
    const before = r.pipeline.appliedLsn;
    const { finalLsn } = await fence(sourceOf(r.name), TABLES);
    expect(finalLsn).toBeGreaterThan(before);
    // Nothing else is written and no heartbeat comes: only the fence's transaction can resolve this.
    expect(await r.pipeline.drainTo(finalLsn, { timeoutMs: 30_000 })).toBeGreaterThanOrEqual(finalLsn);
    // A position already reached resolves at once, also once the pipeline no longer runs.
    await r.pipeline.pause();
    expect(await r.pipeline.drainTo(finalLsn)).toBeGreaterThanOrEqual(finalLsn);
  }, 60_000);

  test("ends with a DrainError when the pipeline pauses, stops or fails first, at its timeout, or when aborted", async () => {
    const r = await bench.replicate({}, { users: 10 });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const never = () => r.pipeline.appliedLsn + (1n << 40n);
    const reason = (p: Promise<unknown>) => p.then(() => "resolved", (e: unknown) => (e instanceof DrainError ? `${e.reason}: ${e.message}` : String(e)));

    expect(await reason(r.pipeline.drainTo(never(), { timeoutMs: 200 }))).toMatch(/^timeout: /);
    const controller = new AbortController();
    const aborted = reason(r.pipeline.drainTo(never(), { signal: controller.signal }));
    controller.abort();
    expect(await aborted).toMatch(/^aborted: /);

    const paused = reason(r.pipeline.drainTo(never()));
    await r.pipeline.pause();
    expect(await paused).toMatch(/^halted: .*was paused/);
    expect(await reason(r.pipeline.drainTo(never()))).toMatch(/^halted: .*is not running \(status Paused\)/);

    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    const stopped = reason(r.pipeline.drainTo(never()));
    await r.pipeline.stop();
    expect(await stopped).toMatch(/^halted: .*was stopped/);

    const f = await bench.replicate({}, { users: 10 });
    await f.pipeline.start();
    await f.pipeline.whenStreaming();
    const failed = reason(f.pipeline.drainTo(f.pipeline.appliedLsn + (1n << 40n)));
    // A change the replication cannot follow puts it in Error.
    await f.db.query("ALTER TABLE orders ALTER COLUMN status TYPE integer USING 0");
    await f.db.query("INSERT INTO orders (user_id, amount, status) VALUES (1, 1, 1)");
    expect(await failed).toMatch(/^halted: .*failed/);
  }, 60_000);
});
