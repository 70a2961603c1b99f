// The routing half of a cutover's fence on a real control plane: a run
// interrupted between blocking the tenant's writes in routing and saving
// that it did must leave a way back, or the rollback would leave the
// tenant's writes blocked for good.
import { randomUUID } from "node:crypto";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { ConnectionInfoSchema } from "@heliosdb/replication-proto";
import { expect, test } from "vitest";
import { JobStore } from "../../store/jobs";
import { RoutingStore } from "../../store/routing";
import { controlPlanePerFile } from "../../testing/control-plane";
import { blockRouting, liftFence } from "./fence";
import type { CutoverContext } from "./state";

const cp = controlPlanePerFile();

const east = create(ConnectionInfoSchema, { connectionId: "c-east", database: "production_db", region: "us-east-1" });

// A migration job under a lease, its routing on `east`, and a step context whose saves merge into its state.
async function migrationOf(tenantId: string) {
  const jobs = new JobStore(cp().pool);
  const jobId = randomUUID();
  await jobs.insert({ id: jobId, kind: "migration", steps: [], state: {} });
  const lease = (await jobs.acquire(jobId, "server-a", 60, ["migration"]))!.lease!;
  await cp().pool.query(`INSERT INTO routing (tenant_id, "primary") VALUES ($1, $2)`, [tenantId, JSON.stringify({ connectionId: "c-east", database: "production_db" })]);
  const state: JsonObject = { tenantId };
  const ctx = { jobId, lease, state, save: async (patch: JsonObject) => void Object.assign(state, patch) } as unknown as CutoverContext;
  return { ctx, state, changer: { jobId, owner: lease.owner, epoch: lease.epoch, kind: "migration" as const } };
}

test("blocked by a run that stopped before saving so: the next run records it as its own, and the way back unblocks the routing", async () => {
  const routing = new RoutingStore(cp().pool);
  const { ctx, state, changer } = await migrationOf("tenant-interrupted");
  const before = (await routing.get("tenant-interrupted"))!;
  // The interrupted run: its UPDATE committed, its save never happened.
  expect(await routing.setWritesBlocked("tenant-interrupted", before.version, true, ctx.jobId, changer)).toBeDefined();
  expect(state.routingBlocked).toBeUndefined();

  await blockRouting(ctx, routing, east, "migration");
  expect(state.routingBlocked).toBe(true);
  const blocked = (await routing.get("tenant-interrupted"))!;
  expect(blocked).toMatchObject({ writesBlocked: true, version: before.version + 1n });

  await liftFence(ctx, routing, east, "migration", async () => ({ db: undefined as never, tables: [] }));
  expect(await routing.get("tenant-interrupted")).toMatchObject({ writesBlocked: false, version: blocked.version + 1n });
}, 60_000);

test("blocked by another job: not taken for this one's (its rollback leaves that block alone)", async () => {
  const routing = new RoutingStore(cp().pool);
  const { ctx, state } = await migrationOf("tenant-other");
  const other = await migrationOf("tenant-other-2");
  const before = (await routing.get("tenant-other"))!;
  expect(await routing.setWritesBlocked("tenant-other", before.version, true, other.ctx.jobId, other.changer)).toBeDefined();

  await blockRouting(ctx, routing, east, "migration");
  expect(state.routingBlocked).toBeUndefined();
  await liftFence(ctx, routing, east, "migration", async () => ({ db: undefined as never, tables: [] }));
  expect(await routing.get("tenant-other")).toMatchObject({ writesBlocked: true, migrationId: other.ctx.jobId });
}, 60_000);
