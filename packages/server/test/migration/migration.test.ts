// Live tenant migration (spec §2.4) end to end against real PostgreSQL
// clusters, under a write load from clients that follow the tenant's routing
// (test/failover/writers.ts): every acknowledged write is on the target, no
// duplicates, sequences continue, the old primary takes no write after the
// fence, and the reported phases, progress and downtime are measured and
// plausible; the routing named the target as the next primary before the
// fence. Then a Manual migration back to the first region waits in
// CDCCatchup until CutoverMigration, and cleanup_source drops the tenant's
// tables from its source once the routing has switched.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { waitFor } from "@heliosdb/replication-engine/testing";
import { RoutingService, type TenantRouting } from "@heliosdb/replication-proto";
import type pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EAST, startWorld, WEST, type World } from "../../src/testing/world";
import { expectFailoverInvariants, snapshot } from "../failover/invariants";
import type { RoutedWriters } from "../failover/writers";
import { type Body, leftovers, migrationEnded, inPhase, routedWriters, routeToEast, tablesOf } from "./tenant";

let world: World;
const sessions: pg.Client[] = [];
const running: RoutedWriters[] = [];
const PHASES = ["BulkCopy", "CDCCatchup", "Cutover"];

beforeAll(async () => {
  // Large enough that the copy is seen under way (its progress comes per chunk copied).
  world = await startWorld({ users: 60_000 });
  await routeToEast(world);
}, 180_000);

afterAll(async () => {
  for (const w of running) await w.stop().catch(() => undefined);
  for (const s of sessions) await s.end().catch(() => undefined);
  await world?.close();
}, 120_000);

async function session(cluster: "east" | "west", database: string): Promise<pg.Client> {
  const client = await world[cluster].connect(database);
  sessions.push(client);
  return client;
}

// A WatchTenantRouting watch over Connect, as a client follows routing; stop() ends it and says what it heard.
function watchRouting(tenantId: string): { stop(): TenantRouting[] } {
  const client = createClient(RoutingService, createConnectTransport({ baseUrl: `http://127.0.0.1:${world.app.ports.http}`, httpVersion: "1.1" }));
  const heard: TenantRouting[] = [];
  const abort = new AbortController();
  void (async () => {
    for await (const m of client.watchTenantRouting({ tenantId }, { headers: { authorization: `Bearer ${world.token}` }, signal: abort.signal })) heard.push(m.routing!);
  })().catch(() => undefined);
  return {
    stop() {
      abort.abort();
      return heard;
    },
  };
}

function writers(tag: string): RoutedWriters {
  const w = routedWriters(world, tag);
  running.push(w);
  return w;
}

async function phaseEvents(id: string): Promise<string[][]> {
  const { rows } = await world.pool.query(
    "SELECT event_type, coalesce(details->>'phase', '') AS phase, coalesce(details->>'status', '') AS status FROM events WHERE details->>'migration_id' = $1 AND event_type <> 'MigrationProgress' ORDER BY id",
    [id],
  );
  return rows.map((e) => [e.event_type, e.phase, e.status]);
}

