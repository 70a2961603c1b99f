// Failovers and migrations on a real control plane: each created with its job
// in one transaction, one at a time per replication (per tenant), read with
// the job's status and steps, listed newest first by filter and page, and
// their figures written by the job's lease holder only.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ConnectionInfoSchema, MigrationConfigSchema } from "@heliosdb/replication-proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startControlPlane, type ControlPlane } from "../testing/control-plane";
import { FAILOVER_KIND, FailoverStore } from "./failovers";
import { JobStore, type StepPlan } from "./jobs";
import { MIGRATION_KIND, MigrationStore } from "./tenant-migrations";

let cp: ControlPlane;
let jobs: JobStore;
let failovers: FailoverStore;
let migrations: MigrationStore;
const FAILOVER_STEPS: StepPlan[] = ["ValidateReplicaHealth", "StopReplication", "PromoteReplica", "UpdateRouting"].map((step) => ({ step, rerunnable: true, cancellable: true }));
const PHASES: StepPlan[] = [
  { step: "BulkCopy", rerunnable: true, cancellable: true },
  { step: "CDCCatchup", rerunnable: true, cancellable: true },
  { step: "Cutover", rerunnable: false, cancellable: false },
];
const east = create(ConnectionInfoSchema, { connectionId: "550e8400-e29b-41d4-a716-446655440001", database: "production_db", schema: "public", region: "us-east-1" });
const west = create(ConnectionInfoSchema, { connectionId: "550e8400-e29b-41d4-a716-446655440002", database: "replica_db", schema: "public", region: "us-west-2" });

beforeAll(async () => {
  cp = await startControlPlane();
  jobs = new JobStore(cp.pool);
  failovers = new FailoverStore(cp.pool);
  migrations = new MigrationStore(cp.pool);
}, 120_000);

afterAll(async () => {
  await cp?.close();
}, 60_000);

/** The one row made of those given (false: refused). */
function theOne<T>(...rows: (T | false)[]): T {
  const made = rows.filter((r): r is T => r !== false);
  expect(made).toHaveLength(1);
  return made[0]!;
}

const failover = (replicationId: string, tenantId = "tenant-f") =>
  failovers.insert({
    id: randomUUID(), replicationId, tenantId, trigger: "Manual", reason: "maintenance", force: false, updateRouting: true,
    oldPrimary: east, newPrimary: null, estimatedDurationSeconds: 30, steps: FAILOVER_STEPS, state: {},
  });

test("a failover: created Pending with its four steps and its job, one at a time per replication", async () => {
  const replicationId = randomUUID();
  // Two requests at once: one failover.
  const [first, second] = await Promise.all([failover(replicationId), failover(replicationId)]);
  expect([first, second].filter((f) => f === false)).toHaveLength(1);
  const made = theOne(first, second);
  expect(made).toMatchObject({ replicationId, trigger: "Manual", reason: "maintenance", updateRouting: true, estimatedDurationSeconds: 30, downtimeMs: null, newPrimary: null });
  expect(made.oldPrimary).toEqual(east);
  expect(made.job).toMatchObject({ id: made.id, kind: FAILOVER_KIND, status: "Pending" });
  expect(made.job.steps.map((s) => [s.step, s.status])).toEqual(FAILOVER_STEPS.map((s) => [s.step, "Pending"]));
  expect(await failovers.active(replicationId)).toMatchObject({ id: made.id });

  // Figures by the lease holder only.
  const lease = { owner: "node-a", epoch: (await jobs.acquire(made.id, "node-a", 15, [FAILOVER_KIND]))!.lease!.epoch };
  expect(await failovers.record(made.id, { owner: "node-b", epoch: lease.epoch }, { downtimeMs: 1 })).toBe(false);
  expect(await failovers.record(made.id, lease, { downtimeMs: 312, newPrimary: west })).toBe(true);
  expect(await failovers.get(made.id)).toMatchObject({ downtimeMs: 312, newPrimary: west, oldPrimary: east });

  // Ended: the replication may fail over again.
  await jobs.end(made.id, lease, "Completed", null);
  expect(await failovers.active(replicationId)).toBeUndefined();
  expect(await failover(replicationId)).not.toBe(false);
});

