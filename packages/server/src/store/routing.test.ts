// Routing on a real control plane: a tenant's recorded primary, or nothing;
// the next primary a cutover announces, and what clears it.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ConnectionInfoSchema } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { controlPlanePerFile } from "../testing/control-plane";
import { JobStore } from "./jobs";
import { RoutingStore } from "./routing";

const cp = controlPlanePerFile();

test("reads a tenant's routing with its primary as a ConnectionInfo; undefined when none is recorded", async () => {
  const routing = new RoutingStore(cp().pool);
  expect(await routing.get("tenant-123")).toBeUndefined();
  const failoverId = "550e8400-e29b-41d4-a716-446655440099";
  await cp().pool.query(
    `INSERT INTO routing (tenant_id, "primary", version, writes_blocked, failover_id, updated_at)
     VALUES ('tenant-123', '{"connectionId": "c-1", "database": "production_db", "region": "us-west-2"}', 3, true, $1, '2025-01-02T03:04:05Z')`,
    [failoverId],
  );
  const r = await routing.get("tenant-123");
  expect(r).toMatchObject({
    tenantId: "tenant-123",
    primary: { connectionId: "c-1", database: "production_db", schema: "", region: "us-west-2" },
    version: 3n,
    writesBlocked: true,
    failoverId,
    migrationId: null,
  });
  expect(r?.updatedAt.toISOString()).toBe("2025-01-02T03:04:05.000Z");
});

test("next_primary: announced by the job that holds the lease, cleared by the switch and by unblocking; a lost lease changes nothing", async () => {
  const routing = new RoutingStore(cp().pool);
  const jobs = new JobStore(cp().pool);
  const jobId = randomUUID();
  await jobs.insert({ id: jobId, kind: "migration", steps: [], state: {} });
  const lease = (await jobs.acquire(jobId, "server-a", 60, ["migration"]))!.lease!;
  const changer = { jobId, owner: lease.owner, epoch: lease.epoch, kind: "migration" as const };
  const west = create(ConnectionInfoSchema, { connectionId: "c-west", database: "replica_db", region: "us-west-2" });
  await cp().pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ('tenant-next', $1)`, [JSON.stringify({ connectionId: "c-east", database: "production_db", region: "us-east-1" })]);

  // Announced: a new version that names the next primary and the migration; the primary is unchanged.
  const v1 = (await routing.get("tenant-next"))!;
  expect(v1.nextPrimary).toBeNull();
  const announced = await routing.setNextPrimary("tenant-next", v1.version, west, jobId, changer);
  expect(announced).toMatchObject({ version: v1.version + 1n, primary: { connectionId: "c-east" }, nextPrimary: { connectionId: "c-west", database: "replica_db", region: "us-west-2" }, migrationId: jobId, writesBlocked: false });
  // Already so, or at a stale version, or by a server that lost the lease: nothing.
  expect(await routing.setNextPrimary("tenant-next", announced!.version, west, jobId, changer)).toBeUndefined();
  expect(await routing.setNextPrimary("tenant-next", v1.version, null, jobId, changer)).toBeUndefined();
  expect(await routing.setNextPrimary("tenant-next", announced!.version, null, jobId, { ...changer, epoch: changer.epoch + 1 })).toBeUndefined();

  // Blocked, it stays; unblocked (the cutover gave up), it goes.
  const blocked = await routing.setWritesBlocked("tenant-next", announced!.version, true, jobId, changer);
  expect(blocked).toMatchObject({ writesBlocked: true, nextPrimary: { connectionId: "c-west" } });
  const unblocked = await routing.setWritesBlocked("tenant-next", blocked!.version, false, jobId, changer);
  expect(unblocked).toMatchObject({ writesBlocked: false, nextPrimary: null });

  // Announced again, then the switch: the primary is the next one, and there is no next any more.
  const again = await routing.setNextPrimary("tenant-next", unblocked!.version, west, jobId, changer);
  const switched = await routing.switchPrimary("tenant-next", west, jobId, changer);
  expect(switched).toMatchObject({ version: again!.version + 1n, primary: { connectionId: "c-west" }, nextPrimary: null });
});
