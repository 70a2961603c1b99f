// Exactly once, across crashes: the engine runs in a process of its own and
// is killed with SIGKILL in the middle of the initial sync and in the middle
// of the stream. After a restart the replica equals the source, and nothing
// was applied twice — a second apply of an insert would be counted as a
// conflict (the row already existed).
import { randomBytes, randomUUID } from "node:crypto";
import { create, toJson } from "@bufbuild/protobuf";
import { QoSTier, ReplicationConfigSchema } from "@heliosdb/replication-proto";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startRunner, type RunnerProcess } from "./testing/child";
import { startCluster, type Cluster } from "./testing/clusters";
import { seedTenant, startWriter, tableChecksum } from "./testing/tenant";
import { parseLsn } from "./types";

let source: Cluster;
let target: Cluster;
const runners: RunnerProcess[] = [];

beforeAll(async () => {
  [source, target] = await Promise.all([startCluster(), startCluster()]);
}, 120_000);
afterAll(async () => {
  await Promise.all(runners.map((r) => r.kill()));
  await Promise.all([source?.stop(), target?.stop()]);
});

async function setup(users: number) {
  const name = `t_${randomUUID().slice(0, 8)}`;
  await Promise.all([source.createDatabase(name), target.createDatabase(name)]);
  const db = await source.connect(name);
  await seedTenant(db, users);
  const spec = {
    replicationId: randomUUID(),
    tenantId: "tenant-123",
    source: source.url(name),
    target: target.url(name),
    config: toJson(ReplicationConfigSchema, create(ReplicationConfigSchema, { qosTier: QoSTier.STANDARD, maxLagSeconds: 5 })),
    masterKey: randomBytes(32).toString("hex"),
    parallelism: 1,
  };
  const run = async () => {
    const runner = await startRunner(spec);
    runners.push(runner);
    return runner;
  };
  return { name, db, replica: await target.connect(name), run };
}

type Figures = { status: string; lastCheckpoint?: { lsn: string }; conflictsDetected: number; initialSync: { rowsCopied: number; completed: boolean }[] };
const figuresOf = (line: Record<string, unknown>) => line.figures as Figures | undefined;

async function caughtUp(runner: RunnerProcess, db: pg.ClientBase): Promise<Figures> {
  const { rows } = await db.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  const lsn = parseLsn(rows[0]!.lsn);
  const line = await runner.waitFor((l) => {
    const f = figuresOf(l);
    return !!f?.lastCheckpoint && BigInt(f.lastCheckpoint.lsn) >= lsn;
  });
  return figuresOf(line)!;
}

async function expectEqual(db: pg.ClientBase, replica: pg.ClientBase): Promise<void> {
  const tables = { users: ["id", "name", "email", "phone", "ssn", "region", "bio"], orders: ["id", "user_id", "amount", "status"], products: ["sku", "title", "price", "tags", "attributes"] };
  for (const [table, columns] of Object.entries(tables)) {
    expect(await tableChecksum(replica, table, columns), table).toEqual(await tableChecksum(db, table, columns));
  }
}

test("SIGKILL in the middle of the initial sync, then a restart: the copy starts afresh, nothing duplicated", async () => {
  const { name, db, replica, run } = await setup(150_000);
  const first = await run();
  await first.waitFor((l) => (figuresOf(l)?.initialSync ?? []).some((t) => t.rowsCopied > 0 && !t.completed));
  await first.kill("SIGKILL");
  const copied = await replica.query("SELECT count(*)::int AS n FROM users");
  expect(copied.rows[0].n).toBeLessThan(150_000);

  const writerDb = await source.connect(name);
  const writer = startWriter(writerDb);
  const second = await run();
  await second.waitFor((l) => l.streaming === true);
  await new Promise((r) => setTimeout(r, 500));
  await writer.stop();
  const figures = await caughtUp(second, db);
  await expectEqual(db, replica);
  expect(figures.conflictsDetected).toBe(0);
  await Promise.all([db.end(), replica.end(), writerDb.end()]);
}, 180_000);

test("SIGKILL in the middle of the stream, then a restart: resumes from the checkpoint, nothing lost, nothing twice", async () => {
  const { name, db, replica, run } = await setup(2000);
  const first = await run();
  await first.waitFor((l) => l.streaming === true);
  const writerDb = await source.connect(name);
  const writer = startWriter(writerDb);
  await first.waitFor((l) => figuresOf(l)?.lastCheckpoint !== undefined);
  await new Promise((r) => setTimeout(r, 1000));
  await first.kill("SIGKILL");
  // The source keeps writing while the engine is down.
  await new Promise((r) => setTimeout(r, 500));
  const second = await run();
  await second.waitFor((l) => l.streaming === true);
  await new Promise((r) => setTimeout(r, 500));
  const written = await writer.stop();
  expect(written).toBeGreaterThan(0);
  const figures = await caughtUp(second, db);
  await expectEqual(db, replica);
  expect(figures.conflictsDetected).toBe(0);
  // The source's slot is acknowledged only up to what the target committed — or, caught up, to a keepalive's
  // position past it, which carries no change of the tenant's: the replica equals the source there (above).
  await second.kill("SIGKILL");
  const slot = await db.query("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE database = current_database()");
  const checkpoint = await replica.query("SELECT lsn::text AS lsn FROM heliosdb_replication.checkpoints");
  expect(slot.rowCount).toBe(1);
  if (parseLsn(slot.rows[0].lsn) > parseLsn(checkpoint.rows[0].lsn)) await expectEqual(db, replica);
  await Promise.all([db.end(), replica.end(), writerDb.end()]);
}, 180_000);