test("failover history: by replication, tenant and status, newest first, paged", async () => {
  const replicationId = randomUUID();
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const f = theOne(await failover(replicationId, "tenant-list"));
    ids.push(f.id);
    const lease = { owner: "n", epoch: (await jobs.acquire(f.id, "n", 15, [FAILOVER_KIND]))!.lease!.epoch };
    await jobs.end(f.id, lease, i === 1 ? "RolledBack" : "Completed", i === 1 ? "Completed" : null);
  }
  await failover(randomUUID(), "tenant-list");
  const [page1, total] = await failovers.list({ replicationId }, 0, 2);
  expect(total).toBe(3);
  expect(page1.map((f) => f.id)).toEqual([ids[2], ids[1]]);
  const [page2] = await failovers.list({ replicationId }, 2, 2);
  expect(page2.map((f) => f.id)).toEqual([ids[0]]);
  const [rolledBack, n] = await failovers.list({ replicationId, status: "RolledBack" }, 0, 50);
  expect(n).toBe(1);
  expect(rolledBack[0]).toMatchObject({ id: ids[1], job: { status: "RolledBack", rollbackStatus: "Completed" } });
  expect((await failovers.list({ tenantId: "tenant-list" }, 0, 50))[1]).toBe(4);
  expect((await failovers.list({ tenantId: "tenant-list", status: "Pending" }, 0, 50))[1]).toBe(1);
  expect((await failovers.list({ tenantId: "nobody" }, 0, 50))[1]).toBe(0);
});

test("a migration: created with its phases and configuration, one at a time per tenant, its progress by the lease holder, listed by tenant and status", async () => {
  const config = create(MigrationConfigSchema, { bulkCopyParallelism: 8, cdcLagThresholdSeconds: 1, cutoverStrategy: "Automatic", cleanupSource: false });
  const start = (tenantId: string) =>
    migrations.insert({ id: randomUUID(), tenantId, sourceRegion: "us-east-1", targetRegion: "us-west-2", source: east, target: null, config, steps: PHASES, state: {} });
  const [a, b] = await Promise.all([start("tenant-m"), start("tenant-m")]);
  expect([a, b].filter((m) => m === false)).toHaveLength(1);
  const made = theOne(a, b);
  expect(made).toMatchObject({ tenantId: "tenant-m", sourceRegion: "us-east-1", targetRegion: "us-west-2", replicationId: null, dataTransferredBytes: null });
  expect(made.config).toEqual(config);
  expect(made.source).toEqual(east);
  expect(made.job).toMatchObject({ kind: MIGRATION_KIND, status: "Pending", cancellable: true });
  expect(made.job.steps.map((s) => s.step)).toEqual(["BulkCopy", "CDCCatchup", "Cutover"]);

  const lease = { owner: "n", epoch: (await jobs.acquire(made.id, "n", 15, [MIGRATION_KIND]))!.lease!.epoch };
  const replicationId = randomUUID();
  const eta = new Date(Date.now() + 3_600_000);
  expect(await migrations.record(made.id, { owner: "other", epoch: lease.epoch }, { dataTransferredBytes: 1 })).toBe(false);
  expect(await migrations.record(made.id, lease, { replicationId, target: west, estimatedDataSizeBytes: 1000, dataTransferredBytes: 425, estimatedCompletion: eta })).toBe(true);
  expect(await migrations.record(made.id, lease, { dataTransferredBytes: 1000, downtimeMs: 85 })).toBe(true);
  expect(await migrations.get(made.id)).toMatchObject({ replicationId, target: west, estimatedDataSizeBytes: 1000, dataTransferredBytes: 1000, downtimeMs: 85, estimatedCompletion: eta });

  await jobs.requestCancel(made.id);
  await jobs.startRollback(made.id, lease, "cancelled on request");
  await jobs.end(made.id, lease, "Cancelled", "Completed");
  expect(await migrations.active("tenant-m")).toBeUndefined();
  const again = theOne(await start("tenant-m"));
  const [listed, total] = await migrations.list({ tenantId: "tenant-m" }, 0, 50);
  expect(total).toBe(2);
  expect(listed.map((m) => m.id)).toEqual([again.id, made.id]);
  const [cancelled] = await migrations.list({ tenantId: "tenant-m", statuses: ["Cancelled"] }, 0, 50);
  expect(cancelled.map((m) => [m.id, m.job.rollbackStatus, !!m.job.cancelRequestedAt])).toEqual([[made.id, "Completed", true]]);
});