test("Automatic, under a write load that follows routing: every acknowledged write on the target, no duplicate, sequences go on, the old primary fenced; phases, progress and downtime measured", async () => {
  await world.west.createDatabase("mig_west");
  const east = `${EAST}/production_db`;
  const west = `${WEST}/mig_west`;
  const load = writers("m1-");
  await waitFor(() => load.committedOn(east) >= 40, "writes on the old primary", 60_000);
  // Every routing a client hears through the whole migration.
  const watch = watchRouting("tenant-123");

  const accepted = await world.rest("POST", "/migrations", {
    tenant_id: "tenant-123",
    source_region: "us-east-1",
    target_region: "us-west-2",
    target_database: "mig_west",
    migration_config: { bulk_copy_parallelism: 2, cdc_lag_threshold_seconds: 1, cutover_strategy: "Automatic", cleanup_source: false },
  });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  expect(accepted.body).toMatchObject({
    tenant_id: "tenant-123",
    source_region: "us-east-1",
    target_region: "us-west-2",
    status: "InProgress",
    current_phase: "BulkCopy",
    source: { connection_id: EAST, database: "production_db", region: "us-east-1" },
    target: { connection_id: WEST, database: "mig_west", region: "us-west-2" },
    migration_config: { bulk_copy_parallelism: 2, cdc_lag_threshold_seconds: 1, cutover_strategy: "Automatic", cleanup_source: false },
  });
  expect(accepted.body.phases.map((p: Body) => [p.phase, p.status])).toEqual([["BulkCopy", "InProgress"], ["CDCCatchup", "Pending"], ["Cutover", "Pending"]]);
  const id = accepted.body.id as string;

  // Progress as it runs: the copy's percentage only grows, and an estimate of the size and the completion appear.
  const seen: number[] = [];
  let estimated: Body | undefined;
  await waitFor(async () => {
    const m = (await world.rest("GET", `/migrations/${id}`)).body;
    const copy = m.phases[0];
    if (m.current_phase === "BulkCopy" && copy.progress_percent !== undefined) seen.push(copy.progress_percent);
    if (m.current_phase === "BulkCopy" && m.estimated_completion && copy.estimated_data_size_gb > 0) estimated = m;
    return m.current_phase !== "BulkCopy";
  }, "the bulk copy to end", 120_000);
  expect(seen).toEqual([...seen].sort((a, b) => a - b));
  // Seen half way only when a poll meets the copy between two of its figures (a fast copy may not give one):
  // then the size is measured and the completion lies ahead. (bulk-copy.test.ts checks the estimate itself.)
  if (estimated) expect(Date.parse(estimated.estimated_completion)).toBeGreaterThan(Date.parse(estimated.started_at));

  const done = await migrationEnded(world, id);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(done.current_phase ?? "").toBe("");
  if (process.env.MIGRATION_DEBUG) console.log(JSON.stringify({ seen, done }, null, 1));
  expect(done.phases.map((p: Body) => [p.phase, p.status])).toEqual(PHASES.map((p) => [p, "Completed"]));
  const [copy, catchup, cut] = done.phases as Body[];
  expect(copy!.progress_percent).toBe(100);
  expect(copy!.data_size_gb).toBeGreaterThan(0);
  expect(copy!.estimated_data_size_gb).toBeGreaterThan(0);
  expect(catchup!.final_lag_seconds).toBeGreaterThanOrEqual(0);
  expect(catchup!.final_lag_seconds).toBeLessThanOrEqual(1);
  expect(Number(cut!.duration_ms)).toBeGreaterThan(0);
  expect(done.data_transferred_gb).toBeGreaterThan(0);
  expect(done.completed_at).toBeTruthy();
  expect(done.total_duration_seconds).toBeGreaterThanOrEqual(0);
  const downtime = Number(done.downtime_ms);
  expect(downtime).toBeGreaterThan(0);
  // The downtime lies within the cutover phase.
  expect(downtime).toBeLessThanOrEqual(Number(cut!.duration_ms));

  // The tenant's writers followed routing and write on the target.
  await waitFor(() => load.committedOn(west) >= 40, "writes on the new primary", 60_000).catch(async (e) => {
    // What held the writers (evidence for a failure): their errors, and the sessions on the target.
    const probe = await world.west.connect("mig_west");
    const activity = await probe.query("SELECT pid, state, wait_event_type, wait_event, left(query, 120) AS query, application_name FROM pg_stat_activity WHERE datname = 'mig_west'");
    await probe.end();
    throw new Error(`${(e as Error).message}; the writers' errors: ${JSON.stringify(load.errors.slice(0, 5))}; sessions: ${JSON.stringify(activity.rows)}; routing ${JSON.stringify((await world.rest("GET", "/tenants/tenant-123/routing")).body)}`);
  });
  await load.stop();
  expect(load.refusals()).toBeGreaterThan(0);
  const routing = (await world.rest("GET", "/tenants/tenant-123/routing")).body;
  expect(routing).toMatchObject({ primary: { connection_id: WEST, database: "mig_west", region: "us-west-2" }, migration_id: id, writes_blocked: false });
  expect(routing.next_primary).toBeUndefined();
  // Before the fence blocked a write, the routing named the target as the next primary (clients could connect
  // there ahead of the switch); it still did while writes were blocked; the switch cleared it.
  const heard = watch.stop();
  const at = (r: (typeof heard)[number]) => `${r.primary?.connectionId}/${r.primary?.database}`;
  const next = (r: (typeof heard)[number]) => (r.nextPrimary ? `${r.nextPrimary.connectionId}/${r.nextPrimary.database}` : "");
  const switchedAt = heard.findIndex((r) => at(r) === west);
  expect(switchedAt, JSON.stringify(heard.map((r) => [at(r), next(r), r.writesBlocked]))).toBeGreaterThan(0);
  const before = heard.slice(0, switchedAt);
  const announced = before.findIndex((r) => next(r) === west);
  expect(announced).toBeGreaterThanOrEqual(0);
  expect(before[announced]).toMatchObject({ writesBlocked: false, migrationId: id, nextPrimary: { region: "us-west-2" } });
  expect(before.slice(announced).every((r) => at(r) === east && next(r) === west)).toBe(true);
  expect(before.slice(announced).some((r) => r.writesBlocked)).toBe(true);
  expect(heard[switchedAt]!.nextPrimary).toBeUndefined();

  // The downtime against what the clients saw (this process's clock, the server runs in it): it began when the
  // fence asked for its lock, and ended at the switch — before any client wrote on the target, and within the
  // window from the earlier of that ask and the last acknowledged write on the old primary to the first on the target.
  const job = (await world.pool.query("SELECT steps FROM jobs WHERE id = $1", [id])).rows[0].steps as Body[];
  if (process.env.MIGRATION_DEBUG) console.log(JSON.stringify(job[2]!.details));
  const blockingSince = Date.parse(job[2]!.details.blocking_since);
  // Verified after the switch: the target as the switch found it equals the source at its fence.
  expect(job[2]!.details.verified).toBe(true);
  expect(job[2]!.details.message).toMatch(/verified after the switch: the target as the switch found it equals the source at the fence: .*users \d+\/\d+ rows, checksums equal/);
  expect(done.message).toBe("");
  const lastOld = Math.max(...load.acks.filter((a) => a.primary === east).map((a) => a.at));
  const firstNew = Math.min(...load.acks.filter((a) => a.primary === west).map((a) => a.at));
  expect(blockingSince + downtime).toBeLessThanOrEqual(firstNew);
  expect(downtime).toBeLessThanOrEqual(firstNew - Math.min(lastOld, blockingSince));

  const eastDb = await session("east", "production_db");
  const westDb = await session("west", "mig_west");
  await expectFailoverInvariants({ writers: load, tag: "m1-", oldAtFence: await snapshot(eastDb), oldPrimary: eastDb, newPrimary: westDb, newKey: west });

  // The carrier stopped, its slot and publication gone from the source; each phase in the event log, in order.
  expect(await leftovers(eastDb)).toEqual({ slots: [], publications: [] });
  expect(await phaseEvents(id)).toEqual([
    ["MigrationStarted", "", ""],
    ...PHASES.flatMap((p) => [["MigrationPhase", p, "InProgress"], ["MigrationPhase", p, "Completed"]]),
    ["MigrationCompleted", "", ""],
  ]);
  const progress = await world.pool.query("SELECT count(*)::int AS n FROM events WHERE details->>'migration_id' = $1 AND event_type = 'MigrationProgress'", [id]);
  expect(progress.rows[0].n).toBeGreaterThan(0);

  const listed = (await world.rest("GET", "/migrations?tenant_id=tenant-123&status=Completed")).body;
  expect(listed.data.map((m: Body) => m.id)).toEqual([id]);
  expect(listed.pagination).toMatchObject({ page: 1, total_items: 1 });
}, 400_000);

