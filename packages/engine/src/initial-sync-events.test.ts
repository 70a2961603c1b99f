// The initial sync reports each table's copy as events: started, each quarter
// of the catalog's estimate once, completed with the rows it copied.
import { afterAll, beforeAll, expect, test } from "vitest";
import { startBench, type Bench } from "./testing/replication";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

test("InitialSyncStarted, InitialSyncProgress at 25, 50 and 75 %, InitialSyncCompleted, per table, between Syncing and Streaming", async () => {
  const r = await bench.replicate({ tableFilter: ["users.*", "products.*"] }, { users: 20_000, prepare: (db) => db.query("ANALYZE").then(() => undefined) });
  await r.pipeline.start({ initialSyncParallelism: 2 });
  await r.pipeline.whenStreaming();
  const { rows } = await r.db.query<{ users: number; products: number }>("SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM products) AS products");
  const events = r.events;
  const at = (type: string, to?: string) => events.findIndex((e) => e.type === type && (to === undefined || e.details.to === to));
  for (const table of ["users", "products"]) {
    const of = events.filter((e) => e.details.table === table);
    expect(of.map((e) => e.type).filter((t) => t !== "InitialSyncProgress"), table).toEqual(["InitialSyncStarted", "InitialSyncCompleted"]);
    expect(of.every((e) => e.severity === "Info")).toBe(true);
    const completed = of[of.length - 1]!;
    expect(completed.type).toBe("InitialSyncCompleted");
    expect(Number(completed.details.rows_copied)).toBe(rows[0]![table as "users" | "products"]);
    expect(events.indexOf(of[0]!)).toBeGreaterThan(at("StatusChanged", "Syncing"));
    expect(events.indexOf(completed)).toBeLessThan(at("StatusChanged", "Streaming"));
  }
  // The large table crosses every quarter of its estimate, each reported once and in order.
  const progress = events.filter((e) => e.type === "InitialSyncProgress" && e.details.table === "users").map((e) => e.details.progress_percent);
  expect(progress).toEqual(["25", "50", "75"]);
}, 120_000);
