// The whole data path against two real PostgreSQL clusters: the snapshot and
// the stream meet without gap or duplicate, transforms and filters hold on
// both, figures are observed, and control works.
import { randomBytes, randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  AnonymizePIITransform_AnonymizationMethod as Method,
  CompressionConfig_CompressionLevel as Level,
  QoSTier,
  ReplicationConfigSchema,
} from "@heliosdb/replication-proto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PreflightError, ReplicationPipeline, type EngineEvent, type ReplicationSpec } from "./index";
import { startCluster, type Cluster } from "./testing/clusters";
import { seedTenant, startWriter, tableChecksum, waitFor } from "./testing/tenant";
import { hashValue } from "./transform/anonymize";
import { MasterKeyProvider } from "./transform/keys";
import { parseLsn } from "./types";

let source: Cluster;
let target: Cluster;
const keys = new MasterKeyProvider(randomBytes(32));

beforeAll(async () => {
  [source, target] = await Promise.all([startCluster(), startCluster()]);
}, 120_000);
afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

/** A fresh source database seeded with a tenant, and an empty target database. */
async function tenant(users = 2000): Promise<{ name: string; db: pg.Client; replica: pg.Client }> {
  const name = `t_${randomUUID().slice(0, 8)}`;
  await Promise.all([source.createDatabase(name), target.createDatabase(name)]);
  const db = await source.connect(name);
  await seedTenant(db, users);
  return { name, db, replica: await target.connect(name) };
}

function spec(name: string, config: MessageInitShape<typeof ReplicationConfigSchema>): ReplicationSpec {
  return {
    replicationId: randomUUID(),
    tenantId: "tenant-123",
    source: { connection: { connectionString: source.url(name) }, schema: "public" },
    target: { connection: { connectionString: target.url(name) }, schema: "public" },
    config: create(ReplicationConfigSchema, { qosTier: QoSTier.PREMIUM, maxLagSeconds: 5, ...config }),
  };
}

/** Waits until the replica has applied everything the source committed so far. */
async function caughtUp(pipeline: ReplicationPipeline, db: pg.ClientBase): Promise<void> {
  const { rows } = await db.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  const lsn = parseLsn(rows[0]!.lsn);
  await waitFor(() => (pipeline.read().lastCheckpoint?.lsn ?? 0n) >= lsn, "the replica to catch up");
}

const USERS = ["id", "name", "email", "phone", "ssn", "region", "bio", "created_at"];
const ORDERS = ["id", "user_id", "amount", "status", "created_at"];
const PRODUCTS = ["sku", "title", "price", "tags", "attributes"];

describe("replication pipeline", () => {
  test("snapshot and concurrent writes meet without gap or duplicate, with PII hashed, compressed and encrypted", async () => {
    const { name, db, replica } = await tenant(5000);
    const events: EngineEvent[] = [];
    const pipeline = new ReplicationPipeline(
      spec(name, {
        tableFilter: ["users.*", "orders.*", "products.*"],
        transforms: [{ transformType: { case: "anonymizePii", value: { columns: ["email", "phone", "ssn"], method: Method.HASH } } }],
        compression: { enabled: true, level: Level.MEDIUM },
        encryption: { enabled: true, algorithm: "AES256GCM" },
      }),
      { keys, onEvent: (e) => events.push(e), heartbeatIntervalMs: 200 },
    );
    const writerDb = await source.connect(name);
    const writer = startWriter(writerDb);
    await pipeline.start({ initialSyncParallelism: 3 });
    await pipeline.whenStreaming();
    await new Promise((r) => setTimeout(r, 1500));
    const written = await writer.stop();
    await caughtUp(pipeline, db);

    const key = await keys.key("tenant-123", "hash");
    const hashed = (column: string, value: string | null) =>
      value !== null && ["email", "phone", "ssn"].includes(column) ? hashValue(key, value) : value;
    expect(await tableChecksum(replica, "users", USERS)).toEqual(await tableChecksum(db, "users", USERS, hashed));
    expect(await tableChecksum(replica, "orders", ORDERS)).toEqual(await tableChecksum(db, "orders", ORDERS));
    expect(await tableChecksum(replica, "products", PRODUCTS)).toEqual(await tableChecksum(db, "products", PRODUCTS));
    const { rows } = await replica.query("SELECT email FROM users WHERE id = 1");
    expect(rows[0].email).toMatch(/^[0-9a-f]{64}$/);

    const figures = pipeline.read();
    expect(written).toBeGreaterThan(0);
    expect(figures.status).toBe("Streaming");
    // Writes committed before the slot's consistent point arrive with the snapshot, the rest by stream.
    expect(figures.totalTransactions).toBeGreaterThan(0);
    expect(figures.totalRows).toBeGreaterThan(5000 + 10000 + 200);
    expect(figures.compressionRatio).toBeGreaterThan(1);
    expect(figures.conflictsDetected).toBe(0);
    expect(figures.initialSync.every((t) => t.completed)).toBe(true);
    expect(figures.initialSync.find((t) => t.table === "users")?.rowsCopied).toBeGreaterThanOrEqual(5000);
    expect(events.filter((e) => e.severity === "Error")).toEqual([]);
    expect(events.map((e) => e.details.to).filter(Boolean)).toEqual(["Initializing", "Syncing", "Streaming"]);

    const final = await pipeline.stop();
    expect(final.status).toBe("Stopped");
    const slots = await db.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [pipeline.slotName]);
    expect(slots.rowCount).toBe(0);
    await Promise.all([db.end(), replica.end(), writerDb.end()]);
  }, 120_000);

  test("preflight refuses what cannot run, all problems at once", async () => {
    const { name, db, replica } = await tenant(10);
    await db.query("CREATE TABLE logs (line text)");
    const pipeline = new ReplicationPipeline(
      spec(name, { tableFilter: ["users.emial", "logs.*"], rowFilter: { enabled: true, expression: "" } }),
      { keys },
    );
    const error = await pipeline.start().catch((e) => e);
    expect(error).toBeInstanceOf(PreflightError);
    expect((error as PreflightError).problems.map((p) => p.code).sort()).toEqual(["NO_KEY", "ROW_FILTER", "TABLE_FILTER"]);
    const publications = await db.query("SELECT 1 FROM pg_publication");
    expect(publications.rowCount).toBe(0);
    await Promise.all([db.end(), replica.end()]);
  }, 60_000);
});