test("Manual: waits in CDCCatchup until CutoverMigration; migrating back to the first region, cleanup_source drops the tables from the source after the switch", async () => {
  await world.east.createDatabase("mig_back");
  const west = `${WEST}/mig_west`;
  const back = `${EAST}/mig_back`;
  const load = writers("m2-");
  await waitFor(() => load.committedOn(west) >= 20, "writes on west", 60_000);

  const accepted = await world.rest("POST", "/migrations", {
    tenant_id: "tenant-123",
    source_region: "us-west-2",
    target_region: "us-east-1",
    target_database: "mig_back",
    migration_config: { cutover_strategy: "Manual", cleanup_source: true },
  });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  expect(accepted.body.migration_config).toMatchObject({ bulk_copy_parallelism: 4, cdc_lag_threshold_seconds: 1, cutover_strategy: "Manual", cleanup_source: true });
  const id = accepted.body.id as string;

  // Caught up, it waits: still CDCCatchup a while later, the routing untouched, the writers still on west.
  await inPhase(world, id, "CDCCatchup");
  await waitFor(async () => {
    const { rows } = await world.pool.query("SELECT 1 FROM events WHERE details->>'migration_id' = $1 AND details->>'waiting_for' = 'CutoverMigration'", [id]);
    return rows.length > 0;
  }, "the catch-up to hold", 60_000);
  const before = load.committedOn(west);
  await waitFor(() => load.committedOn(west) >= before + 20, "more writes on west", 60_000);
  const waiting = (await world.rest("GET", `/migrations/${id}`)).body;
  expect(waiting).toMatchObject({ status: "InProgress", current_phase: "CDCCatchup" });
  expect(waiting.phases.map((p: Body) => p.status)).toEqual(["Completed", "InProgress", "Pending"]);
  expect((await world.rest("GET", "/tenants/tenant-123/routing")).body.primary).toMatchObject({ connection_id: WEST, database: "mig_west" });

  const cut = await world.rest("POST", `/migrations/${id}/cutover`);
  expect(cut.status, JSON.stringify(cut.body)).toBe(202);
  expect(cut.body).toMatchObject({ id, status: "InProgress" });
  const done = await migrationEnded(world, id);
  expect(done.status, JSON.stringify(done)).toBe("Completed");
  expect(Number(done.downtime_ms)).toBeGreaterThan(0);

  await waitFor(() => load.committedOn(back) >= 20, "writes on the new primary", 60_000);
  await load.stop();
  expect(load.errors).toEqual([]);
  const backDb = await session("east", "mig_back");
  const users = await backDb.query("SELECT id::text, name, email FROM users WHERE name LIKE 'm2-%'");
  expect(new Map(users.rows.map((u) => [u.id, u]))).toEqual(load.expected().users);
  // Dropped from the source, only after the switch (the writers met the fence there, then routing: no other error).
  const westDb = await session("west", "mig_west");
  expect(await tablesOf(westDb)).toEqual([]);
  expect(await leftovers(westDb)).toEqual({ slots: [], publications: [] });
  expect(done.phases[2]).toMatchObject({ phase: "Cutover", status: "Completed" });
  const cutoverAgain = await world.rest("POST", `/migrations/${id}/cutover`);
  expect(cutoverAgain.status).toBe(409);
}, 400_000);
