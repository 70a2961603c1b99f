// The whole data path against two real PostgreSQL clusters: the snapshot and
// the stream meet without gap or duplicate, with transforms, compression and
// encryption on; figures are observed; preflight refuses what cannot run.
import {
  AnonymizePIITransform_AnonymizationMethod as Method,
  CompressionConfig_CompressionLevel as Level,
} from "@heliosdb/replication-proto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PreflightError } from "./index";
import { startBench, type Bench } from "./testing/replication";
import { startWriter, tableChecksum } from "./testing/tenant";
import { hashValue } from "./transform/anonymize";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
}, 120_000);
afterAll(() => bench?.close(), 60_000);

const USERS = ["id", "name", "email", "phone", "ssn", "region", "bio", "created_at"];
const ORDERS = ["id", "user_id", "amount", "status", "created_at"];
const PRODUCTS = ["sku", "title", "price", "tags", "attributes"];

describe("replication pipeline", () => {
  test("snapshot and concurrent writes meet without gap or duplicate, with PII hashed, compressed and encrypted", async () => {
    const r = await bench.replicate(
      {
        tableFilter: ["users.*", "orders.*", "products.*"],
        transforms: [{ transformType: { case: "anonymizePii", value: { columns: ["email", "phone", "ssn"], method: Method.HASH } } }],
        compression: { enabled: true, level: Level.MEDIUM },
        encryption: { enabled: true, algorithm: "AES256GCM" },
      },
      { users: 5000, deps: { heartbeatIntervalMs: 200 } },
    );
    const writerDb = await bench.source.connect(r.name);
    const writer = startWriter(writerDb);
    await r.pipeline.start({ initialSyncParallelism: 3 });
    await r.pipeline.whenStreaming();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const written = await writer.stop();
    await writerDb.end();
    await r.caughtUp();

    const key = await bench.keys.key("tenant-123", "hash");
    const hashed = (column: string, value: string | null) =>
      value !== null && ["email", "phone", "ssn"].includes(column) ? hashValue(key, value) : value;
    expect(await tableChecksum(r.replica, "users", USERS)).toEqual(await tableChecksum(r.db, "users", USERS, hashed));
    expect(await tableChecksum(r.replica, "orders", ORDERS)).toEqual(await tableChecksum(r.db, "orders", ORDERS));
    expect(await tableChecksum(r.replica, "products", PRODUCTS)).toEqual(await tableChecksum(r.db, "products", PRODUCTS));
    const { rows } = await r.replica.query("SELECT email FROM users WHERE id = 1");
    expect(rows[0].email).toMatch(/^[0-9a-f]{64}$/);

    const figures = r.pipeline.read();
    expect(written).toBeGreaterThan(0);
    expect(figures.status).toBe("Streaming");
    // Writes committed before the slot's consistent point arrive with the snapshot, the rest by stream.
    expect(figures.totalTransactions).toBeGreaterThan(0);
    expect(figures.totalRows).toBeGreaterThan(5000 + 10000 + 200);
    expect(figures.compressionRatio).toBeGreaterThan(1);
    expect(figures.conflictsDetected).toBe(0);
    expect(figures.lastCheckpoint?.transactionId).toBeGreaterThan(0);
    expect(figures.initialSync.every((t) => t.completed)).toBe(true);
    expect(figures.initialSync.find((t) => t.table === "users")?.rowsCopied).toBeGreaterThanOrEqual(5000);
    expect(r.events.filter((e) => e.severity === "Error")).toEqual([]);
    // A new pipeline starts Initializing: it changes status only when it syncs, then streams.
    expect(r.events.filter((e) => e.type === "StatusChanged").map((e) => `${e.details.from} → ${e.details.to}`)).toEqual([
      "Initializing → Syncing",
      "Syncing → Streaming",
    ]);

    const final = await r.pipeline.stop();
    expect(final.status).toBe("Stopped");
    const slots = await r.db.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [r.pipeline.slotName]);
    expect(slots.rowCount).toBe(0);
  }, 120_000);

  test("a table_filter pattern that matches nothing yet is a warning, not a refusal", async () => {
    const r = await bench.replicate({ tableFilter: ["users.*", "analytics.*"] }, { users: 10 });
    await r.pipeline.start();
    await r.pipeline.whenStreaming();
    expect(r.events.find((e) => e.type === "ConfigurationWarning")?.message).toBe('table_filter pattern "analytics.*" matches no column of schema "public" yet');
  }, 60_000);

  test("preflight refuses what cannot run, all problems at once, and creates nothing", async () => {
    const r = await bench.replicate(
      { tableFilter: ["users.emial", "logs.*"], rowFilter: { enabled: true, expression: "" } },
      { users: 10, prepare: (db) => db.query("CREATE TABLE logs (line text)").then(() => undefined) },
    );
    const error = await r.pipeline.start().catch((e) => e);
    expect(error).toBeInstanceOf(PreflightError);
    expect((error as PreflightError).problems.map((p) => p.code).sort()).toEqual(["NO_KEY", "ROW_FILTER"]);
    expect((await r.db.query("SELECT 1 FROM pg_publication")).rowCount).toBe(0);
    expect((await r.replica.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'")).rowCount).toBe(0);
  }, 60_000);
});
